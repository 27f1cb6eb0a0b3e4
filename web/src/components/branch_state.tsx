// A branch's state as the server sees it: under test or not (with the control that changes it),
// its head's definitions error, and what the statistical bisection of its head is doing
// (docs/api.md "search"), with the server's queue.
import { useState } from 'preact/hooks';

import { api, type Branch, type Queue } from '../api';
import { useLive } from '../live';
import { canEdit, useSession } from '../session';
import { Problem } from './layout';

export function TestControl({ repo, branch, done }: { repo: string; branch: Branch; done: () => void }) {
  const session = useSession();
  const [depth, setDepth] = useState(String(branch.depth || 0));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  if (!canEdit(session)) return null;
  const send = async (enabled: boolean): Promise<void> => {
    const n = Number(depth);
    if (!Number.isInteger(n) || n < 0) {
      setError('ancestors must be a whole number ≥ 0');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await api.setBranchUnderTest(repo, branch.name, enabled, n);
      done();
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    }
    setBusy(false);
  };
  return (
    <form
      class="inline"
      onSubmit={(e) => {
        e.preventDefault();
        void send(true);
      }}
    >
      <label>
        + ancestors{' '}
        <input
          class="num"
          type="number"
          min={0}
          name="depth"
          value={depth}
          onInput={(e) => setDepth((e.target as HTMLInputElement).value)}
        />
      </label>{' '}
      <button type="submit" disabled={busy} name="test">
        {branch.under_test ? 'Update' : 'Put under test'}
      </button>{' '}
      {branch.under_test && (
        <button type="button" disabled={busy} name="stop" onClick={() => void send(false)}>
          Stop testing
        </button>
      )}
      <Problem error={error} />
    </form>
  );
}


const kSearchWords: Record<string, string> = {
  off: 'no search (not under test)',
  idle: 'nothing to search: no failure to localise',
  searching: 'searching',
  localised: 'localised: every change found',
  budget_spent: 'budget spent',
};

const kSearchMeaning =
  'The statistical bisection: extra runs of the tests that failed, at the commits where they ' +
  'teach most, until each change of failure rate is localised (docs/statistics.md).';

// "searching · 12/500 extra runs used, 3 running, 5 queued".
export function SearchLine({ b }: { b: Branch }) {
  if (!b.search) return null;
  const used = b.extra_runs_used ?? 0;
  const budget = b.extra_runs_budget ?? 0;
  return (
    <span class={`search s-${b.search}`} data-search={b.search} title={kSearchMeaning}>
      <b>{kSearchWords[b.search] ?? b.search}</b>
      {b.search !== 'off' && (
        <>
          {' '}
          · <span class="extra-used">{used}/{budget}</span> extra runs used
          {(b.extra_runs_active ?? 0) > 0 && <>, {b.extra_runs_active} running</>}
          {(b.extra_runs_queued ?? 0) > 0 && <>, {b.extra_runs_queued} queued</>}
        </>
      )}
    </span>
  );
}

export function QueueLine({ q }: { q: Queue | null }) {
  if (!q) return null;
  const tests = q.queued['test'] ?? 0;
  const builds = q.queued['build'] ?? 0;
  return (
    <span class="queue" data-queued-tests={tests} data-queued-builds={builds} data-active={q.active}>
      queue: {tests} test runs, {builds} builds waiting · {q.active} running
    </span>
  );
}

// The head's definitions error, said as an error (not "no tests").
export function HeadError({ error }: { error: string | null | undefined }) {
  if (!error) return null;
  return (
    <div class="problem head-error" data-head-error="">
      The definitions at this branch's head do not load, so its tests cannot be planned: {error}
    </div>
  );
}

// The state bar of a branch's pages.
export function BranchState({ repo, branch }: { repo: string; branch: string }) {
  const live = useLive(
    async () => {
      const [branches, queue] = await Promise.all([api.branches(repo), api.queue().catch(() => null)]);
      return { branch: branches.find((b) => b.name === branch) ?? null, queue };
    },
    [repo, branch],
    (e) => e.repo === repo || e.type === 'runs' || e.type === 'run' || e.type === 'branch',
  );
  const b = live.data?.branch;
  if (!b) return null;
  return (
    <div class="branch-state" data-under-test={String(b.under_test)}>
      <HeadError error={b.head_error} />
      {!b.under_test ? (
        <div class="not-tested">
          This branch is not under test: nothing runs for its commits unless asked.{' '}
          <TestControl repo={repo} branch={b} done={live.reload} />
        </div>
      ) : (
        <div class="search-bar">
          <SearchLine b={b} /> · <QueueLine q={live.data?.queue ?? null} />
        </div>
      )}
    </div>
  );
}
