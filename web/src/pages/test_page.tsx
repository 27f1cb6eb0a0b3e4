// `/repos/{repo}/commits/{sha}/tests/{name}`: one test (or build) of a commit: its runs (state,
// duration, worker, log; running ones can be cancelled) and its individual test cases × runs,
// each case with its classification and a link to its history along a branch (`?branch=`, else
// a branch under test of the repo).
import { useEffect, useState } from 'preact/hooks';

import { api, type Branch, type Commit, type Run } from '../api';
import { CancelButton } from '../components/cancel';
import { Crumbs, Loading, Problem, useTitle, When } from '../components/layout';
import { RunStateBadge, StatusBadge } from '../components/status';
import { VerdictBadge } from '../components/verdict';
import { duration, modelClass, modelRateText, paths, rateText, shortSha } from '../format';
import { MoreRuns } from '../components/more_runs';
import { useLive } from '../live';
import type { Place } from '../router';

// The branch whose history the page links to: the one asked for, else one under test whose
// head is this commit, else main/master under test, else any under test, else main/master.
export function branchFor(branches: Branch[], sha: string, asked: string | null): string | null {
  if (asked) return asked;
  const main = (b: Branch): boolean => b.name === 'main' || b.name === 'master';
  const tested = branches.filter((b) => b.under_test);
  const pick =
    tested.find((b) => b.head === sha) ??
    tested.find(main) ??
    tested[0] ??
    branches.find((b) => b.head === sha) ??
    branches.find(main) ??
    branches[0];
  return pick?.name ?? null;
}

const kMatrixRuns = 40;

function RunsTable({ runs }: { runs: Run[] }) {
  if (runs.length === 0) return <p class="muted">No runs yet.</p>;
  return (
    <table class="list runs">
      <thead>
        <tr>
          <th>run</th>
          <th>state</th>
          <th>started</th>
          <th>duration</th>
          <th>worker</th>
          <th>exit</th>
          <th>cases</th>
          <th>log</th>
        </tr>
      </thead>
      <tbody>
        {runs.map((r) => {
          const failed = r.cases.filter((c) => !c.success).length;
          return (
            <tr key={r.id} data-run={r.id} data-state={r.state}>
              <td>
                <a href={paths.run(r.id)}>{r.id}</a>
              </td>
              <td>
                <RunStateBadge state={r.state} />
                {r.state === 'running' && <CancelButton key={r.id} id={r.id} />}
                {r.detail && <div class="muted small">{r.detail}</div>}
              </td>
              <td>
                <When t={r.started} />
              </td>
              <td>{r.ended ? duration(r.ended - r.started) : '…'}</td>
              <td>{r.worker}</td>
              <td>{r.state === 'running' ? '' : r.exit_code}</td>
              <td>
                {r.cases.length > 0 && (
                  <>
                    {r.cases.filter((c) => c.success && !c.skipped).length} ok
                    {failed > 0 && <b class="fail-text">, {failed} failed</b>}
                  </>
                )}
              </td>
              <td>
                <a href={`/api/runs/${encodeURIComponent(r.id)}/log`} target="_blank" rel="noopener">
                  raw
                </a>
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

// Cases down, runs across (newest first): ✓ passed, ✗ failed, blank when the run lacks the case.
function CaseMatrix({
  commit,
  name,
  runs,
  branch,
}: {
  commit: Commit;
  name: string;
  runs: Run[];
  branch: string | null;
}) {
  const o = commit.objects.find((x) => x.name === name);
  const cases = Object.entries(o?.cases ?? {}).sort(
    ([a, x], [b, y]) => y.failures / Math.max(1, y.runs) - x.failures / Math.max(1, x.runs) || a.localeCompare(b),
  );
  if (cases.length === 0) return <p class="muted">No individual test cases reported.</p>;
  const shown = runs.filter((r) => r.state !== 'running').slice(0, kMatrixRuns);
  const results = shown.map((r) => {
    const m = new Map<string, boolean>();
    for (const c of r.cases) if (!c.skipped) m.set(c.name, (m.get(c.name) ?? true) && c.success);
    return m;
  });
  return (
    <table class="list cases">
      <thead>
        <tr>
          <th>case</th>
          <th>failures/runs · rate (95%)</th>
          <th>classification</th>
          {shown.map((r) => (
            <th key={r.id} class="runcol">
              <a href={paths.run(r.id)} title={r.id}>
                {r.id.slice(0, 4)}
              </a>
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {cases.map(([caseName, counts]) => (
          <tr key={caseName} data-case={caseName}>
            <td>
              {branch ? (
                <a
                  class="case-history"
                  href={paths.testHistory(commit.repo, branch, `${name}::${caseName}`)}
                  title={`${caseName} along ${branch}`}
                >
                  {caseName}
                </a>
              ) : (
                caseName
              )}
            </td>
            <td class={`rate ${modelClass(counts.classification, counts.runs, counts.failures)}`}>
              {counts.failures}/{counts.runs} · {rateText(counts.failure_rate, counts.runs)}
            </td>
            <td>
              <VerdictBadge c={counts.classification} rate={counts.runs > 0 ? counts.failures / counts.runs : undefined} />
            </td>
            {results.map((m, i) => {
              const ok = m.get(caseName);
              return (
                <td key={i} class={`mark ${ok === undefined ? '' : ok ? 'ok' : 'bad'}`}>
                  {ok === undefined ? '' : ok ? '✓' : '✗'}
                </td>
              );
            })}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function TestPage({ args, place }: { args: string[]; place: Place }) {
  const [repo, sha, name] = [args[0]!, args[1]!, args[2]!];
  const asked = place.query.get('branch');
  const [branches, setBranches] = useState<Branch[]>([]);
  useEffect(() => {
    void api.branches(repo).then(setBranches, () => setBranches([]));
  }, [repo]);
  const branch = branchFor(branches, sha, asked);
  const live = useLive(
    async () => {
      const [commit, runs] = await Promise.all([api.commit(repo, sha), api.commitRuns(repo, sha, name)]);
      return { commit, runs };
    },
    [repo, sha, name],
    (e) => e.type === 'runs' || (e.type === 'run' && e.name === name) || (e.type === 'commit' && e.commit === sha),
  );
  const o = live.data?.commit.objects.find((x) => x.name === name);
  useTitle(name, shortSha(sha), repo);
  return (
    <>
      <Crumbs
        items={[
          ['repos', '/'],
          [repo, paths.repo(repo)],
          [shortSha(sha), paths.commit(repo, sha)],
          [name, null],
        ]}
      />
      <h1>
        {name} {o && <VerdictBadge c={o.classification} />}
      </h1>
      <Problem error={live.error} />
      {!live.data ? (
        <Loading what="runs" error={live.error} />
      ) : !o ? (
        <Problem error={`commit ${shortSha(sha)} has no object named ${name}`} />
      ) : (
        <>
          <p class="summary">
            <StatusBadge status={o.status} active={o.active_runs} /> {o.runs} runs, {o.failures} failures ·
            failure rate{' '}
            <span class={`rate ${modelClass(o.classification, o.runs, o.failures)}`} title={modelRateText(o.classification)}>
              {rateText(o.failure_rate, o.runs)}
            </span>{' '}
            · target {o.target_runs} · identity <code>{o.hash.slice(0, 12)}</code>{' '}
            <MoreRuns repo={repo} sha={sha} objects={[o]} done={live.reload} />
            {branch && (
              <>
                {' '}
                ·{' '}
                <a class="test-history-link" href={paths.testHistory(repo, branch, name)}>
                  history on {branch}
                </a>
              </>
            )}
          </p>
          <h2>Runs</h2>
          <RunsTable runs={live.data.runs} />
          <h2>Test cases</h2>
          <CaseMatrix commit={live.data.commit} name={name} runs={live.data.runs} branch={branch} />
        </>
      )}
    </>
  );
}
