// The health of one commit: how many of its tests pass, are flaky, fail, run or wait. The words
// come from the statistics' classification along the branch (docs/statistics.md), not from the
// commit's raw counts: one failure of a known flake makes it flaky, not failing, and one pass
// of it does not make it passing.
import type { HistoryObject } from '../api';

export interface Health {
  tests: number;
  passing: number;
  flaky: number;
  failing: number;
  running: number;
  untested: number;
}

export function healthOf(objects: HistoryObject[]): Health {
  const h: Health = { tests: 0, passing: 0, flaky: 0, failing: 0, running: 0, untested: 0 };
  for (const o of objects) {
    if (o.kind !== 'test') continue;
    h.tests++;
    if (o.active_runs > 0) h.running++;
    const verdict = o.classification?.verdict;
    if (verdict === 'flaky') h.flaky++;
    else if (verdict === 'broken') h.failing++;
    else if (verdict === 'good' || verdict === 'fixed') h.passing++;
    // No verdict (new here, or no classification sent): the raw counts, as before.
    else if (o.runs > 0 && o.failures === o.runs) h.failing++;
    else if (o.failures > 0) h.flaky++;
    else if (o.runs > 0) h.passing++;
    else if (o.active_runs === 0) h.untested++;
  }
  return h;
}

export function HealthBar({ health }: { health: Health }) {
  const { tests, passing, flaky, failing, running, untested } = health;
  if (tests === 0) return <span class="muted">no tests</span>;
  const w = (n: number): string => `${(100 * n) / tests}%`;
  return (
    <span class="health" data-failing={failing} data-flaky={flaky} data-passing={passing} data-running={running}>
      <span class="health-bar">
        <span class="hb-pass" style={{ width: w(passing) }} />
        <span class="hb-flaky" style={{ width: w(flaky) }} />
        <span class="hb-fail" style={{ width: w(failing) }} />
      </span>
      <span>
        {tests} tests: {passing} passing
        {flaky > 0 && <b class="flaky-text">, {flaky} flaky</b>}
        {failing > 0 && <b class="fail-text">, {failing} failing</b>}
        {running > 0 && <>, {running} running</>}
        {untested > 0 && <>, {untested} without runs</>}
      </span>
    </span>
  );
}
