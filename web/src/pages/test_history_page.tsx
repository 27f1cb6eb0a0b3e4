// `/repos/{repo}/branches/{branch}?test={name}`: one test's failure rate along the branch's
// first-parent history, plotted (uPlot) with its 95% interval per commit and the suspected
// change points, and listed per commit.
import 'uplot/dist/uPlot.min.css';

import { useEffect, useMemo, useRef } from 'preact/hooks';
import uPlot from 'uplot';

import { api, type ChangePoint, type History, type HistoryObject } from '../api';
import { Crumbs, Loading, Problem } from '../components/layout';
import { StatusBadge } from '../components/status';
import { age, paths, percent, rateClass, rateText, shortSha } from '../format';
import { useLive } from '../live';
import type { Place } from '../router';

interface Point {
  sha: string;
  subject: string;
  time: number;
  o: HistoryObject | undefined;
}

function pointsOf(history: History, name: string): Point[] {
  return history.commits
    .map((c) => ({ sha: c.sha, subject: c.subject, time: c.time, o: c.objects.find((x) => x.name === name) }))
    .reverse(); // oldest first, left to right
}

function RatePlot({ points, changes }: { points: Point[]; changes: ChangePoint[] }) {
  const host = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const xs = points.map((_, i) => i);
    const has = (p: Point): boolean => (p.o?.runs ?? 0) > 0;
    const est = points.map((p) => (has(p) ? p.o!.failure_rate.estimate : null));
    const low = points.map((p) => (has(p) ? p.o!.failure_rate.low : null));
    const high = points.map((p) => (has(p) ? p.o!.failure_rate.high : null));
    const changeAt = changes.map((cp) => points.findIndex((p) => p.sha === cp.commit)).filter((i) => i >= 0);
    const width = Math.max(400, host.current!.clientWidth);
    const plot = new uPlot(
      {
        width,
        height: 280,
        padding: [12, 48, 0, 8],
        scales: { x: { time: false }, y: { range: [0, 1] } },
        series: [
          { label: 'commit', value: (_u, i) => (i == null ? '' : shortSha(points[Math.round(i)]?.sha ?? '')) },
          { label: 'failure rate', stroke: '#c0392b', width: 2, points: { show: true, size: 6 }, value: (_u, v) => (v == null ? '—' : percent(v)) },
          { label: '95% low', stroke: 'rgba(192,57,43,0.35)', points: { show: false }, value: (_u, v) => (v == null ? '—' : percent(v)) },
          { label: '95% high', stroke: 'rgba(192,57,43,0.35)', points: { show: false }, value: (_u, v) => (v == null ? '—' : percent(v)) },
        ],
        bands: [{ series: [3, 2], fill: 'rgba(192,57,43,0.12)' }],
        axes: [
          {
            incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500],
            values: (_u, splits) => splits.map((i) => (Number.isInteger(i) ? shortSha(points[i]?.sha ?? '') : '')),
          },
          { values: (_u, splits) => splits.map((v) => percent(v)) },
        ],
        hooks: {
          draw: [
            (u) => {
              const ctx = u.ctx;
              ctx.save();
              ctx.strokeStyle = '#7d3cff';
              ctx.setLineDash([6, 4]);
              ctx.lineWidth = 2;
              for (const i of changeAt) {
                // The change is between the commit before and this one.
                const x = u.valToPos(i - 0.5, 'x', true);
                ctx.beginPath();
                ctx.moveTo(x, u.bbox.top);
                ctx.lineTo(x, u.bbox.top + u.bbox.height);
                ctx.stroke();
              }
              ctx.restore();
            },
          ],
        },
      },
      [xs, est, low, high],
      host.current!,
    );
    return () => plot.destroy();
  }, [points, changes]);
  return <div class="plot" ref={host} data-points={points.length} data-change-points={changes.length} />;
}

export default function TestHistoryPage({ args, place }: { args: string[]; place: Place }) {
  const [repo, branch] = [args[0]!, args[1]!];
  const name = place.query.get('test') ?? '';
  const limit = Math.max(1, Number(place.query.get('limit')) || 100);
  const live = useLive(
    () => api.history(repo, branch, limit),
    [repo, branch, limit],
    (e) => e.type === 'runs' || e.repo === repo,
  );
  const history = live.data;
  const points = useMemo(() => (history ? pointsOf(history, name) : []), [history, name]);
  const changes = useMemo(
    () => (history?.change_points ?? []).filter((cp) => cp.name === name),
    [history, name],
  );
  return (
    <>
      <Crumbs items={[['repos', '/'], [repo, paths.repo(repo)], [branch, paths.branch(repo, branch)], [name, null]]} />
      <h1>
        {name} <span class="muted">on {branch}</span>
      </h1>
      <Problem error={live.error} />
      {!history ? (
        <Loading what="history" />
      ) : (
        <>
          <RatePlot points={points} changes={changes} />
          {changes.length > 0 ? (
            <ul class="changes">
              {changes.map((cp) => (
                <li key={cp.commit}>
                  ◆ at <a href={paths.commit(repo, cp.commit)}>{shortSha(cp.commit)}</a>: {percent(cp.before.estimate)} →{' '}
                  {percent(cp.after.estimate)} (probability {cp.range_probability.toFixed(2)})
                </li>
              ))}
            </ul>
          ) : (
            <p class="muted">No suspected change of failure rate in these {points.length} commits.</p>
          )}
          <table class="list">
            <thead>
              <tr>
                <th>commit</th>
                <th>age</th>
                <th>status</th>
                <th>failures/runs · rate (95%)</th>
              </tr>
            </thead>
            <tbody>
              {[...points].reverse().map((p) => (
                <tr key={p.sha}>
                  <td>
                    <a class="sha" href={paths.test(repo, p.sha, name)}>
                      {shortSha(p.sha)}
                    </a>{' '}
                    {p.subject}
                  </td>
                  <td class="muted">{age(p.time)}</td>
                  <td>{p.o ? <StatusBadge status={p.o.status} active={p.o.active_runs} /> : <span class="muted">absent</span>}</td>
                  <td class={p.o ? `rate ${rateClass(p.o.runs, p.o.failures)}` : ''}>
                    {p.o && `${p.o.failures}/${p.o.runs} · ${rateText(p.o.failure_rate, p.o.runs)}`}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </>
  );
}
