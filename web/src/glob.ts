// Name globs as the filters take them: `*` any run of characters, `?` one character; a pattern
// without either matches names that contain it.
export function globMatcher(pattern: string): (name: string) => boolean {
  const p = pattern.trim();
  if (p === '') return () => true;
  if (!/[*?]/.test(p)) return (name) => name.includes(p);
  const source = p
    .split('')
    .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
    .join('');
  const re = new RegExp(`^${source}$`);
  return (name) => re.test(name);
}
