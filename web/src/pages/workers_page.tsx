// `/workers`: the connected workers, their capacity, the runs they have now (test and commit) and
// the runs they ended last; and the server's queue.
import { api, type WorkerRun } from '../api';
import { QueueLine } from '../components/branch_state';
import { Loading, Problem, useTitle, When } from '../components/layout';
import { paths, shortSha } from '../format';
import { useLive } from '../live';

// "unit/linux at 1a2b3c4d (repo)", linked to the run.
function RunRef({ r }: { r: WorkerRun }) {
  return (
    <span class="worker-run" data-run={r.id}>
      <a class="runlink" href={paths.run(r.id)} title={r.id}>
        {r.name}
      </a>{' '}
      at{' '}
      <a class="sha" href={paths.commit(r.repo, r.commit)}>
        {shortSha(r.commit)}
      </a>{' '}
      <span class="muted">{r.repo}</span>
      {r.extra && (
        <span class="muted" title="spent from a branch's extra-run budget (the statistical bisection)">
          {' '}
          (search)
        </span>
      )}
      {r.state && (
        <>
          {' '}
          <span class={`badge run-${r.state}`}>{r.state.replace('_', ' ')}</span> <When t={r.ended ?? 0} />
        </>
      )}
    </span>
  );
}

export function WorkersPage() {
  const live = useLive(
    () => api.workers(),
    [],
    (e) => e.type === 'workers' || e.type === 'runs' || e.type === 'run',
  );
  const queue = useLive(
    () => api.queue(),
    [],
    (e) => e.type === 'workers' || e.type === 'runs' || e.type === 'run' || e.type === 'commits',
  );
  useTitle('Workers');
  return (
    <>
      <h1>Workers</h1>
      <p>
        <QueueLine q={queue.data} />
      </p>
      <Problem error={live.error} />
      {!live.data ? (
        <Loading what="workers" error={live.error} />
      ) : live.data.length === 0 ? (
        <p class="muted">No worker has connected.</p>
      ) : (
        <table class="list workers">
          <thead>
            <tr>
              <th>worker</th>
              <th>host</th>
              <th>connected</th>
              <th>cores used</th>
              <th>RAM</th>
              <th>running</th>
              <th>recent runs</th>
            </tr>
          </thead>
          <tbody>
            {live.data.map((w) => (
              <tr key={w.id} data-worker={w.id}>
                <td>{w.id}</td>
                <td>{w.host}</td>
                <td>{w.connected ? <span class="badge st-done">yes</span> : <span class="badge st-dependency_failed">no</span>}</td>
                <td>
                  <span class="meter">
                    <span style={{ width: `${(100 * w.cores_used) / Math.max(1, w.cores)}%` }} />
                  </span>{' '}
                  {w.cores_used}/{w.cores}
                </td>
                <td>{w.ram_gb} GB</td>
                <td class="running">
                  {w.running.length === 0 ? (
                    <span class="muted">idle</span>
                  ) : w.runs ? (
                    w.runs.map((r) => (
                      <div key={r.id}>
                        <RunRef r={r} /> <span class="muted">since</span> <When t={r.started} />
                      </div>
                    ))
                  ) : (
                    w.running.map((id) => (
                      <a key={id} class="runlink" href={paths.run(id)}>
                        {id}
                      </a>
                    ))
                  )}
                </td>
                <td class="recent">
                  {(w.recent ?? []).length === 0 ? (
                    <span class="muted">none yet</span>
                  ) : (
                    w.recent!.map((r) => (
                      <div key={r.id}>
                        <RunRef r={r} />
                      </div>
                    ))
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
