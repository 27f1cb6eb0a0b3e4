// `/`: every repo with its branches under test and the health of their heads.
import { api, type Repo } from '../api';
import { RegressionsPanel } from '../components/changes';
import { HealthBar, healthOf } from '../components/health';
import { SearchLine } from '../components/branch_state';
import { Loading, Problem, useTitle, When } from '../components/layout';
import { paths, shortSha } from '../format';
import { useLive } from '../live';

function BranchHealth({ repo, branch }: { repo: string; branch: string }) {
  const live = useLive(
    () => api.history(repo, branch, 1),
    [repo, branch],
    (e) => e.repo === repo || e.type === 'runs',
  );
  const head = live.data?.commits[0];
  if (live.error) return <Problem error={live.error} />;
  if (!head) return <span class="muted">…</span>;
  return (
    <>
      <a class="sha" href={paths.commit(repo, head.sha)}>
        {shortSha(head.sha)}
      </a>{' '}
      <span class="subject">{head.subject}</span> <When t={head.time} />{' '}
      {head.error ? (
        <span class="fail-text head-error" data-head-error="" title={head.error}>
          ⚠ definitions error: {head.error.length > 120 ? `${head.error.slice(0, 120)}…` : head.error}
        </span>
      ) : (
        <HealthBar health={healthOf(head.objects)} />
      )}
    </>
  );
}

function RepoCard({ repo }: { repo: Repo }) {
  const tested = repo.branches.filter((b) => b.under_test);
  return (
    <section class="card" data-repo={repo.name}>
      <h2>
        <a href={paths.repo(repo.name)}>{repo.name}</a>{' '}
        <span class="muted">
          {repo.branches.length} branches, {tested.length} under test
        </span>
      </h2>
      {tested.length === 0 ? (
        <p class="muted">
          No branch under test. <a href={paths.repo(repo.name)}>Put one under test</a>.
        </p>
      ) : (
        <table class="list">
          <tbody>
            {tested.map((b) => (
              <tr key={b.name} data-branch={b.name}>
                <td>
                  <a href={paths.branch(repo.name, b.name)}>{b.name}</a>
                </td>
                <td>
                  <BranchHealth repo={repo.name} branch={b.name} />
                </td>
                <td class="small">
                  <SearchLine b={b} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

export function ReposPage() {
  const live = useLive(
    () => api.repos(),
    [],
    (e) => e.type === 'branch' || e.type === 'commits' || e.type === 'repo' || e.type === 'runs',
  );
  useTitle('Repos');
  return (
    <>
      <h1>Repos</h1>
      <Problem error={live.error} />
      {!live.data ? (
        <Loading what="repos" error={live.error} />
      ) : live.data.length === 0 ? (
        <p class="muted">No git repos under the server's --repos folder yet.</p>
      ) : (
        <>
          <RegressionsPanel repos={live.data} />
          {live.data.map((r) => (
            <RepoCard key={r.name} repo={r} />
          ))}
        </>
      )}
    </>
  );
}
