// The history grid as data: which columns (tests, or project × configuration groups), which rows
// (first-parent commits), and what each cell counts. Pure functions, so the grid only draws.
import type { ChangePoint, Classification, History, HistoryCommit, HistoryObject, ObjectStatus } from '../api';
import { globMatcher } from '../glob';

export interface Filters {
  project: string; // '' = all
  configuration: string;
  glob: string;
  onlyWithResults: boolean;
  grouped: boolean;
  builds: boolean;
  expanded: Set<string>; // group keys shown as their tests
}

export interface Naming {
  project: string;
  configuration: string;
}

// A column: one test, or a group of tests counted together.
export interface Column {
  key: string;
  label: string;
  names: string[];
  group: string | null; // the group key when this column is a (collapsed) group
  groupKey: string; // the project × configuration it belongs to
  groupLabel: string; // project · configuration
}

export interface Cell {
  runs: number;
  failures: number;
  active: number;
  queued: boolean;
  present: boolean;
  status: ObjectStatus | 'mixed' | null;
  changePoint: boolean;
  // The statistics' classification (columns of one test only; null when the server sent none).
  classification: Classification | null;
  // Every test of the cell has the same identity (inputs) at the commit below: the same runs.
  same: boolean;
}

export interface Row {
  commit: HistoryCommit;
  cells: Cell[];
  changes: ChangePoint[];
  // Every test of the commit has the identity it has at the commit below (a docs commit): the
  // same runs, so nothing can have changed here.
  sameAsNext: boolean;
}

// project and configuration of a name: from its definition when known, else the defaults of the
// definitions language (everything before the last '/', and the last '/'-segment).
export function namingOf(name: string, known: Map<string, Naming>): Naming {
  const k = known.get(name);
  if (k && (k.project || k.configuration)) return k;
  const slash = name.lastIndexOf('/');
  return slash < 0
    ? { project: name, configuration: '' }
    : { project: name.slice(0, slash), configuration: name.slice(slash + 1) };
}

// Every object name in the history (tests, and builds when asked), sorted.
export function objectNames(history: History, builds: boolean): string[] {
  const names = new Set<string>();
  for (const c of history.commits) {
    for (const o of c.objects) {
      if (o.kind === 'test' || (builds && o.kind === 'build')) names.add(o.name);
    }
  }
  return [...names].sort();
}

// The key of a column layout: equal keys draw the same columns.
export function columnsKey(columns: Column[]): string {
  return columns.map((c) => `${c.key}\u0001${c.groupKey}\u0001${c.names.length}`).join('\n');
}

export function columnsOf(names: string[], known: Map<string, Naming>, f: Filters): Column[] {
  const match = globMatcher(f.glob);
  const groups = new Map<string, { label: string; names: string[] }>();
  for (const name of names) {
    const n = namingOf(name, known);
    if (f.project && n.project !== f.project) continue;
    if (f.configuration && n.configuration !== f.configuration) continue;
    if (!match(name)) continue;
    const key = `${n.project}\u0000${n.configuration}`;
    const label = n.configuration ? `${n.project} · ${n.configuration}` : n.project;
    const g = groups.get(key) ?? { label, names: [] };
    g.names.push(name);
    groups.set(key, g);
  }
  const columns: Column[] = [];
  for (const [key, g] of groups) {
    if (f.grouped && !f.expanded.has(key)) {
      columns.push({
        key: `g:${key}`,
        label: g.label,
        names: g.names,
        group: key,
        groupKey: key,
        groupLabel: g.label,
      });
    } else {
      for (const name of g.names) {
        columns.push({
          key: name,
          label: name,
          names: [name],
          group: null,
          groupKey: key,
          groupLabel: g.label,
        });
      }
    }
  }
  return columns;
}

function cellOf(
  byName: Map<string, HistoryObject>,
  below: Map<string, HistoryObject> | null,
  names: string[],
  changed: Set<string> | undefined,
): Cell {
  const cell: Cell = {
    runs: 0,
    failures: 0,
    active: 0,
    queued: false,
    present: false,
    status: null,
    changePoint: false,
    classification: null,
    same: below !== null,
  };
  for (const name of names) {
    const o = byName.get(name);
    if (o?.hash !== below?.get(name)?.hash) cell.same = false;
    if (!o) continue;
    cell.present = true;
    cell.runs += o.runs;
    cell.failures += o.failures;
    cell.active += o.active_runs;
    if (o.status === 'runnable' && o.active_runs === 0) cell.queued = true;
    cell.status = cell.status === null || cell.status === o.status ? o.status : 'mixed';
    if (changed?.has(name)) cell.changePoint = true;
    if (names.length === 1) cell.classification = o.classification ?? null;
  }
  return cell;
}

// A change of failure rate is marked when it is more likely than not (docs/statistics.md).
export const kSuspected = 0.5;

function sameCells(a: Cell[], b: Cell[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (
      x.runs !== y.runs ||
      x.failures !== y.failures ||
      x.active !== y.active ||
      x.queued !== y.queued ||
      x.present !== y.present ||
      x.status !== y.status ||
      x.changePoint !== y.changePoint ||
      x.same !== y.same ||
      x.classification?.rate?.estimate !== y.classification?.rate?.estimate ||
      x.classification?.rate?.runs !== y.classification?.rate?.runs ||
      x.classification?.verdict !== y.classification?.verdict ||
      x.classification?.confidence !== y.classification?.confidence
    ) {
      return false;
    }
  }
  return true;
}

function sameRow(a: Row, b: Row): boolean {
  return (
    a.commit.error === b.commit.error &&
    a.commit.subject === b.commit.subject &&
    a.sameAsNext === b.sameAsNext &&
    a.changes.map((c) => c.name).join() === b.changes.map((c) => c.name).join() &&
    sameCells(a.cells, b.cells)
  );
}

// The rows of the grid. Rows equal to one in `previous` are that same object, so a live update
// redraws only the commits that changed.
export function rowsOf(history: History, columns: Column[], f: Filters, previous: Row[] = []): Row[] {
  const before = new Map(previous.map((r) => [r.commit.sha, r]));
  const changesAt = new Map<string, ChangePoint[]>();
  for (const cp of history.change_points ?? []) {
    if (cp.range_probability < kSuspected) continue;
    const list = changesAt.get(cp.commit) ?? [];
    list.push(cp);
    changesAt.set(cp.commit, list);
  }
  const shown = new Set(columns.flatMap((c) => c.names));
  const rows: Row[] = [];
  const objectsOf = (commit: HistoryCommit | undefined): Map<string, HistoryObject> | null =>
    commit ? new Map(commit.objects.map((o) => [o.name, o])) : null;
  let byName = objectsOf(history.commits[0]);
  history.commits.forEach((commit, i) => {
    const next = history.commits[i + 1];
    const here = byName!;
    byName = objectsOf(next);
    // The commit below in the list is its first parent (the list is first-parent history).
    const below = next && commit.parents[0] === next.sha ? byName : null;
    const changes = (changesAt.get(commit.sha) ?? []).filter((cp) => shown.has(cp.name));
    const changed = changes.length ? new Set(changes.map((cp) => cp.name)) : undefined;
    const cells = columns.map((c) => cellOf(here, below, c.names, changed));
    if (f.onlyWithResults && !cells.some((c) => c.runs > 0 || c.active > 0)) return;
    const tests = commit.objects.filter((o) => o.kind === 'test');
    const sameAsNext =
      below !== null && tests.length > 0 && tests.every((o) => below.get(o.name)?.hash === o.hash);
    const row = { commit, cells, changes, sameAsNext };
    const old = before.get(commit.sha);
    rows.push(old && sameRow(old, row) ? old : row);
  });
  return rows;
}

// The distinct projects and configurations, for the filter menus.
export function namingChoices(
  names: string[],
  known: Map<string, Naming>,
): { projects: string[]; configurations: string[] } {
  const projects = new Set<string>();
  const configurations = new Set<string>();
  for (const name of names) {
    const n = namingOf(name, known);
    projects.add(n.project);
    if (n.configuration) configurations.add(n.configuration);
  }
  return { projects: [...projects].sort(), configurations: [...configurations].sort() };
}
