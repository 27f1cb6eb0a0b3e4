// `/runs/{id}`: one run. Its log in a terminal (xterm.js), following `/api/runs/{id}/log/live`
// while the run is running; its timing, worker, outcome and test cases (failed first, each with
// why it failed and its logs, its name linking to the case's history along a branch).
import '@xterm/xterm/css/xterm.css';

import { FitAddon } from '@xterm/addon-fit';
import { Terminal } from '@xterm/xterm';
import { useEffect, useRef, useState } from 'preact/hooks';

import { api, ApiError, socketUrl, type Branch, type Run, type TestCase } from '../api';
import { CancelButton } from '../components/cancel';
import { DebugButton } from '../components/deploy_buttons';
import { Crumbs, Loading, Problem } from '../components/layout';
import { RunStateBadge } from '../components/status';
import { dateTime, duration, paths, shortSha } from '../format';
import { useLive } from '../live';
import { branchFor } from './test_page';

type Follow = 'loading' | 'following' | 'complete';

// The log: streamed over the live socket when the run is running when the page opens, else
// fetched whole. The socket sends everything so far first, so nothing is missed either way.
function LogTerminal({ id, running }: { id: string; running: boolean }) {
  const host = useRef<HTMLDivElement>(null);
  const [follow, setFollow] = useState<Follow>('loading');
  const [bytes, setBytes] = useState(0);

  useEffect(() => {
    const term = new Terminal({
      convertEol: true,
      disableStdin: true,
      scrollback: 100000,
      fontSize: 13,
      fontFamily: 'ui-monospace, "DejaVu Sans Mono", monospace',
      theme: { background: '#14161a' },
    });
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.open(host.current!);
    fit.fit();
    const onResize = (): void => fit.fit();
    window.addEventListener('resize', onResize);
    let total = 0;
    const write = (text: string): void => {
      term.write(text);
      total += text.length;
      setBytes(total);
    };
    let socket: WebSocket | null = null;
    let alive = true;
    if (running) {
      socket = new WebSocket(socketUrl(`/api/runs/${encodeURIComponent(id)}/log/live`));
      socket.onopen = () => setFollow('following');
      socket.onmessage = (m: MessageEvent) => write(String(m.data));
      socket.onclose = () => alive && setFollow('complete');
    } else {
      api
        .runLog(id)
        .then((text) => {
          if (!alive) return;
          write(text);
          setFollow('complete');
        })
        .catch((e: unknown) => alive && write(`[could not read the log: ${String(e)}]`));
    }
    return () => {
      alive = false;
      socket?.close();
      window.removeEventListener('resize', onResize);
      term.dispose();
    };
    // The mode is chosen once per run: a running run's socket carries its log to the end.
  }, [id]);

  return (
    <div class="log-wrap">
      <div class="log-head">
        <span data-follow={follow}>
          {follow === 'following' ? '● following the live log' : follow === 'complete' ? 'complete log' : 'loading the log…'}
        </span>{' '}
        <span class="muted" data-log-bytes={bytes}>
          {bytes} bytes
        </span>{' '}
        <a href={`/api/runs/${encodeURIComponent(id)}/log`} target="_blank" rel="noopener">
          raw
        </a>
      </div>
      <div class="log" ref={host} />
    </div>
  );
}

function size(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
}

// The run's artifacts (GET /api/runs/{id}/artifacts), fetched again when the run ends.
function Artifacts({ id }: { id: string }) {
  const live = useLive(
    () =>
      api.runArtifacts(id).catch((e: unknown) => {
        // A server without the listing (or a run without a record) has none to show.
        if (e instanceof ApiError && e.status === 404) return [];
        throw e;
      }),
    [id],
    (e) => e.type === 'run' && e.run_id === id,
  );
  const list = live.data;
  return (
    <section class="artifacts-section">
      <h2>Artifacts</h2>
      <Problem error={live.error} />
      {!list ? (
        <Loading what="artifacts" error={live.error} />
      ) : list.length === 0 ? (
        <p class="muted" data-artifacts="0">
          No artifacts.
        </p>
      ) : (
        <table class="list artifacts" data-artifacts={list.length}>
          <tbody>
            {list.map((a) => (
              <tr key={a.url} data-artifact={a.name}>
                <td>
                  <a href={a.url} download={a.file ?? a.name.split('/').pop()}>
                    {a.name || a.file}
                  </a>
                </td>
                <td class="muted">{a.file && a.file !== a.name ? a.file : ''}</td>
                <td class="size muted">{a.size === undefined ? '' : size(a.size)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function RunFacts({ run }: { run: Run }) {
  const end = run.ended || (run.state === 'running' ? Date.now() / 1000 : run.started);
  return (
    <table class="facts">
      <tbody>
        <tr>
          <th>state</th>
          <td>
            <RunStateBadge state={run.state} /> {(run.state === 'succeeded' || run.state === 'failed') && `exit code ${run.exit_code}`}
            {run.state === 'running' && <CancelButton key={run.id} id={run.id} />}
            {run.state === 'failed' && <DebugButton key={`debug-${run.id}`} id={run.id} />}
            {run.detail && <span class="muted"> · {run.detail}</span>}
          </td>
        </tr>
        <tr>
          <th>of</th>
          <td>
            <a href={paths.test(run.repo, run.commit, run.name)}>{run.name}</a> ({run.kind}) at{' '}
            <a href={paths.commit(run.repo, run.commit)}>
              {run.repo} {shortSha(run.commit)}
            </a>{' '}
            · identity <code>{run.hash.slice(0, 12)}</code>
          </td>
        </tr>
        <tr>
          <th>timing</th>
          <td>
            started {dateTime(run.started)}
            {run.ended ? `, ended ${dateTime(run.ended)}` : ''} · {duration(end - run.started)}
          </td>
        </tr>
        <tr>
          <th>worker</th>
          <td>
            <a href={paths.workers()}>{run.worker}</a>
          </td>
        </tr>
      </tbody>
    </table>
  );
}

// The run's test cases, failed first, skipped last: each case's message (why it failed or was
// skipped; as text, pre-formatted) and logs under it; each name links to the case's history along
// `branch` (when the repo has one).
function Cases({ run, branch }: { run: Run; branch: string | null }) {
  const failed = run.cases.filter((c) => !c.success);
  const passed = run.cases.filter((c) => c.success && !c.skipped);
  const skipped = run.cases.filter((c) => c.skipped);
  const state = (c: TestCase): string => (c.skipped ? 'skipped' : c.success ? 'passed' : 'failed');
  const row = (c: TestCase, i: number) => (
    <tbody key={i} data-case={c.name} data-case-state={state(c)}>
      <tr>
        <td class={`mark ${c.skipped ? 'skip' : c.success ? 'ok' : 'bad'}`} title={state(c)}>
          {c.skipped ? '–' : c.success ? '✓' : '✗'}
        </td>
        <td>
          {branch ? (
            <a href={paths.testHistory(run.repo, branch, `${run.name}::${c.name}`)} title={`${c.name} along ${branch}`}>
              {c.name}
            </a>
          ) : (
            c.name
          )}
          {(c.logs ?? []).map((l) => (
            <span key={l.url}>
              {' · '}
              <a class="case-log" href={l.url} target="_blank" rel="noopener">
                {l.name.split('/').pop()}
              </a>
            </span>
          ))}
        </td>
        <td class="muted">{duration(c.elapsed)}</td>
      </tr>
      {c.message ? (
        <tr class="case-message-row">
          <td />
          <td colSpan={2}>
            <pre class="case-message">{c.message}</pre>
          </td>
        </tr>
      ) : null}
    </tbody>
  );
  return (
    <>
      <h2>
        Test cases: {passed.length} passed, {failed.length} failed{skipped.length > 0 && `, ${skipped.length} skipped`}
      </h2>
      <table class="list cases">{[...failed, ...passed, ...skipped].map(row)}</table>
    </>
  );
}

export default function RunPage({ args }: { args: string[] }) {
  const id = args[0]!;
  const live = useLive(() => api.run(id), [id], (e) => e.type === 'run' && e.run_id === id);
  const run = live.data;
  const repo = run?.repo;
  const [branches, setBranches] = useState<Branch[]>([]);
  useEffect(() => {
    if (repo) void api.branches(repo).then(setBranches, () => setBranches([]));
  }, [repo]);
  const branch = run ? branchFor(branches, run.commit, null) : null;
  const casesFirst = run?.cases.some((c) => !c.success) ?? false;
  return (
    <>
      <Crumbs items={[['repos', '/'], ...(run ? ([[run.repo, paths.repo(run.repo)]] as Array<[string, string]>) : []), [`run ${id}`, null]]} />
      <Problem error={live.error} />
      {!run ? (
        <Loading what="run" error={live.error} />
      ) : (
        <>
          <h1>
            {run.name} <span class="muted">run {run.id}</span>
          </h1>
          <RunFacts run={run} />
          {/* Cases that failed say why before the whole log; a passing run's list comes after it. */}
          {casesFirst && <Cases run={run} branch={branch} />}
          <LogTerminal key={id} id={id} running={run.state === 'running'} />
          {run.cases.length > 0 && !casesFirst && <Cases run={run} branch={branch} />}
          <Artifacts id={run.id} />
        </>
      )}
    </>
  );
}
