// Changes of failure rates across every branch under test (GET .../changes per branch): the
// home page's "Regressions and flakes" panel and the banner on a culprit's commit page.
import { api, type Change, type Repo } from '../api';
import { changeSentence, Sure } from './verdict';
import { paths, shortSha } from '../format';
import { useLive } from '../live';

// Changes at least this probable are shown on home and in banners.
const kShownProbability = 0.8;

interface BranchChange {
  repo: string;
  branch: string;
  change: Change;
}

async function changesOf(repos: Array<{ repo: string; branch: string }>): Promise<BranchChange[]> {
  const lists = await Promise.all(
    repos.map(async ({ repo, branch }) =>
      (await api.changes(repo, branch)).map((change) => ({ repo, branch, change })),
    ),
  );
  return lists
    .flat()
    .filter((c) => c.change.probability >= kShownProbability)
    .sort((a, b) => b.change.probability - a.change.probability || (a.change.distance ?? 1e9) - (b.change.distance ?? 1e9));
}

// Home: the most certain changes of every branch under test, newest first among equals.
export function RegressionsPanel({ repos }: { repos: Repo[] }) {
  const tested = repos.flatMap((r) => r.branches.filter((b) => b.under_test).map((b) => ({ repo: r.name, branch: b.name })));
  const key = tested.map((t) => `${t.repo}\u0000${t.branch}`).join('\u0001');
  const live = useLive(() => changesOf(tested), [key], (e) => e.type === 'runs');
  if (tested.length === 0) return null;
  const shown = live.data?.slice(0, 10) ?? null;
  return (
    <section class="card regressions">
      <h2>Regressions and flakes</h2>
      {!shown ? (
        <p class="muted">…</p>
      ) : shown.length === 0 ? (
        <p class="muted">No change of any test's failure rate is known on the branches under test.</p>
      ) : (
        <ul class="changes-list">
          {shown.map(({ repo, branch, change: c }) => (
            <li key={`${repo}/${branch}/${c.name}@${c.commit}`} data-change={c.name}>
              <Sure p={c.probability} /> <a href={paths.testHistory(repo, branch, c.name)}>{c.name}</a>{' '}
              <b>{changeSentence(c)}</b> at{' '}
              <a class="sha" href={paths.commit(repo, c.commit)}>
                {shortSha(c.commit)}
              </a>{' '}
              <span class="subject">{c.subject}</span>{' '}
              <span class="muted">
                ({repo} {branch}, <a href={paths.changes(repo, branch)}>all changes</a>)
              </span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

// A commit page's banner: the changes the statistics place at this commit, on any branch.
export function CulpritBanner({ repo, sha }: { repo: string; sha: string }) {
  const live = useLive(
    async () => {
      const branches = (await api.branches(repo)).filter((b) => b.under_test);
      const all = await changesOf(branches.map((b) => ({ repo, branch: b.name })));
      return all.filter((c) => c.change.commit === sha);
    },
    [repo, sha],
    (e) => e.type === 'runs',
  );
  if (!live.data || live.data.length === 0) return null;
  const seen = new Set<string>();
  const unique = live.data.filter((c) => !seen.has(c.change.name) && seen.add(c.change.name));
  return (
    <div class="culprit-banner" data-culprit>
      <b>This commit changed failure rates:</b>
      <ul>
        {unique.map(({ branch, change: c }) => (
          <li key={c.name}>
            <a href={paths.testHistory(repo, branch, c.name)}>{c.name}</a> {changeSentence(c)} (<Sure p={c.probability} />)
          </li>
        ))}
      </ul>
    </div>
  );
}
