// `/repos/{repo}`: the repo's branches, each with the control that puts it under test (its head
// and N first-parent ancestors) or takes it off.
import { useState } from 'preact/hooks';

import { api, type Branch } from '../api';
import { Crumbs, Loading, Problem } from '../components/layout';
import { paths, shortSha } from '../format';
import { useLive } from '../live';
import { canEdit, useSession } from '../session';

function TestControl({ repo, branch, done }: { repo: string; branch: Branch; done: () => void }) {
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

export function RepoPage({ args }: { args: string[] }) {
  const repo = args[0]!;
  const live = useLive(
    () => api.branches(repo),
    [repo],
    (e) => e.repo === repo && (e.type === 'branch' || e.type === 'commits'),
  );
  return (
    <>
      <Crumbs items={[['repos', '/'], [repo, null]]} />
      <h1>{repo}</h1>
      <Problem error={live.error} />
      {!live.data ? (
        <Loading what="branches" />
      ) : (
        <table class="list branches">
          <thead>
            <tr>
              <th>branch</th>
              <th>head</th>
              <th>under test</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {live.data.map((b) => (
              <tr key={b.name} data-branch={b.name} data-under-test={String(b.under_test)}>
                <td>
                  <a href={paths.branch(repo, b.name)}>{b.name}</a>
                </td>
                <td>
                  <a class="sha" href={paths.commit(repo, b.head)}>
                    {shortSha(b.head)}
                  </a>
                </td>
                <td>
                  {b.under_test ? (
                    <span class="badge st-done">
                      yes{b.depth > 0 ? `, + ${b.depth} ancestors` : ''}
                    </span>
                  ) : (
                    <span class="muted">no</span>
                  )}
                </td>
                <td>
                  <TestControl repo={repo} branch={b} done={live.reload} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
