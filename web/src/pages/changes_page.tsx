// `/repos/{repo}/branches/{branch}/changes`: every change of a test's (or case's) failure rate the
// statistics found along the branch: the test, the commit, the rate before → after with their
// intervals, how sure, and the runs spent finding it. Most certain first (or newest first);
// filtered by a test glob (`?test=`).
import { useEffect } from 'preact/hooks';

import { api, type Change } from '../api';
import { Crumbs, Loading, Problem, When } from '../components/layout';
import { Sure, changeWords } from '../components/verdict';
import { paths, percent, shortSha } from '../format';
import { setQuery, type Place } from '../router';
import { useLive } from '../live';

function interval(r: { estimate: number; low: number; high: number }): string {
  return `${percent(r.estimate)} (${percent(r.low)}–${percent(r.high)})`;
}

export function ChangeRow({ repo, branch, c }: { repo: string; branch: string; c: Change }) {
  const words = changeWords(c.before, c.after);
  const worse = c.after.estimate > c.before.estimate;
  return (
    <tr data-change={c.name} data-commit={c.commit} class={worse ? 'worse' : 'better'}>
      <td>
        <Sure p={c.probability} />
      </td>
      <td>
        <a href={paths.testHistory(repo, branch, c.test)}>{c.test}</a>
        {c.case !== null && (
          <>
            {' '}
            <span class="muted">case</span> <a href={paths.testHistory(repo, branch, c.name)}>{c.case}</a>
          </>
        )}
      </td>
      <td class="what">
        <b>{words}</b>
        <div class="rates">
          {interval(c.before)} → {interval(c.after)}
        </div>
      </td>
      <td>
        <a class="sha" href={paths.commit(repo, c.commit)}>
          {shortSha(c.commit)}
        </a>{' '}
        <span class="subject">{c.subject}</span>
        <div class="muted">
          {c.author}
          {c.time ? ', ' : ''}
          <When t={c.time} />
          {c.distance !== null && `, ${c.distance === 0 ? 'the head' : `${c.distance} below the head`}`}
          {c.url && (
            <>
              {' · '}
              <a href={c.url} target="_blank" rel="noreferrer">
                diff
              </a>
            </>
          )}
        </div>
      </td>
      <td class="num">{c.runs_used}</td>
    </tr>
  );
}

export function ChangesTable({ repo, branch, changes }: { repo: string; branch: string; changes: Change[] }) {
  return (
    <table class="list changes">
      <thead>
        <tr>
          <th>how sure</th>
          <th>test</th>
          <th>what changed (failure rate, 95% interval)</th>
          <th>commit</th>
          <th title="runs of this test along the branch that the estimate rests on">runs</th>
        </tr>
      </thead>
      <tbody>
        {changes.map((c) => (
          <ChangeRow key={`${c.name}@${c.commit}`} repo={repo} branch={branch} c={c} />
        ))}
      </tbody>
    </table>
  );
}

export function ChangesPage({ place, args }: { place: Place; args: string[] }) {
  const [repo, branch] = [args[0]!, args[1]!];
  const test = place.query.get('test') ?? '';
  const newest = place.query.get('sort') === 'newest';
  useEffect(() => {
    document.title = `Changes · ${branch} · ${repo} · TestLooper`;
  }, [repo, branch]);
  const live = useLive(
    () => api.changes(repo, branch, test),
    [repo, branch, test],
    (e) => e.repo === repo || e.type === 'runs',
  );
  const shown = live.data ? [...live.data] : null;
  if (shown && newest) {
    shown.sort((a, b) => (a.distance ?? 1e9) - (b.distance ?? 1e9) || b.probability - a.probability);
  }
  return (
    <>
      <Crumbs
        items={[
          ['repos', '/'],
          [repo, paths.repo(repo)],
          [branch, paths.branch(repo, branch)],
          ['changes', null],
        ]}
      />
      <h1>Changes of failure rates on {branch}</h1>
      <p class="muted">
        Where the statistics place a change of a test's (or a test case's) failure rate along the
        branch's first-parent history. "Sure" is a probability that the change happened at exactly
        that commit, not a failure rate.
      </p>
      <div class="filters">
        <label>
          tests{' '}
          <input
            name="test"
            placeholder="glob, e.g. unit/*"
            value={test}
            onChange={(e) => setQuery({ test: (e.target as HTMLInputElement).value })}
          />
        </label>{' '}
        <label>
          order{' '}
          <select
            name="sort"
            value={newest ? 'newest' : 'sure'}
            onChange={(e) => setQuery({ sort: (e.target as HTMLSelectElement).value === 'newest' ? 'newest' : null })}
          >
            <option value="sure">most certain first</option>
            <option value="newest">newest first</option>
          </select>
        </label>
      </div>
      <Problem error={live.error} />
      {!shown ? (
        <Loading what="changes" error={live.error} />
      ) : shown.length === 0 ? (
        <p class="muted no-changes">
          No change found{test ? ` for tests matching ${test}` : ''}: every test's failure rate looks the same
          along the branch, as far as its runs tell.
        </p>
      ) : (
        <ChangesTable repo={repo} branch={branch} changes={shown} />
      )}
    </>
  );
}
