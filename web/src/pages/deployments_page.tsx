// `/deployments` (every deployment, newest first) and `/deployments/{id}` (one, with its terminal:
// xterm.js with the fit add-on over /api/deployments/{id}/terminal; binary frames both ways, a
// resize message when the window changes; copy with the selection, paste with the browser's).
// Loaded when first visited: xterm.js is large.
import '@xterm/xterm/css/xterm.css';

import { FitAddon } from '@xterm/addon-fit';
import { Terminal } from '@xterm/xterm';
import { useEffect, useRef, useState } from 'preact/hooks';

import { api, socketUrl, type Deployment } from '../api';
import { Crumbs, Loading, Problem, useTitle, When } from '../components/layout';
import { paths, shortSha } from '../format';
import { useLive } from '../live';
import type { Place } from '../router';
import { canEdit, useSession } from '../session';

function StateBadge({ d }: { d: Deployment }) {
  return (
    <span class={`badge deployment-${d.state}`} title={d.detail || undefined}>
      {d.state}
    </span>
  );
}

function Row({ d }: { d: Deployment }) {
  return (
    <tr data-deployment={d.id}>
      <td>
        <a href={paths.deployment(d.id)}>{d.name}</a>
        {d.debug_run && (
          <span class="muted">
            {' '}
            (debug of <a href={paths.run(d.debug_run)}>{d.debug_run}</a>)
          </span>
        )}
      </td>
      <td>
        <a class="sha" href={paths.commit(d.repo, d.commit)}>
          {shortSha(d.commit)}
        </a>{' '}
        <span class="muted">{d.repo}</span>
      </td>
      <td>
        <StateBadge d={d} />
        {d.state === 'stopped' && d.detail && <div class="muted small">{d.detail}</div>}
      </td>
      <td class="muted">{d.worker}</td>
      <td class="muted">{d.booted_by}</td>
      <td>
        <When t={d.booted} />
      </td>
    </tr>
  );
}

function List() {
  useTitle('Deployments');
  const live = useLive(() => api.deployments(), [], (e) => e.type === 'deployments');
  return (
    <>
      <h1>Deployments</h1>
      <Problem error={live.error} />
      {!live.data ? (
        <Loading what="deployments" error={live.error} />
      ) : live.data.deployments.length === 0 ? (
        <p class="muted">No deployment was booted. Boot one from a commit's page.</p>
      ) : (
        <table class="deployments">
          <thead>
            <tr>
              <th>deployment</th>
              <th>commit</th>
              <th>state</th>
              <th>worker</th>
              <th>booted by</th>
              <th>booted</th>
            </tr>
          </thead>
          <tbody>
            {live.data.deployments.map((d) => (
              <Row key={d.id} d={d} />
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}

// The terminal: attached while the deployment starts or runs; the server closes it when it stops.
function TerminalView({ id }: { id: string }) {
  const box = useRef<HTMLDivElement>(null);
  const [closed, setClosed] = useState<string | null>(null);
  useEffect(() => {
    const term = new Terminal({ cursorBlink: true, convertEol: false, scrollback: 5000 });
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.open(box.current!);
    const socket = new WebSocket(socketUrl(`/api/deployments/${encodeURIComponent(id)}/terminal`));
    socket.binaryType = 'arraybuffer';
    const encoder = new TextEncoder();
    const resize = (): void => {
      fit.fit();
      if (socket.readyState === WebSocket.OPEN)
        socket.send(JSON.stringify({ type: 'resize', cols: term.cols, rows: term.rows }));
    };
    // Keys typed before the socket opened go once it has.
    const pending: Uint8Array[] = [];
    socket.onopen = () => {
      resize();
      for (const bytes of pending.splice(0)) socket.send(bytes);
      term.focus();
    };
    socket.onmessage = (m: MessageEvent) => {
      if (m.data instanceof ArrayBuffer) term.write(new Uint8Array(m.data));
    };
    socket.onclose = (e: CloseEvent) => setClosed(e.reason || 'the terminal closed');
    const typed = term.onData((data) => {
      if (socket.readyState === WebSocket.OPEN) socket.send(encoder.encode(data));
      else if (socket.readyState === WebSocket.CONNECTING) pending.push(encoder.encode(data));
    });
    const observer = new ResizeObserver(() => resize());
    observer.observe(box.current!);
    return () => {
      observer.disconnect();
      typed.dispose();
      socket.close();
      term.dispose();
    };
  }, [id]);
  return (
    <>
      <div class="deploy-terminal" ref={box} data-deployment={id} />
      {closed && <p class="muted terminal-closed">{closed}</p>}
    </>
  );
}

function One({ id }: { id: string }) {
  useTitle('Deployment', id);
  const session = useSession();
  const live = useLive(() => api.deployment(id), [id], (e) => e.type === 'deployments');
  const [error, setError] = useState<string | null>(null);
  const d = live.data;
  const shutdown = async (): Promise<void> => {
    try {
      await api.shutdownDeployment(id);
      setError(null);
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    }
  };
  return (
    <>
      <Crumbs items={[['Deployments', '/deployments'], [id, null]]} />
      <Problem error={live.error ?? error} />
      {!d ? (
        <Loading what="deployment" error={live.error} />
      ) : (
        <>
          <h1>
            {d.name} <StateBadge d={d} />
          </h1>
          <p>
            <a class="sha" href={paths.commit(d.repo, d.commit)}>
              {shortSha(d.commit)}
            </a>{' '}
            of {d.repo}, booted by {d.booted_by} <When t={d.booted} />
            {d.worker && (
              <>
                {' '}
                on {d.worker} ({d.cores} cores)
              </>
            )}
            {d.debug_run && (
              <>
                {' '}
                to debug run <a href={paths.run(d.debug_run)}>{d.debug_run}</a>
              </>
            )}
            {d.state === 'stopped' && <span class="muted"> · {d.detail}</span>}
          </p>
          {d.state === 'running' && d.ports.length > 0 && (
            <p class="ports">
              Ports:{' '}
              {d.ports.map((p) => (
                <a key={p} href={`/api/deployments/${encodeURIComponent(d.id)}/ports/${encodeURIComponent(p)}/`} target="_blank" rel="noreferrer">
                  {p}
                </a>
              ))}
            </p>
          )}
          {d.state !== 'stopped' && canEdit(session) && (
            <p>
              <button type="button" name="shutdown" onClick={() => void shutdown()}>
                shut down
              </button>
            </p>
          )}
          {d.state === 'waiting' && <p class="muted">Waiting for its builds and a worker…</p>}
          {(d.state === 'starting' || d.state === 'running') && <TerminalView key={d.id} id={d.id} />}
        </>
      )}
    </>
  );
}

export default function DeploymentsPage({ args }: { place: Place; args: string[] }) {
  return args[0] ? <One id={args[0]} /> : <List />;
}
