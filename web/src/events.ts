// The server's change events (`/api/events`, docs/api.md): one WebSocket shared by every page,
// reconnected with backoff. Listeners get each event; after a reconnect they get a synthetic
// {type: "reconnected"} since events may have been missed while the socket was down.
import { socketUrl } from './api';

export interface ServerEvent {
  type:
    | 'branch'
    | 'commits'
    | 'commit'
    | 'run'
    | 'runs'
    | 'workers'
    | 'repo'
    | 'deployments'
    | 'reconnected';
  repo?: string;
  branch?: string;
  commit?: string;
  run_id?: string;
  name?: string;
  state?: string;
}

export type Connection = 'connecting' | 'live' | 'down';

type Listener = (event: ServerEvent) => void;

const listeners = new Set<Listener>();
const connectionListeners = new Set<(c: Connection) => void>();
let socket: WebSocket | null = null;
let connection: Connection = 'connecting';
let retryMs = 250;
let everConnected = false;

function setConnection(c: Connection): void {
  connection = c;
  for (const l of connectionListeners) l(c);
}

function emit(event: ServerEvent): void {
  for (const l of [...listeners]) l(event);
}

function connect(): void {
  socket = new WebSocket(socketUrl('/api/events'));
  socket.onopen = () => {
    retryMs = 250;
    setConnection('live');
    if (everConnected) emit({ type: 'reconnected' });
    everConnected = true;
  };
  socket.onmessage = (m: MessageEvent) => {
    try {
      emit(JSON.parse(String(m.data)) as ServerEvent);
    } catch {
      // Not an event: ignore it.
    }
  };
  socket.onclose = () => {
    socket = null;
    setConnection('down');
    setTimeout(connect, retryMs);
    retryMs = Math.min(retryMs * 2, 5000);
  };
}

// Calls `listener` for every event until the returned function is called.
export function onServerEvent(listener: Listener): () => void {
  if (socket === null && connection === 'connecting') connect();
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function onConnection(listener: (c: Connection) => void): () => void {
  connectionListeners.add(listener);
  listener(connection);
  return () => connectionListeners.delete(listener);
}
