// The statistics' classification of a test or test case at a commit (docs/statistics.md): a small
// label with its confidence. Renders nothing when the server sent none.
import type { ChangePoint, Classification, Rate } from '../api';
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
  const sure = c.verdict === 'unknown' ? '' : ` (${Math.floor(c.confidence * 100)}% sure)`;
  return `${c.verdict}: ${kMeaning[c.verdict] ?? ''}${sure}`;
}

// The verdict in words that say what happened, with the failure rate where it is the point:
// "passing", "flaky (≈14%)", "failing", "started failing here (≈33%)", "fixed here", "no runs".
export function verdictWords(c: Classification, failureRate?: number): string {
  const rate = failureRate === undefined ? '' : ` (≈${percent(failureRate)})`;
  switch (c.verdict) {
    case 'good':
      return 'passing';
    case 'flaky':
      return `flaky${rate}`;
    case 'broken':
      // Broken below a certain failure means its rate went up here (docs/statistics.md).
      return failureRate !== undefined && failureRate < kAlways ? `started failing here${rate}` : 'failing';
    case 'fixed':
      return 'fixed here';
    case 'new':
      return 'new here';
    case 'removed':
      return 'removed here';
    default:
      return 'no runs';
  }
}

// The classification as words, and its confidence labelled as one ("· 96% sure"), never with
// the look of a failure rate. `rate`: the runs' failure rate here, when known; the model's rate
// (its segment's, classification.rate) wins when the server sends it.
export function VerdictBadge({ c, rate }: { c: Classification | null | undefined; rate?: number }) {
  if (!c || !c.verdict) return null;
  if (c.rate && c.rate.runs > 0) rate = c.rate.estimate;
  const sure = c.verdict !== 'unknown' && c.verdict !== 'new' && c.verdict !== 'removed';
  return (
    <span class={`verdict v-${c.verdict}`} data-verdict={c.verdict} title={verdictText(c)}>
      {verdictWords(c, rate)}
      {sure && <span class="conf"> · {Math.floor(c.confidence * 100)}% sure</span>}
    </span>
  );
}

// Below this estimated failure rate a test counts as passing in the words of a change.
const kPassing = 0.005;
// At or above this one it fails every time.
const kAlways = 0.99;

// What happened at a change point, in words: "started failing here", "became flakier here",
// "became flaky here", "less flaky here", "fixed here".
export function changeWords(before: Rate, after: Rate): string {
  if (after.estimate > before.estimate) {
    if (before.estimate < kPassing) return 'started failing here';
    return 'became flakier here';
  }
  if (after.estimate < kPassing) return 'fixed here';
  if (before.estimate >= kAlways) return 'became flaky here';
  return 'less flaky here';
}

// "started failing here: 0% → 33%".
export function changeSentence(cp: ChangePoint): string {
  return `${changeWords(cp.before, cp.after)}: ${percent(cp.before.estimate)} → ${percent(cp.after.estimate)}`;
}

export const kSureMeaning =
  'How sure the statistics are that the failure rate changed at exactly this commit: the ' +
  'posterior probability of this change point given every run along the branch ' +
  '(docs/statistics.md). It is not a failure rate.';

// "96% sure", labelled as a confidence with its meaning on hover.
export function Sure({ p }: { p: number }) {
  return (
    <span class="sure" title={kSureMeaning} data-probability={p.toFixed(3)}>
      {Math.floor(p * 100)}% sure
    </span>
  );
}
