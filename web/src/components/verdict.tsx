// The statistics' classification of a test or test case at a commit (docs/statistics.md): a small
// label with its confidence. Renders nothing when the server sent none.
import type { Classification } from '../api';
import { percent } from '../format';

const kMeaning: Record<string, string> = {
  good: 'passes every time here',
  flaky: 'sometimes fails here',
  broken: 'fails here, or its failure rate went up at this commit',
  fixed: 'its failure rate went down at this commit and it now passes',
  new: 'appears at this commit',
  removed: 'disappears at this commit',
  unknown: 'no runs cover this commit',
};

export function verdictText(c: Classification | null | undefined): string {
  if (!c || !c.verdict) return '';
  const sure = c.verdict === 'unknown' ? '' : ` (confidence ${percent(c.confidence)})`;
  return `${c.verdict}: ${kMeaning[c.verdict] ?? ''}${sure}`;
}

export function VerdictBadge({ c }: { c: Classification | null | undefined }) {
  if (!c || !c.verdict) return null;
  const sure = c.verdict !== 'unknown' && c.verdict !== 'new' && c.verdict !== 'removed';
  return (
    <span class={`verdict v-${c.verdict}`} data-verdict={c.verdict} title={verdictText(c)}>
      {c.verdict}
      {sure && <span class="conf"> {Math.round(c.confidence * 100)}%</span>}
    </span>
  );
}
