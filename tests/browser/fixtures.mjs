// Fixtures for the browser tests: temporary folders, git repos made by the test, a real
// `testlooper serve` on a free loopback port, and Debian's Chromium driven by playwright-core
// (from web/node_modules: scripts/web-setup installs it).
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';

const require = createRequire(new URL('../../web/package.json', import.meta.url));
const { chromium } = require('playwright-core');
const NodeWebSocket = require('ws');

export const kChromium = process.env.TL_CHROMIUM ?? '/usr/bin/chromium';

export function tempDir(prefix) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `tl-browser-${prefix}-`));
}

// A git repo the test writes and commits to; author and commit times are set by the test.
export class GitRepo {
  constructor(dir) {
    this.dir = dir;
    fs.mkdirSync(dir, { recursive: true });
    this.git('init', '-q', '-b', 'main');
  }

  git(...args) {
    return execFileSync('git', args, { cwd: this.dir, env: this.env ?? process.env, encoding: 'utf8' }).trim();
  }

  write(file, content) {
    fs.mkdirSync(path.dirname(path.join(this.dir, file)), { recursive: true });
    fs.writeFileSync(path.join(this.dir, file), content);
  }

  // Commits everything; returns the new sha. `hoursAgo` sets the author and commit times.
  commit(message, { author = 'Ada Lovelace', hoursAgo = 1 } = {}) {
    this.setAuthor(author, hoursAgo);
    this.git('add', '-A');
    this.git('commit', '-q', '--allow-empty', '-m', message);
    return this.git('rev-parse', 'HEAD');
  }

  setAuthor(author, hoursAgo) {
    const date = new Date(Date.now() - hoursAgo * 3600_000).toISOString();
    this.env = {
      ...process.env,
      GIT_AUTHOR_NAME: author,
      GIT_AUTHOR_EMAIL: 'dev@example.com',
      GIT_COMMITTER_NAME: author,
      GIT_COMMITTER_EMAIL: 'dev@example.com',
      GIT_AUTHOR_DATE: date,
      GIT_COMMITTER_DATE: date,
    };
  }

  // Merges `branch` into the current branch with a merge commit; returns its sha.
  merge(branch, message, { author = 'Ada Lovelace', hoursAgo = 1 } = {}) {
    this.setAuthor(author, hoursAgo);
    this.git('merge', '-q', '--no-ff', '-m', message, branch);
    return this.git('rev-parse', 'HEAD');
  }

  firstParents(branch) {
    return this.git('rev-list', '--first-parent', branch).split('\n');
  }
}

// `testlooper serve` over `reposDir`, started on a free port; stop() ends it and its workers.
export class Server {
  static async start(binary, { reposDir, dataDir, workers = 1, extra = [] }) {
    const args = ['serve', '--repos', reposDir, '--data', dataDir, '--port', '0', '--workers', String(workers),
      '--worker-cores', '2', '--worker-ram-gb', '2', '--poll-seconds', '0.3', ...extra];
    const child = spawn(binary, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const server = new Server(child);
    child.stderr.on('data', (d) => (server.stderr += d));
    const port = await new Promise((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`serve did not start: ${out}${server.stderr}`)), 20_000);
      child.stdout.on('data', (d) => {
        out += d;
        const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
      child.on('exit', (code) => reject(new Error(`serve exited (${code}): ${out}${server.stderr}`)));
    });
    server.url = `http://127.0.0.1:${port}`;
    server.dataDir = dataDir;
    return server;
  }

  constructor(child) {
    this.child = child;
    this.stderr = '';
    this.url = '';
  }

  async get(p) {
    const res = await fetch(this.url + p);
    const body = await res.json();
    if (!res.ok) throw new Error(`GET ${p}: ${res.status} ${JSON.stringify(body)}`);
    return body;
  }

  async post(p, body) {
    const res = await fetch(this.url + p, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    const parsed = await res.json();
    if (!res.ok) throw new Error(`POST ${p}: ${res.status} ${JSON.stringify(parsed)}`);
    return parsed;
  }

  async stop() {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    try {
      process.kill(-this.child.pid, 'SIGTERM');
    } catch {
      return;
    }
    const killer = setTimeout(() => {
      try {
        process.kill(-this.child.pid, 'SIGKILL');
      } catch {}
    }, 5000);
    await exited;
    clearTimeout(killer);
  }
}

// A worker the test plays, from Node (a page's WebSocket cannot send the worker token): connects
// to the server's /api/worker with its worker token, says hello (`hello` adds to or overrides
// the defaults), and keeps every message it is sent in `messages`.
export class FakeWorker {
  static async connect(server, hello = {}) {
    const token = fs.readFileSync(path.join(server.dataDir, 'worker.token'), 'utf8').trim();
    const ws = new NodeWebSocket(`${server.url.replace('http://', 'ws://')}/api/worker`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    const worker = new FakeWorker(ws);
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', (e) => reject(new Error(`worker socket failed: ${e.message}`)));
    });
    worker.send({ type: 'hello', worker: 'fake', cores: 2, ram_gb: 2, host: 'browser-test', running: [], finished: [], ...hello });
    return worker;
  }

  constructor(ws) {
    this.ws = ws;
    this.messages = [];
    this.closed = new Promise((resolve) => ws.once('close', resolve));
    ws.on('message', (data) => this.messages.push(JSON.parse(data.toString())));
  }

  send(message) {
    this.ws.send(JSON.stringify(message));
  }

  jobs() {
    return this.messages.filter((m) => m.type === 'job');
  }

  async close() {
    this.ws.close();
    await this.closed;
  }
}

// Debian's Chromium, headless, with a fresh profile; loopback pages only.
export async function launchBrowser(profileDir) {
  return chromium.launchPersistentContext(profileDir, {
    executablePath: kChromium,
    headless: true,
    viewport: { width: 1440, height: 900 },
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
}

// Saves a screenshot of `page` as <artifacts>/<name>.png, once the last frame has painted.
export async function screenshot(page, artifacts, name) {
  await page.waitForTimeout(150);
  await page.screenshot({ path: path.join(artifacts, `${name}.png`) });
}
