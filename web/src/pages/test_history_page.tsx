// `/repos/{repo}/branches/{branch}/tests/{name}`: one test's (or, for "test::case", one test
// case's) failure rate along the branch's first-parent history, plotted (uPlot) with its 95%
// interval per commit and the suspected change points, and listed per commit with the
// statistics' classification.
import 'uplot/dist/uPlot.min.css';

import { useEffect, useMemo, useRef } from 'preact/hooks';
import uPlot from 'uplot';

import { api, type ChangePoint, type TestHistoryCommit } from '../api';
import { Crumbs, Loading, Problem } from '../components/layout';
import { StatusBadge } from '../components/status';
import { VerdictBadge } from '../components/verdict';
import { age, paths, percent, rateClass, rateText, shortSha } from '../format';
import { useLive } from '../live';
import type { Place } from '../router';

// A change is drawn solid when it is more likely than not (the history grid marks those).
const kSuspected = 0.5;

function RatePlot({ points, changes }: { points: TestHistoryCommit[]; changes: ChangePoint[] }) {
  const host = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const xs = points.map((_, i) => i);
    const has = (p: TestHistoryCommit): boolean => p.runs > 0;
    const est = points.map((p) => (has(p) ? p.failure_rate.estimate : null));
    const low = points.map((p) => (has(p) ? p.failure_rate.low : null));
    const high = points.map((p) => (has(p) ? p.failure_rate.high : null));
    const changeAt = changes
      .map((cp) => ({ i: points.findIndex((p) => p.sha === cp.commit), sure: cp.range_probability >= kSuspected }))
      .filter((c) => c.i >= 0);
    const width = Math.max(400, host.current!.clientWidth - 16);
    const rateValue = (_u: uPlot, v: number | null): string => (v == null ? '—' : percent(v));
    const plot = new uPlot(
      {
        width,
        height: 280,
        padding: [12, 48, 0, 8],
        scales: { x: { time: false, range: [-0.5, Math.max(0.5, points.length - 0.5)] }, y: { range: [0, 1] } },
        series: [
          { label: 'commit', value: (_u, i) => (i == null ? '' : shortSha(points[Math.round(i)]?.sha ?? '')) },
          {
            label: 'failure rate',
            stroke: '#c0392b',
            width: 2,
            spanGaps: true,
            points: { show: true, size: 7, fill: '#c0392b' },
            value: rateValue,
          },
          { label: '95% low', stroke: 'rgba(192,57,43,0.35)', spanGaps: true, points: { show: false }, value: rateValue },
          { label: '95% high', stroke: 'rgba(192,57,43,0.35)', spanGaps: true, points: { show: false }, value: rateValue },
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
              ctx.lineWidth = 2;
              for (const { i, sure } of changeAt) {
                // The change is between the commit before and this one.
                ctx.setLineDash(sure ? [] : [6, 4]);
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
  return (
    <div
      class="plot"
      ref={host}
      data-points={points.length}
      data-with-runs={points.filter((p) => p.runs > 0).length}
      data-change-points={changes.length}
      data-change-commits={changes.map((c) => c.commit).join(' ')}
    />
  );
}

export default function TestHistoryPage({ args, place }: { args: string[]; place: Place }) {
  const [repo, branch, name] = [args[0]!, args[1]!, args[2]!];
  const limit = Math.max(1, Number(place.query.get('limit')) || 100);
  const live = useLive(
    () => api.testHistory(repo, branch, name, limit),
    [repo, branch, name, limit],
    (e) => e.type === 'runs' || e.repo === repo,
  );
  const history = live.data;
  const points = useMemo(() => (history ? [...history.commits].reverse() : []), [history]); // oldest first
  const changes = history?.change_points ?? [];
  const test = history?.test ?? name;
  const testCase = history?.case ?? null;
  const head = history?.commits[0];
  return (
    <>
      <Crumbs
        items={[
          ['repos', '/'],
          [repo, paths.repo(repo)],
          [branch, paths.branch(repo, branch)],
          ...((testCase
            ? [
                [test, paths.testHistory(repo, branch, test)],
                [testCase, null],
              ]
            : [[name, null]]) as Array<[string, string | null]>),
        ]}
      />
      <h1>
        {testCase ? (
          <>
            {testCase} <span class="muted">case of {test}</span>
          </>
        ) : (
          name
        )}{' '}
        <span class="muted">on {branch}</span> {head && <VerdictBadge c={head.classification} />}
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
                <li key={cp.commit} data-change={cp.commit}>
                  <span class={cp.range_probability >= kSuspected ? 'cp-mark' : 'muted'}>◆</span> at{' '}
                  <a href={paths.commit(repo, cp.commit)}>{shortSha(cp.commit)}</a>: {percent(cp.before.estimate)} →{' '}
                  {percent(cp.after.estimate)} (probability {cp.range_probability.toFixed(2)})
                </li>
              ))}
            </ul>
          ) : (
            <p class="muted">No suspected change of failure rate in these {points.length} commits.</p>
          )}
          <table class="list test-history">
            <thead>
              <tr>
                <th>commit</th>
                <th>age</th>
                <th>status</th>
                <th>failures/runs · rate (95%)</th>
                <th>classification</th>
              </tr>
            </thead>
            <tbody>
              {history.commits.map((p) => (
                <tr key={p.sha} data-sha={p.sha} data-runs={p.runs} data-failures={p.failures}>
                  <td>
                    <a class="sha" href={`${paths.test(repo, p.sha, test)}?branch=${encodeURIComponent(branch)}`}>
                      {shortSha(p.sha)}
                    </a>{' '}
                    {changes.some((cp) => cp.commit === p.sha && cp.range_probability >= kSuspected) && (
                      <span class="cp-mark" title="suspected change of failure rate">
                        ◆{' '}
                      </span>
                    )}
                    {p.subject}
                  </td>
                  <td class="muted">{age(p.time)}</td>
                  <td>
                    {p.status ? (
                      <StatusBadge status={p.status} active={p.active_runs} />
                    ) : (
                      <span class="muted">absent</span>
                    )}
                  </td>
                  <td class={p.present ? `rate ${rateClass(p.runs, p.failures)}` : ''}>
                    {p.present && `${p.failures}/${p.runs} · ${rateText(p.failure_rate, p.runs)}`}
                  </td>
                  <td>
                    <VerdictBadge c={p.classification} rate={p.runs > 0 ? p.failures / p.runs : undefined} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {history.commits.length >= limit && (
            <p>
              <a href={`${paths.testHistory(repo, branch, name)}?limit=${limit * 2}`}>Show {limit * 2} commits</a>
            </p>
          )}
        </>
      )}
    </>
  );
}
