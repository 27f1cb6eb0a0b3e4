// `/workers`: the connected workers, their capacity, and the runs they have now.
import { api } from '../api';
import { Loading, Problem } from '../components/layout';
import { paths } from '../format';
import { useLive } from '../live';

export function WorkersPage() {
  const live = useLive(
    () => api.workers(),
    [],
    (e) => e.type === 'workers' || e.type === 'runs' || e.type === 'run',
  );
  return (
    <>
      <h1>Workers</h1>
      <Problem error={live.error} />
      {!live.data ? (
        <Loading what="workers" />
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
                <td>
                  {w.running.length === 0 ? (
                    <span class="muted">idle</span>
                  ) : (
                    w.running.map((id) => (
                      <a key={id} class="runlink" href={paths.run(id)}>
                        {id}
                      </a>
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
