// The server's JSON API (docs/api.md) as typed functions. Every GET returns parsed JSON or throws
// an ApiError with the server's message; mutations are POSTs with a JSON body.

export interface Rate {
  estimate: number;
  low: number;
  high: number;
}

// What the statistical bisection of a branch's head is doing (docs/api.md).
export type SearchState = 'off' | 'idle' | 'searching' | 'localised' | 'budget_spent';

export interface Branch {
  name: string;
  head: string;
  under_test: boolean;
  depth: number;
  extra_runs_used?: number;
  extra_runs_budget?: number;
  extra_runs_active?: number;
  extra_runs_queued?: number;
  search?: SearchState;
  head_error?: string | null; // the head's definitions error
}

export interface Queue {
  queued: Record<string, number>; // by kind: build, test
  active: number;
}

export interface Repo {
  name: string;
  branches: Branch[];
}

export type ObjectStatus =
  | 'not_enabled'
  | 'waiting_on_builds'
  | 'dependency_failed'
  | 'unresolved_dependency'
  | 'runnable'
  | 'unrunnable'
  | 'infra_blocked'
  | 'done';

// What the statistics make of a test (or case) at a commit; absent from older servers.
export type Verdict = 'good' | 'flaky' | 'broken' | 'fixed' | 'new' | 'removed' | 'unknown';

// The model's failure rate where a classification is read: its segment's, pooled over `runs`.
export interface SegmentRate extends Rate {
  runs: number;
}

export interface Classification {
  verdict: Verdict;
  confidence: number;
  rate?: SegmentRate | null; // absent from older servers; null without runs there
}

export interface HistoryObject {
  name: string;
  kind: string;
  hash: string;
  status: ObjectStatus;
  runs: number;
  failures: number;
  active_runs: number;
  failure_rate: Rate;
  classification?: Classification | null;
  cases?: Record<string, { classification?: Classification | null }>;
}

export interface ChangePoint {
  name: string;
  commit: string;
  probability: number;
  range_probability: number;
  before: Rate;
  after: Rate;
  runs_used?: number;
}

// GET .../branches/{branch}/changes: a change point with what a person needs to judge it.
export interface Change extends ChangePoint {
  test: string;
  case: string | null;
  distance: number | null; // first-parent commits from the branch's head
  subject: string;
  author: string;
  time: number;
  url: string | null; // the host's page of the commit
  runs_used: number;
}

export interface HistoryCommit {
  sha: string;
  subject: string;
  author: string;
  time: number;
  parents: string[];
  error: string | null;
  objects: HistoryObject[];
}

export interface History {
  repo: string;
  branch: string;
  head: string;
  commits: HistoryCommit[];
  change_points?: ChangePoint[];
}

export interface CaseCounts {
  runs: number;
  failures: number;
  failure_rate: Rate;
  classification?: Classification | null;
}

export interface Definition {
  project?: string;
  configuration?: string;
  dependencies?: Record<string, unknown>;
  [key: string]: unknown;
}

export interface CommitObject {
  name: string;
  kind: string;
  hash: string;
  status: ObjectStatus;
  reason: string;
  runs: number;
  active_runs: number;
  failures: number;
  target_runs: number;
  failure_rate: Rate;
  cases: Record<string, CaseCounts>;
  definition: Definition | null;
  classification?: Classification | null;
}

export interface Commit {
  repo: string;
  sha: string;
  subject: string;
  author: string;
  time: number;
  parents: string[];
  file: string | null;
  error: string | null;
  test_sets: Record<string, string[]> | null;
  triggered_test_sets: string[] | null;
  enabled_sets: string[];
  objects: CommitObject[];
}

export type RunState = 'running' | 'succeeded' | 'failed' | 'infra_failed' | 'cancelled';

export interface TestCase {
  name: string;
  success: boolean;
  elapsed: number;
  // Why it failed (JUnit's <failure>/<error>, testSummary.json's "message"); "" when none.
  message?: string;
  // Its logs kept in the run's record, each served at `url` as text.
  logs?: Array<{ name: string; url: string }>;
  // Reported but not run (JUnit <skipped>; `message` says why): not a run of the case.
  skipped?: boolean;
}

export interface Run {
  id: string;
  hash: string;
  repo: string;
  commit: string;
  name: string;
  kind: string;
  worker: string;
  state: RunState;
  exit_code: number;
  started: number;
  ended: number;
  detail: string;
  cases: TestCase[];
}

export interface WorkerRun {
  id: string;
  repo: string;
  commit: string;
  name: string;
  kind: string;
  started: number;
  extra?: boolean;
  state?: RunState;
  ended?: number;
}

export interface Worker {
  id: string;
  host: string;
  connected: boolean;
  cores: number;
  ram_gb: number;
  cores_used: number;
  running: string[];
  runs?: WorkerRun[]; // the running ones, with their test and commit
  recent?: WorkerRun[]; // the last ended, newest first
}

// GET /api/deployments[/{id}] (docs/api.md "Deployments").
export interface Deployment {
  id: string;
  repo: string;
  commit: string;
  name: string;
  state: 'waiting' | 'starting' | 'running' | 'stopped';
  worker: string;
  booted_by: string;
  booted: number;
  started: number;
  stopped: number;
  detail: string;
  cores: number;
  ram_gb: number;
  viewers: number;
  debug_run: string;
  ports: string[]; // portExpose names, reached at /api/deployments/{id}/ports/{name}/
}

// GET /api/machines: the fleet's machines (EC2), its limits and use, and what waits for a machine.
export interface MachineRun {
  run_id: string;
  repo: string;
  commit: string;
  name: string;
}
export interface Machine {
  id: string;
  instance_id: string;
  type: string;
  state: 'booting' | 'idle' | 'busy' | 'terminating';
  platform: string;
  ami: string;
  cores: number;
  ram_gb: number;
  one_job: boolean;
  booted_at: number;
  idle_seconds: number;
  runs: MachineRun[];
  cost_class: number; // 1 = the cheapest configured instance type
}
export interface MachineDemand {
  platform: string;
  ami: string;
  cores: number;
  ram_gb: number;
  runs: number;
  reason: string;
}
export interface Machines {
  enabled: boolean;
  provider: string;
  worker_name: string;
  limits: { max_workers: number; max_cores: number; max_ram_gb: number };
  used: { workers: number; cores: number; ram_gb: number };
  machines: Machine[];
  waiting: MachineDemand[];
  error: string;
}

// GET .../branches/{branch}/tests/{name}/history: one test's (or "test::case"'s) counts per
// first-parent commit, newest first, and the changes of its failure rate.
export interface TestHistoryCommit {
  sha: string;
  subject: string;
  author: string;
  time: number;
  parents: string[];
  present: boolean;
  hash: string;
  status: ObjectStatus | null;
  runs: number;
  failures: number;
  active_runs: number;
  failure_rate: Rate;
  classification?: Classification | null;
}

export interface TestHistory {
  repo: string;
  branch: string;
  head: string;
  name: string;
  test: string;
  case: string | null;
  commits: TestHistoryCommit[];
  change_points: ChangePoint[];
}

// GET /api/runs/{id}/artifacts: the run's artifacts (a build's: its outputs in the store).
export interface Artifact {
  name: string;
  file?: string; // the file's name as downloaded
  size?: number; // bytes, when the server says
  url: string;
}

// A `repos:` entry of a branch head (GET .../branches/{branch}/pins).
export interface Pin {
  name: string;
  repo: string;
  branch: string;
  commit: string; // 40-hex or "HEAD"
  auto: boolean;
  head: string | null;
  behind: number | null;
  file: string;
}

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

import { csrfToken } from './session';

const enc = encodeURIComponent;

// A branch or test name keeps its slashes in a path: each segment is encoded on its own.
export function encodePath(name: string): string {
  return name.split('/').map(enc).join('/');
}

// When a response's body was fully received (performance.now()), before it is parsed.
export interface Timing {
  bodyAt: number;
}

async function request<T>(method: string, path: string, body?: unknown, timing?: Timing): Promise<T> {
  const init: RequestInit = { method, headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers = { ...init.headers, 'Content-Type': 'application/json' };
  }
  const csrf = csrfToken();
  if (method !== 'GET' && csrf) init.headers = { ...init.headers, 'X-CSRF-Token': csrf };
  const res = await fetch(path, init);
  const text = await res.text();
  if (timing) timing.bodyAt = performance.now();
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    throw new ApiError(`${method} ${path}: not JSON (HTTP ${res.status})`, res.status);
  }
  if (!res.ok) {
    const message = (parsed as { error?: string } | null)?.error ?? `HTTP ${res.status}`;
    if (res.status === 401) throw new ApiError(`Sign in to do this: ${message}`, res.status);
    if (res.status === 403) throw new ApiError(`Not allowed: ${message}`, res.status);
    throw new ApiError(message, res.status);
  }
  return parsed as T;
}

export const api = {
  repos: () => request<Repo[]>('GET', '/api/repos'),
  branches: (repo: string) => request<Branch[]>('GET', `/api/repos/${enc(repo)}/branches`),
  history: (repo: string, branch: string, limit: number, timing?: Timing) =>
    request<History>(
      'GET',
      `/api/repos/${enc(repo)}/branches/${encodePath(branch)}/history?limit=${limit}`,
      undefined,
      timing,
    ),
  commit: (repo: string, sha: string) =>
    request<Commit>('GET', `/api/repos/${enc(repo)}/commits/${enc(sha)}`),
  commitRuns: (repo: string, sha: string, name: string) =>
    request<Run[]>('GET', `/api/repos/${enc(repo)}/commits/${enc(sha)}/runs?name=${enc(name)}`),
  run: (id: string) => request<Run>('GET', `/api/runs/${enc(id)}`),
  runLog: async (id: string): Promise<string> => {
    const res = await fetch(`/api/runs/${enc(id)}/log`);
    if (!res.ok) throw new ApiError(`log of run ${id}: HTTP ${res.status}`, res.status);
    return res.text();
  },
  workers: () => request<Worker[]>('GET', '/api/workers'),
  queue: () => request<Queue>('GET', '/api/queue'),
  changes: (repo: string, branch: string, test = '') =>
    request<Change[]>(
      'GET',
      `/api/repos/${enc(repo)}/branches/${encodePath(branch)}/changes${test ? `?test=${enc(test)}` : ''}`,
    ),
  machines: () => request<Machines>('GET', '/api/machines'),
  testHistory: (repo: string, branch: string, name: string, limit: number) =>
    request<TestHistory>(
      'GET',
      `/api/repos/${enc(repo)}/branches/${encodePath(branch)}/tests/${encodePath(name)}/history?limit=${limit}`,
    ),
  runArtifacts: (id: string) => request<Artifact[]>('GET', `/api/runs/${enc(id)}/artifacts`),
  cancelRun: (id: string) => request<unknown>('POST', `/api/runs/${enc(id)}/cancel`, {}),
  deployments: () => request<{ deployments: Deployment[] }>('GET', '/api/deployments'),
  deployment: (id: string) => request<Deployment>('GET', `/api/deployments/${enc(id)}`),
  // A deployment's name keeps its '/' encoded: it is one segment.
  bootDeployment: (repo: string, sha: string, name: string) =>
    request<{ id: string; state: string }>(
      'POST',
      `/api/repos/${enc(repo)}/commits/${enc(sha)}/deployments/${enc(name)}/boot`,
      {},
    ),
  debugRun: (id: string) => request<{ id: string; state: string }>('POST', `/api/runs/${enc(id)}/debug`, {}),
  shutdownDeployment: (id: string) => request<Deployment>('POST', `/api/deployments/${enc(id)}/shutdown`, {}),

  setBranchUnderTest: (repo: string, branch: string, enabled: boolean, depth: number) =>
    request<unknown>('POST', `/api/repos/${enc(repo)}/branches/${encodePath(branch)}/test`, {
      enabled,
      depth,
    }),
  setTarget: (repo: string, sha: string, name: string, runs: number) =>
    request<unknown>('POST', `/api/repos/${enc(repo)}/commits/${enc(sha)}/targets`, { name, runs }),
  retry: (repo: string, sha: string, name: string) =>
    request<{ name: string; retried: boolean }>('POST', `/api/repos/${enc(repo)}/commits/${enc(sha)}/retry`, { name }),
  setTestSet: (repo: string, sha: string, set: string, enabled: boolean) =>
    request<unknown>('POST', `/api/repos/${enc(repo)}/commits/${enc(sha)}/sets`, { set, enabled }),
  refresh: () => request<unknown>('POST', '/api/refresh', {}),
  pins: (repo: string, branch: string) =>
    request<Pin[]>('GET', `/api/repos/${enc(repo)}/branches/${encodePath(branch)}/pins`),
  updatePin: (repo: string, branch: string, name: string, to: string) =>
    request<{ commit: string; pin: string; to: string }>(
      'POST',
      `/api/repos/${enc(repo)}/branches/${encodePath(branch)}/pins/${enc(name)}`,
      { to },
    ),
};

// The URL of a WebSocket endpoint on this server.
export function socketUrl(path: string): string {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}${path}`;
}
