// `/repos/{repo}`: the repo's branches, each with the control that puts it under test (its head
// and N first-parent ancestors) or takes it off.
import { api } from '../api';
import { SearchLine, TestControl } from '../components/branch_state';
import { Crumbs, Loading, Problem, useTitle } from '../components/layout';
import { paths, shortSha } from '../format';
import { useLive } from '../live';

export function RepoPage({ args }: { args: string[] }) {
  const repo = args[0]!;
  const live = useLive(
    async () => {
      // An unknown repo has no branches: say that it does not exist rather than show none.
      const [branches, repos] = await Promise.all([api.branches(repo), api.repos()]);
      if (!repos.some((r) => r.name === repo)) throw new Error(`no repo named '${repo}'`);
      return branches;
    },
    [repo],
    (e) => e.repo === repo && (e.type === 'branch' || e.type === 'commits'),
  );
  useTitle(repo);
  return (
    <>
      <Crumbs items={[['repos', '/'], [repo, null]]} />
      <h1>{repo}</h1>
      <Problem error={live.error} />
      {!live.data ? (
        <Loading what="branches" error={live.error} />
      ) : (
        <table class="list branches">
          <thead>
            <tr>
              <th>branch</th>
              <th>head</th>
              <th>under test</th>
              <th>search</th>
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
                  <SearchLine b={b} />
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
