// Small badges: an object's planner status and a run's state.
import type { ObjectStatus, RunState } from '../api';

const kStatusText: Record<ObjectStatus, string> = {
  not_enabled: 'not enabled',
  waiting_on_builds: 'waiting on builds',
  dependency_failed: 'dependency failed',
  unresolved_dependency: 'unresolved dependency',
  runnable: 'queued',
  unrunnable: 'unrunnable',
  infra_blocked: 'infra blocked',
  done: 'done',
};

export function StatusBadge({ status, active }: { status: ObjectStatus; active: number }) {
  if (active > 0) return <span class="badge st-running">running {active}</span>;
  return <span class={`badge st-${status}`}>{kStatusText[status] ?? status}</span>;
}

export function RunStateBadge({ state }: { state: RunState }) {
  return <span class={`badge run-${state}`}>{state.replace('_', ' ')}</span>;
}
