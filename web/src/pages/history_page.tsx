// `/repos/{repo}/branches/{branch}`: the history view. First-parent commits newest first, a cell
// per test (or per project × configuration group) coloured by failure rate, filters kept in the
// URL's query (?project=&configuration=&q=&results=1&group=1&builds=1&limit=N).
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';

import { api, type History } from '../api';
import { BranchState } from '../components/branch_state';
import { Crumbs, Loading, Problem, useTitle } from '../components/layout';
import { MoreRuns } from '../components/more_runs';
import { paths, shortSha } from '../format';
import { useLive } from '../live';
import { setQuery, type Place } from '../router';
import { BranchPins } from './branch_pins';
import { HistoryGrid, MergeMark, type RenderTiming } from './history_grid';
import {
  columnsKey,
  columnsOf,
  namingChoices,
  objectNames,
  rowsOf,
  type Column,
  type Filters,
  type Naming,
  type Row,
} from './history_model';

const kLimits = [50, 100, 200, 500, 1000];

function filtersOf(q: URLSearchParams, expanded: Set<string>): Filters {
  return {
    project: q.get('project') ?? '',
    configuration: q.get('configuration') ?? '',
    glob: q.get('q') ?? '',
    onlyWithResults: q.get('results') === '1',
    grouped: q.get('group') === '1',
    builds: q.get('builds') === '1',
    expanded,
  };
}

// project/configuration of each object, read from the head's resolved definitions.
function useNaming(repo: string, head: string | undefined): Map<string, Naming> {
  const [naming, setNaming] = useState(new Map<string, Naming>());
  useEffect(() => {
    if (!head) return;
    let alive = true;
    api
      .commit(repo, head)
      .then((c) => {
        const m = new Map<string, Naming>();
        for (const o of c.objects) {
          m.set(o.name, {
            project: o.definition?.project ?? '',
            configuration: o.definition?.configuration ?? '',
          });
        }
        if (alive) setNaming(m);
      })
      .catch(() => {});
    return () => {
      alive = false;
    };
  }, [repo, head]);
  return naming;
}

function FilterBar({ f, names, naming, limit }: { f: Filters; names: string[]; naming: Map<string, Naming>; limit: number }) {
  const { projects, configurations } = namingChoices(names, naming);
  const check = (key: string, on: boolean, label: string) => (
    <label>
      <input
        type="checkbox"
        name={key}
        checked={on}
        onChange={(e) => setQuery({ [key]: (e.target as HTMLInputElement).checked ? '1' : null })}
      />{' '}
      {label}
    </label>
  );
  return (
    <div class="filters">
      <label>
        project{' '}
        <select name="project" value={f.project} onChange={(e) => setQuery({ project: (e.target as HTMLSelectElement).value })}>
          <option value="">all</option>
          {projects.map((p) => (
            <option value={p}>{p}</option>
          ))}
        </select>
      </label>
      <label>
        configuration{' '}
        <select
          name="configuration"
          value={f.configuration}
          onChange={(e) => setQuery({ configuration: (e.target as HTMLSelectElement).value })}
        >
          <option value="">all</option>
          {configurations.map((p) => (
            <option value={p}>{p}</option>
          ))}
        </select>
      </label>
      <label>
        name{' '}
        <input
          type="search"
          name="q"
          placeholder="glob, e.g. unit/*"
          value={f.glob}
          onInput={(e) => setQuery({ q: (e.target as HTMLInputElement).value })}
        />
      </label>
      {check('results', f.onlyWithResults, 'only commits with results')}
      {check('group', f.grouped, 'group by project × configuration')}
      {check('builds', f.builds, 'builds')}
      <label>
        commits{' '}
        <select name="limit" value={String(limit)} onChange={(e) => setQuery({ limit: (e.target as HTMLSelectElement).value })}>
          {(kLimits.includes(limit) ? kLimits : [...kLimits, limit].sort((a, b) => a - b)).map((n) => (
            <option value={String(n)}>{n}</option>
          ))}
        </select>
      </label>
    </div>
  );
}

// Decodes every mark of the grid.
function Legend() {
  return (
    <div class="legend">
      <span class="lg-title">Colour = the model's failure rate since the last change, not this commit's runs:</span>
      <span class="c pass">3</span> passing (runs) <span class="c f1">3%</span>
      <span class="c f2">10%</span>
      <span class="c f3">25%</span>
      <span class="c f4">60%</span> flaky, by estimated rate <span class="c f5">100%</span> broken (fails every time,
      or its rate rose here) <span class="c none">·</span> no runs <span class="c none run" /> running{' '}
      <span class="c none q" /> queued · corners: <span class="c pass v v-flaky" /> flaky{' '}
      <span class="c f5 v v-broken" /> broken here <span class="c pass v v-fixed" /> fixed here{' '}
      <span class="c pass v v-new" /> new <span class="c pass v v-removed" /> removed ·{' '}
      <span class="c f3 cp" /> <span class="mark">◆</span> change of failure rate here (more likely than not; hover
      for how sure) · <span class="c f3 same" /> <span class="same-tag">same runs as ↓</span> same inputs as the
      commit below, so the same runs: nothing can change there · <span class="mark">
        <MergeMark />
      </span>{' '}
      merge
    </div>
  );
}

export function HistoryPage({ args, place }: { args: string[]; place: Place }) {
  const [repo, branch] = [args[0]!, args[1]!];
  const limit = Math.max(1, Number(place.query.get('limit')) || 100);
  const live = useLive(
    async () => {
      const timing = { bodyAt: 0 };
      const history: History = await api.history(repo, branch, limit, timing);
      return { history, arrived: { bodyAt: timing.bodyAt, parsedAt: performance.now() } };
    },
    [repo, branch, limit],
    (e) => e.type === 'runs' || e.repo === repo,
  );
  const [expanded, setExpanded] = useState(new Set<string>());
  const [rendered, setRendered] = useState<RenderTiming | null>(null);
  const history = live.data?.history ?? null;
  const naming = useNaming(repo, history?.head);
  const f = filtersOf(place.query, expanded);

  const names = useMemo(() => (history ? objectNames(history, f.builds) : []), [history, f.builds]);
  // The same columns and rows (objects) while their content is the same, so that only what
  // changed is drawn again.
  const lastColumns = useRef<Column[]>([]);
  const lastRows = useRef<Row[]>([]);
  const columns = useMemo(() => {
    const next = columnsOf(names, naming, f);
    if (columnsKey(next) !== columnsKey(lastColumns.current)) lastColumns.current = next;
    return lastColumns.current;
  }, [names, naming, f.project, f.configuration, f.glob, f.grouped, expanded]);
  const rows = useMemo(() => {
    lastRows.current = history ? rowsOf(history, columns, f, lastRows.current) : [];
    return lastRows.current;
  }, [history, columns, f.onlyWithResults]);
  const toggleGroup = (key: string): void => {
    const next = new Set(expanded);
    if (next.has(key)) next.delete(key);
    else next.add(key);
    setExpanded(next);
  };
  useTitle(branch, repo);
  const onRendered = (t: RenderTiming): void => {
    const d = document.documentElement.dataset;
    d.historyParsedMs = t.parsed.toFixed(1);
    d.historyBuiltMs = t.built.toFixed(1);
    d.historyRenderMs = t.total.toFixed(1);
    setRendered(t);
  };

  return (
    <>
      <Crumbs items={[['repos', '/'], [repo, paths.repo(repo)], [branch, null]]} />
      <h1>
        {branch}{' '}
        {history && (
          <span class="muted">
            head <a href={paths.commit(repo, history.head)}>{shortSha(history.head)}</a>
          </span>
        )}{' '}
        <a class="changes-link" href={paths.changes(repo, branch)}>
          changes
        </a>
      </h1>
      <BranchState repo={repo} branch={branch} />
      <Problem error={live.error} />
      {!history ? (
        <Loading what="history" error={live.error} />
      ) : (
        <>
          <BranchPins repo={repo} branch={branch} head={history.head} />
          <FilterBar f={f} names={names} naming={naming} limit={limit} />
          <HeadActions repo={repo} history={history} reload={live.reload} />
          <Legend />
          {columns.length === 0 && !history.commits[0]?.error && (
            <p class="muted">No tests match (or the commits define none).</p>
          )}
          <HistoryGrid
            repo={repo}
            branch={branch}
            columns={columns}
            rows={rows}
            grouped={f.grouped}
            arrived={live.data?.arrived ?? null}
            onToggleGroup={toggleGroup}
            onRendered={onRendered}
          />
          <p class="muted small" data-render-ms={rendered?.total.toFixed(1) ?? ''}>
            {rows.length} of {history.commits.length} commits × {columns.length} columns
            {rendered !== null && `, drawn ${rendered.total.toFixed(0)} ms after the data arrived`}
            {history.commits.length >= limit && (
              <>
                {' '}
                · <a href={`?${withLimit(place.query, limit * 2)}`}>show {limit * 2} commits</a>
              </>
            )}
          </p>
        </>
      )}
    </>
  );
}

// "Run N more" of the head's failing and flaky tests, and "Retry" of those blocked.
function HeadActions({ repo, history, reload }: { repo: string; history: History; reload: () => void }) {
  const head = history.commits[0];
  if (!head) return null;
  const doubtful = head.objects.filter(
    (o) =>
      o.status === 'infra_blocked' ||
      (o.kind === 'test' &&
        (o.classification?.verdict === 'flaky' || o.classification?.verdict === 'broken' || o.failures > 0)),
  );
  if (doubtful.length === 0) return null;
  const tests = doubtful.filter((o) => o.kind === 'test').length;
  return (
    <div class="head-actions">
      At the head <a href={paths.commit(repo, head.sha)}>{shortSha(head.sha)}</a>:{' '}
      <MoreRuns
        repo={repo}
        sha={head.sha}
        objects={doubtful}
        label={tests > 0 ? `of its ${tests} failing or flaky test${tests > 1 ? 's' : ''}` : undefined}
        done={reload}
      />
    </div>
  );
}

function withLimit(q: URLSearchParams, limit: number): string {
  const n = new URLSearchParams(q);
  n.set('limit', String(limit));
  return n.toString();
}
