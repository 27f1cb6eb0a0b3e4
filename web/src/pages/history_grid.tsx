// The history grid: one row per first-parent commit (newest first), one cell per column, coloured
// by failure rate. Only the rows in view (and a margin) are in the document, each row's cells are
// one piece of HTML, and one click and one hover handler serve the whole grid: 1,000 commits ×
// 100 tests draw as fast as 20.
import { Component } from 'preact';
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';

import { changeSentence, verdictText } from '../components/verdict';
import { age, dateTime, modelClass, modelRateText, paths, percent, shortSha } from '../format';
import { navigate } from '../router';
import type { Cell, Column, Row } from './history_model';

const kCellWidth = 40;
const kRowHeight = 22; // px; .hrow in style.css
const kOverscan = 12; // rows drawn above and below the view

// The rows [first, last) that the scroll position shows, with the margin.
function rowsInView(scroller: HTMLElement | null, body: HTMLElement | null, count: number): [number, number] {
  const top = scroller && body ? Math.max(0, scroller.scrollTop - body.offsetTop) : 0;
  const height = scroller?.clientHeight || window.innerHeight;
  const first = Math.max(0, Math.floor(top / kRowHeight) - kOverscan);
  return [first, Math.min(count, Math.ceil((top + height) / kRowHeight) + kOverscan)];
}

const kMarked = new Set(['flaky', 'broken', 'fixed', 'new', 'removed']);

function cellClass(c: Cell): string {
  let cls = `c ${c.present ? modelClass(c.classification, c.runs, c.failures) : 'absent'}`;
  if (c.same && c.present) cls += ' same';
  if (c.active > 0) cls += ' run';
  else if (c.queued) cls += ' q';
  if (c.changePoint) cls += ' cp';
  // A corner mark for the verdicts worth a look; good and unknown cells stay plain.
  const v = c.classification?.verdict;
  if (v && kMarked.has(v)) cls += ` v v-${v}`;
  return cls;
}

// A failing or flaky test's cell says the model's failure rate ("20%"), not this commit's counts;
// a passing one its runs.
function cellText(c: Cell): string {
  const v = c.classification?.verdict;
  const rate = c.classification?.rate;
  if ((v === 'flaky' || v === 'broken') && rate && rate.runs > 0) return percent(rate.estimate);
  if (c.runs === 0) return c.present && c.active === 0 && !c.queued ? '·' : '';
  return c.failures > 0 ? `${c.failures}/${c.runs}` : String(c.runs);
}

// A row's cells as HTML: the browser's parser builds 100 cells far faster than 100 element
// creations. Only our class names and numbers go in, so nothing needs escaping.
function cellsHtml(cells: Cell[]): string {
  let html = '';
  for (let i = 0; i < cells.length; i++) {
    const c = cells[i]!;
    html += `<span class="${cellClass(c)}" data-i="${i}">${cellText(c)}</span>`;
  }
  return html;
}

export function MergeMark() {
  return (
    <svg class="merge-icon" viewBox="0 0 12 12" width="12" height="12" aria-label="merge">
      <circle cx="3" cy="2" r="1.6" />
      <circle cx="9" cy="2" r="1.6" />
      <circle cx="3" cy="10" r="1.6" />
      <path d="M3 3.5v5M9 3.5c0 3-6 2.5-6 5" fill="none" stroke="currentColor" stroke-width="1.3" />
    </svg>
  );
}

interface RowProps {
  repo: string;
  row: Row;
  now: number;
}

// One commit's row; redrawn only when its data changes.
class GridRow extends Component<RowProps> {
  override shouldComponentUpdate(next: RowProps): boolean {
    return next.row !== this.props.row || next.repo !== this.props.repo;
  }

  override render({ repo, row, now }: RowProps) {
    const c = row.commit;
    const merge = c.parents.length > 1;
    const changed = row.changes.length > 0;
    return (
      <div class={`hrow${changed ? ' has-cp' : ''}${row.sameAsNext ? ' same-next' : ''}`} data-sha={c.sha}>
        <div class="meta">
          <a class="sha" href={paths.commit(repo, c.sha)}>
            {shortSha(c.sha)}
          </a>
          <span
            class="mark"
            data-mark={changed ? 'change' : merge ? 'merge' : ''}
            title={
              changed
                ? row.changes
                    .map((cp) => `${cp.name} ${changeSentence(cp)} (${Math.floor(cp.probability * 100)}% sure)`)
                    .join('\n')
                : merge
                  ? 'merge commit'
                  : undefined
            }
          >
            {changed ? '◆' : merge ? <MergeMark /> : ''}
          </span>
          {row.sameAsNext && (
            <span class="same-tag" title="same inputs as the commit below, so the same runs: nothing can change here">
              same runs as ↓
            </span>
          )}
          <span class="subj" title={c.error ? `definitions error: ${c.error}` : c.subject}>
            {c.error && <span class="warn">⚠ </span>}
            {c.subject}
          </span>
          <span class="auth">{c.author}</span>
          <span class="age" title={dateTime(c.time)}>
            {age(c.time, now)}
          </span>
        </div>
        <div class="cells" dangerouslySetInnerHTML={{ __html: cellsHtml(row.cells) }} />
      </div>
    );
  }
}

interface Tip {
  x: number;
  y: number;
  lines: string[];
}

function tipLines(column: Column, row: Row, cell: Cell): string[] {
  const lines = [column.group ? `${column.label} (${column.names.length} tests)` : column.label];
  lines.push(`${shortSha(row.commit.sha)} ${row.commit.subject}`);
  if (!cell.present) return [...lines, 'not defined at this commit'];
  if (cell.classification) lines.push(verdictText(cell.classification));
  const model = modelRateText(cell.classification);
  if (model) lines.push(`failure rate ${model} (the model's, since the last change)`);
  lines.push(`this commit: ${cell.runs} runs, ${cell.failures} failures`);
  if (cell.same && cell.present) lines.push('same inputs as the commit below: the same runs');
  if (cell.active > 0) lines.push(`${cell.active} running now`);
  else if (cell.queued) lines.push('queued: wants more runs');
  if (cell.status && cell.status !== 'done') lines.push(`status: ${cell.status.replace(/_/g, ' ')}`);
  for (const cp of row.changes) {
    if (column.names.includes(cp.name)) {
      lines.push(`◆ ${cp.name} ${changeSentence(cp)} (${Math.floor(cp.probability * 100)}% sure)`);
    }
  }
  return lines;
}

function GridHeader({
  repo,
  branch,
  columns,
  grouped,
  onToggleGroup,
}: {
  repo: string;
  branch: string;
  columns: Column[];
  grouped: boolean;
  onToggleGroup: (key: string) => void;
}) {
  // Runs of consecutive columns of one group, for the group band above the names.
  const bands: Array<{ key: string; label: string; span: number; open: boolean }> = [];
  for (const c of columns) {
    const last = bands[bands.length - 1];
    if (last && last.key === c.groupKey) last.span++;
    else bands.push({ key: c.groupKey, label: c.groupLabel, span: 1, open: c.group === null });
  }
  return (
    <div class="hhead">
      {grouped && (
        <div class="bands">
          <div class="meta" />
          {bands.map((b) => (
            <button
              class={`band${b.open ? ' open' : ''}`}
              style={{ width: `${b.span * kCellWidth}px` }}
              title={b.open ? 'collapse' : 'show its tests'}
              data-group={b.label}
              onClick={() => onToggleGroup(b.key)}
            >
              {b.open ? `▾ ${b.label}` : '▸'}
            </button>
          ))}
        </div>
      )}
      <div class="names">
        <div class="meta">
          <span>commit</span>
        </div>
        {columns.map((c) =>
          c.group ? (
            <span class="name group" data-col={c.key} title={c.names.join('\n')}>
              <span>
                {c.label} ({c.names.length})
              </span>
            </span>
          ) : (
            <a class="name" data-col={c.key} href={paths.testHistory(repo, branch, c.label)} title={c.label}>
              <span>{c.label}</span>
            </a>
          ),
        )}
      </div>
    </div>
  );
}

export interface GridProps {
  repo: string;
  branch: string;
  columns: Column[];
  rows: Row[];
  grouped: boolean;
  // When the data's body arrived and when it was parsed (performance.now()).
  arrived: { bodyAt: number; parsedAt: number } | null;
  onToggleGroup: (key: string) => void;
  onRendered: (timing: RenderTiming) => void;
}

// Milliseconds from the data's arrival: parsed, drawn into the DOM, painted (= total).
export interface RenderTiming {
  parsed: number;
  built: number;
  total: number;
}

export function HistoryGrid(props: GridProps) {
  const { repo, branch, columns, rows } = props;
  const [tip, setTip] = useState<Tip | null>(null);
  const scroller = useRef<HTMLDivElement>(null);
  const body = useRef<HTMLDivElement>(null);
  const [[first, last], setWindow] = useState<[number, number]>(() => rowsInView(null, null, rows.length));
  const rendered = useRef(props.onRendered);
  rendered.current = props.onRendered;
  const now = Date.now() / 1000;

  // The time from the data's arrival to the first paint of the grid drawn from it.
  useLayoutEffect(() => {
    const arrived = props.arrived;
    if (!arrived) return;
    const built = performance.now() - arrived.bodyAt;
    requestAnimationFrame(() =>
      setTimeout(() =>
        rendered.current({
          parsed: arrived.parsedAt - arrived.bodyAt,
          built,
          total: performance.now() - arrived.bodyAt,
        }),
      ),
    );
  }, [props.arrived]);
  useEffect(() => setTip(null), [rows]);
  const follow = (): void => {
    const next = rowsInView(scroller.current, body.current, rows.length);
    if (next[0] !== first || next[1] !== last) setWindow(next);
  };
  useLayoutEffect(follow, [rows.length]);
  useEffect(() => {
    window.addEventListener('resize', follow);
    return () => window.removeEventListener('resize', follow);
  });

  const cellAt = (target: EventTarget | null): { row: Row; column: Column; cell: Cell; el: Element } | null => {
    const el = (target as Element | null)?.closest?.('[data-i]');
    const sha = el?.closest('[data-sha]')?.getAttribute('data-sha');
    if (!el || !sha) return null;
    const row = rows.find((r) => r.commit.sha === sha);
    const i = Number(el.getAttribute('data-i'));
    const column = columns[i];
    const cell = row?.cells[i];
    return row && column && cell ? { row, column, cell, el } : null;
  };

  return (
    <div
      class="hgrid"
      ref={scroller}
      data-rows={rows.length}
      onScroll={follow}
      style={{ '--cw': `${kCellWidth}px` }}
      onClick={(e) => {
        const hit = cellAt(e.target);
        if (!hit) return;
        const sha = hit.row.commit.sha;
        navigate(
          hit.column.group
            ? paths.commit(repo, sha)
            : `${paths.test(repo, sha, hit.column.label)}?branch=${encodeURIComponent(branch)}`,
        );
      }}
      onMouseOver={(e) => {
        const hit = cellAt(e.target);
        if (!hit) return setTip(null);
        const r = hit.el.getBoundingClientRect();
        setTip({ x: r.left, y: r.bottom + 4, lines: tipLines(hit.column, hit.row, hit.cell) });
      }}
      onMouseLeave={() => setTip(null)}
    >
      <GridHeader
        repo={repo}
        branch={branch}
        columns={columns}
        grouped={props.grouped}
        onToggleGroup={props.onToggleGroup}
      />
      <div class="hbody" ref={body} style={{ height: `${rows.length * kRowHeight}px` }}>
        <div style={{ height: `${first * kRowHeight}px` }} />
        {rows.slice(first, last).map((row) => (
          <GridRow key={row.commit.sha} repo={repo} row={row} now={now} />
        ))}
      </div>
      {tip && (
        <div class="tip" style={{ left: `${tip.x}px`, top: `${tip.y}px` }}>
          {tip.lines.map((l, i) => (
            <div key={i}>{l}</div>
          ))}
        </div>
      )}
    </div>
  );
}
