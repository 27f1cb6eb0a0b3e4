// `/repos/{repo}/branches/{branch}/tests/{name}`: one test's (or, for "test::case", one test
// case's) failure rate along the branch's first-parent history, plotted (uPlot) with its 95%
// interval per commit and the suspected change points, and listed per commit with the
// statistics' classification.
import 'uplot/dist/uPlot.min.css';

import { useEffect, useMemo, useRef } from 'preact/hooks';
import uPlot from 'uplot';

import { api, type ChangePoint, type TestHistoryCommit } from '../api';
import { Crumbs, Loading, Problem, useTitle, When } from '../components/layout';
import { StatusBadge } from '../components/status';
import { changeSentence, Sure, VerdictBadge } from '../components/verdict';
import { MoreRuns } from '../components/more_runs';
import { modelClass, modelRateText, paths, percent, rateText, shortSha } from '../format';
import { useLive } from '../live';
import type { Place } from '../router';

// A change is drawn solid when it is more likely than not (the history grid marks those).
const kSuspected = 0.5;

const kModel = '#b03a2e';
const kRaw = 'rgba(60,60,60,0.35)';
const kChange = '#7d3cff';

// The model along the history (oldest first): the failure rate of the segment each commit lies
// in, as steps with their 95% band; each commit's own runs as faint points; the changes labelled.
function RatePlot({ points, changes }: { points: TestHistoryCommit[]; changes: ChangePoint[] }) {
  const host = useRef<HTMLDivElement>(null);
  useEffect(() => {
    // Three x positions per commit (its left edge, its centre, its right edge), so that each
    // segment's rate is a flat step over its commits that changes halfway between two commits,
    // where the change lines are drawn, and the commit's own runs sit at its centre.
    const kEdge = 0.4999;
    const xs: number[] = [];
    const model: Array<number | null> = [];
    const low: Array<number | null> = [];
    const high: Array<number | null> = [];
    const raw: Array<number | null> = [];
    points.forEach((p, i) => {
      const r = p.present && p.classification?.rate && p.classification.rate.runs > 0 ? p.classification.rate : null;
      for (const dx of [-kEdge, 0, kEdge]) {
        xs.push(i + dx);
        model.push(r?.estimate ?? null);
        low.push(r?.low ?? null);
        high.push(r?.high ?? null);
        raw.push(dx === 0 && p.runs > 0 ? p.failures / p.runs : null);
      }
    });
    const changeAt = changes
      .map((cp) => ({ cp, i: points.findIndex((p) => p.sha === cp.commit), sure: cp.range_probability >= kSuspected }))
      .filter((c) => c.i >= 0);
    const width = Math.max(400, host.current!.clientWidth - 16);
    const plot = new uPlot(
      {
        width,
        height: 280,
        padding: [28, 48, 0, 8],
        legend: { show: false },
        scales: { x: { time: false, range: [-0.5, Math.max(0.5, points.length - 0.5)] }, y: { range: [0, 1] } },
        series: [
          {},
          { label: 'model', stroke: kModel, width: 2.5, points: { show: false } },
          { label: '95% low', stroke: 'rgba(176,58,46,0.25)', points: { show: false } },
          { label: '95% high', stroke: 'rgba(176,58,46,0.25)', points: { show: false } },
          { label: 'runs', stroke: kRaw, width: 0, points: { show: true, size: 6, fill: kRaw, stroke: kRaw } },
        ],
        bands: [{ series: [3, 2], fill: 'rgba(176,58,46,0.13)' }],
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
              ctx.strokeStyle = kChange;
              ctx.fillStyle = kChange;
              ctx.lineWidth = 2;
              ctx.font = `${12 * devicePixelRatio}px sans-serif`;
              ctx.textBaseline = 'bottom';
              for (const { cp, i, sure } of changeAt) {
                // The change is between the commit before and this one.
                ctx.setLineDash(sure ? [] : [6, 4]);
                const x = u.valToPos(i - 0.5, 'x', true);
                ctx.beginPath();
                ctx.moveTo(x, u.bbox.top);
                ctx.lineTo(x, u.bbox.top + u.bbox.height);
                ctx.stroke();
                const label = `◆ ${percent(cp.before.estimate)} → ${percent(cp.after.estimate)}, ${Math.floor(
                  cp.range_probability * 100,
                )}% sure`;
                const w = ctx.measureText(label).width;
                const lx = Math.min(Math.max(x - w / 2, u.bbox.left), u.bbox.left + u.bbox.width - w);
                ctx.fillText(label, lx, u.bbox.top - 4 * devicePixelRatio);
              }
              ctx.restore();
            },
          ],
        },
      },
      [xs, model, low, high, raw],
      host.current!,
    );
    return () => plot.destroy();
  }, [points, changes]);
  return (
    <div class="plot-box">
      <div
        class="plot"
        ref={host}
        data-points={points.length}
        data-with-runs={points.filter((p) => p.runs > 0).length}
        data-segment-rates={[...new Set(points.map((p) => p.classification?.rate?.estimate).filter((r) => r != null))]
          .map((r) => r!.toFixed(3))
          .join(' ')}
        data-change-points={changes.length}
        data-change-commits={changes.map((c) => c.commit).join(' ')}
      />
      <div class="plot-legend">
        <span>
          <i class="lg-model" /> failure rate of the model (runs pooled between changes)
        </span>
        <span>
          <i class="lg-band" /> its 95% interval
        </span>
        <span>
          <i class="lg-raw" /> one commit's own runs (failures / runs)
        </span>
        <span>
          <i class="lg-change" /> change of failure rate: before → after, how sure (dashed: less likely than not)
        </span>
      </div>
    </div>
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
  useTitle(name, branch, repo);
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
      {head && head.present && (
        <p class="head-actions">
          At the head <a href={paths.commit(repo, head.sha)}>{shortSha(head.sha)}</a>:{' '}
          <MoreRuns
            repo={repo}
            sha={head.sha}
            objects={[{ name: test, kind: 'test', runs: head.runs, status: head.status }]}
            done={live.reload}
          />
        </p>
      )}
      <Problem error={live.error} />
      {!history ? (
        <Loading what="history" error={live.error} />
      ) : (
        <>
          <RatePlot points={points} changes={changes} />
          {changes.length > 0 ? (
            <ul class="changes">
              {changes.map((cp) => (
                <li key={cp.commit} data-change={cp.commit}>
                  <span class={cp.range_probability >= kSuspected ? 'cp-mark' : 'muted'}>◆</span> at{' '}
                  <a href={paths.commit(repo, cp.commit)}>{shortSha(cp.commit)}</a>: {changeSentence(cp)} (
                  <Sure p={cp.range_probability} />)
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
                <th>this commit: failures/runs · rate (95%)</th>
                <th>model: rate since the last change</th>
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
                  <td class="muted">
                    <When t={p.time} />
                  </td>
                  <td>
                    {p.status ? (
                      <StatusBadge status={p.status} active={p.active_runs} />
                    ) : (
                      <span class="muted">absent</span>
                    )}
                  </td>
                  <td class={p.present ? `rate ${modelClass(p.classification, p.runs, p.failures)}` : ''}>
                    {p.present && `${p.failures}/${p.runs} · ${rateText(p.failure_rate, p.runs)}`}
                  </td>
                  <td class="muted">{p.present && modelRateText(p.classification)}</td>
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
