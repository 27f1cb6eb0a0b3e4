// `/machines`: the fleet (docs/configuration.md "The fleet"): each machine booted in EC2, its type,
// state, job and idle time; the limits and how much of them is in use; what waits for a machine.
import { useEffect, useRef } from 'preact/hooks';

import { api, type Machines } from '../api';
import { Loading, Problem, When } from '../components/layout';
import { duration, paths, shortSha } from '../format';
import { useLive } from '../live';

// Machines boot and go idle without a server event: the page also asks every few seconds.
const kPollMs = 5000;

const kStateClass: Record<string, string> = {
  booting: 'st-waiting_on_builds',
  idle: 'st-not_enabled',
  busy: 'st-running',
  terminating: 'st-dependency_failed',
};

function Limit({ label, used, max, unit }: { label: string; used: number; max: number; unit: string }) {
  const limited = max >= 0;
  return (
    <div class="limit" data-limit={label}>
      <span class="limit-label">{label}</span>{' '}
      {limited && (
        <span class="meter">
          <span style={{ width: `${Math.min(100, (100 * used) / Math.max(1, max))}%` }} />
        </span>
      )}{' '}
      <span class="limit-value">
        {used}
        {unit} {limited ? `of ${max}${unit}` : '(no limit)'}
      </span>
    </div>
  );
}

function Fleet({ m }: { m: Machines }) {
  const now = Date.now() / 1000;
  return (
    <>
      <p class="muted">
        EC2 instances tagged <code>{m.worker_name}</code>, booted for runs no connected worker can
        take and terminated when idle.
      </p>
      {m.error && <div class="problem fleet-error">Last EC2 error: {m.error}</div>}
      <section class="limits">
        <Limit label="machines" used={m.used.workers} max={m.limits.max_workers} unit="" />
        <Limit label="cores" used={m.used.cores} max={m.limits.max_cores} unit="" />
        <Limit label="RAM" used={m.used.ram_gb} max={m.limits.max_ram_gb} unit=" GB" />
      </section>
      <h2>Machines</h2>
      {m.machines.length === 0 ? (
        <p class="muted">No machine is booted.</p>
      ) : (
        <table class="list machines">
          <thead>
            <tr>
              <th>machine</th>
              <th>instance</th>
              <th>type</th>
              <th title="1 = the cheapest configured instance type">cost class</th>
              <th>state</th>
              <th>image</th>
              <th>booted</th>
              <th>idle for</th>
              <th>job</th>
            </tr>
          </thead>
          <tbody>
            {m.machines.map((x) => (
              <tr key={x.id} data-machine={x.id} data-state={x.state}>
                <td>{x.id}</td>
                <td>
                  <code>{x.instance_id}</code>
                </td>
                <td class="type">
                  {x.type} <span class="muted">({x.cores} cores, {x.ram_gb} GB)</span>
                </td>
                <td class="cost">{'$'.repeat(Math.max(1, Math.min(8, x.cost_class)))}</td>
                <td>
                  <span class={`badge ${kStateClass[x.state] ?? ''}`}>{x.state}</span>
                  {x.one_job && <span class="muted"> one job</span>}
                </td>
                <td>
                  {x.platform}
                  {x.ami && (
                    <>
                      {' '}
                      <code>{x.ami}</code>
                    </>
                  )}
                </td>
                <td>
                  <When t={x.booted_at} now={now} />
                </td>
                <td class="idle">{x.state === 'idle' ? duration(x.idle_seconds) : ''}</td>
                <td>
                  {x.runs.length === 0 ? (
                    <span class="muted">—</span>
                  ) : (
                    x.runs.map((r) => (
                      <div key={r.run_id}>
                        <a class="runlink" href={paths.run(r.run_id)}>
                          {r.name}
                        </a>{' '}
                        <span class="muted">
                          {r.repo} {shortSha(r.commit)}
                        </span>
                      </div>
                    ))
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h2>Waiting for a machine</h2>
      {m.waiting.length === 0 ? (
        <p class="muted">Nothing waits for a machine.</p>
      ) : (
        <table class="list waiting">
          <thead>
            <tr>
              <th>runs</th>
              <th>platform</th>
              <th>image</th>
              <th>each needs</th>
              <th>why it waits</th>
            </tr>
          </thead>
          <tbody>
            {m.waiting.map((w, i) => (
              <tr key={i}>
                <td>{w.runs}</td>
                <td>{w.platform}</td>
                <td>{w.ami ? <code>{w.ami}</code> : <span class="muted">default</span>}</td>
                <td>
                  {w.cores} cores, {w.ram_gb} GB
                </td>
                <td>{w.reason || <span class="muted">booting</span>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}

export function MachinesPage() {
  useEffect(() => {
    document.title = 'Machines · TestLooper';
  }, []);
  const live = useLive(
    () => api.machines(),
    [],
    (e) => e.type === 'workers' || e.type === 'runs' || e.type === 'run',
  );
  const reload = useRef(live.reload);
  reload.current = live.reload;
  useEffect(() => {
    const timer = setInterval(() => reload.current(), kPollMs);
    return () => clearInterval(timer);
  }, []);
  return (
    <>
      <h1>Machines</h1>
      <Problem error={live.error} />
      {!live.data ? (
        <Loading what="machines" error={live.error} />
      ) : live.data.enabled ? (
        <Fleet m={live.data} />
      ) : (
        <p class="muted no-fleet">
          No fleet: no machines are booted on demand (machine_management has no EC2 settings; see
          docs/configuration.md "The fleet"). {live.data.used.workers} worker
          {live.data.used.workers === 1 ? '' : 's'} with {live.data.used.cores} cores connect on
          their own: see <a href="/workers">Workers</a>.
        </p>
      )}
    </>
  );
}
