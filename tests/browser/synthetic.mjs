// A synthetic branch history in the shape of GET /api/repos/{repo}/branches/{branch}/history:
// `commits` first-parent commits × `tests` tests, with runs, failures, running and queued
// objects, merges and change points. Deterministic (a fixed-seed generator).

function generator(seed) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function rate(failures, runs) {
  if (runs === 0) return { estimate: 0, low: 0, high: 1 };
  const p = failures / runs;
  const w = 1.96 * Math.sqrt((p * (1 - p) + 0.25) / (runs + 1));
  return { estimate: p, low: Math.max(0, p - w), high: Math.min(1, p + w) };
}

export function syntheticHistory({ repo = 'big', branch = 'main', commits = 500, tests = 100 } = {}) {
  const random = generator(42);
  const projects = ['core', 'net', 'storage', 'ui', 'tools'];
  const configurations = ['linux', 'mac', 'windows', 'linux-asan'];
  const names = [];
  for (let i = 0; i < tests; i++) {
    names.push(`${projects[i % projects.length]}/t${String(i).padStart(3, '0')}/${configurations[i % configurations.length]}`);
  }
  // A few flaky tests, and one that breaks 40 commits before the head.
  const flaky = new Set(names.filter((_, i) => i % 17 === 3));
  const now = Math.floor(Date.now() / 1000);
  const out = [];
  const changePoints = [];
  for (let c = 0; c < commits; c++) {
    const sha = (c + 1).toString(16).padStart(8, '0') + 'abcdef0123456789abcdef0123456789'.slice(0, 32);
    const objects = names.map((name, i) => {
      const tested = c < 150 || c % 7 === 0;
      const runs = tested ? 1 + Math.floor(random() * 6) : 0;
      let p = flaky.has(name) ? 0.2 : 0;
      if (i === 5 && c < 40) p = 1;
      let failures = 0;
      for (let r = 0; r < runs; r++) if (random() < p) failures++;
      const active = c < 3 && random() < 0.1 ? 1 : 0;
      const queued = !active && c < 6 && random() < 0.1;
      return {
        name,
        kind: 'test',
        hash: `${sha}${i}`,
        status: queued || active ? 'runnable' : tested ? 'done' : 'not_enabled',
        runs,
        failures,
        active_runs: active,
        failure_rate: rate(failures, runs),
      };
    });
    out.push({
      sha,
      subject: `Change ${commits - c}: ${['fix', 'add', 'refactor', 'speed up', 'document'][c % 5]} ${names[c % tests]}`,
      author: ['Ada Lovelace', 'Alan Turing', 'Grace Hopper', 'Edsger Dijkstra'][c % 4],
      time: now - c * 3600,
      parents: c % 9 === 4 ? ['p1', 'p2'] : ['p1'],
      error: null,
      objects,
    });
    if (c === 39) {
      changePoints.push({
        name: names[5],
        commit: sha,
        probability: 0.93,
        range_probability: 0.99,
        before: rate(0, 200),
        after: rate(100, 100),
      });
    }
  }
  return { repo, branch, head: out[0].sha, commits: out, change_points: changePoints };
}
