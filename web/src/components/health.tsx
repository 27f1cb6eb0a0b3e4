// The health of one commit: how many of its tests pass, fail, run or wait.
import type { HistoryObject } from '../api';

export interface Health {
  tests: number;
  passing: number;
  failing: number;
  running: number;
  untested: number;
}

export function healthOf(objects: HistoryObject[]): Health {
  const h: Health = { tests: 0, passing: 0, failing: 0, running: 0, untested: 0 };
  for (const o of objects) {
    if (o.kind !== 'test') continue;
    h.tests++;
    if (o.active_runs > 0) h.running++;
    if (o.failures > 0) h.failing++;
    else if (o.runs > 0) h.passing++;
    else if (o.active_runs === 0) h.untested++;
  }
  return h;
}

export function HealthBar({ health }: { health: Health }) {
  const { tests, passing, failing, running, untested } = health;
  if (tests === 0) return <span class="muted">no tests</span>;
  const w = (n: number): string => `${(100 * n) / tests}%`;
  return (
    <span class="health" data-failing={failing} data-passing={passing} data-running={running}>
      <span class="health-bar">
        <span class="hb-pass" style={{ width: w(passing) }} />
        <span class="hb-fail" style={{ width: w(failing) }} />
      </span>
      <span>
        {tests} tests: {passing} passing
        {failing > 0 && <b class="fail-text">, {failing} failing</b>}
        {running > 0 && <>, {running} running</>}
        {untested > 0 && <>, {untested} without runs</>}
      </span>
    </span>
  );
}
