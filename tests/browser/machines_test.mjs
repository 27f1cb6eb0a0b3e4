// The Machines page (issue 14): a fleet on moto_server (a fake EC2) whose instances
// tests/fleet/instance_harness.py plays with real `testlooper worker`s. A waiting 4-core test
// boots an m5.xlarge; the page shows it busy with that run, then idle, and the limits in use.
// Skipped (said so) when moto_server is missing.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { assert, eventually, test } from './harness.mjs';
import { GitRepo, launchBrowser, Server, tempDir, screenshot } from './fixtures.mjs';

const kHarness = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fleet', 'instance_harness.py');

function hasMoto() {
  try {
    execFileSync('sh', ['-c', 'command -v moto_server'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

// moto_server on a free loopback port; resolves to { url, child }.
function startMoto(dir) {
  const log = path.join(dir, 'moto.log');
  const child = spawn('moto_server', ['-H', '127.0.0.1', '-p', '0'], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`moto_server did not start: ${out}`)), 60_000);
    const onData = (d) => {
      out += d;
      fs.appendFileSync(log, d);
      const m = /Running on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ url: `http://127.0.0.1:${m[1]}`, child });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => reject(new Error(`moto_server exited (${code}): ${out}`)));
  });
}

function killGroup(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

export function register({ binary, artifacts }) {
  const dirs = [];
  let browser = null;
  let server = null;
  let moto = null;
  let harness = null;

  test('machines: a waiting 4-core test boots an m5.xlarge, shown busy with its run, then idle', async () => {
    if (!hasMoto()) {
      console.log('# machines: skipped: moto_server is not installed');
      return;
    }
    const root = tempDir('machines');
    dirs.push(root);
    Object.assign(process.env, {
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
      AWS_SESSION_TOKEN: 'testing',
      AWS_DEFAULT_REGION: 'us-east-1',
    });
    moto = await startMoto(root);
    const types = { 't3.small': [2, 2], 'm5.xlarge': [4, 16], 'm5.8xlarge': [32, 128] };
    fs.mkdirSync(path.join(root, 'harness'), { recursive: true });
    harness = spawn(
      'python3',
      [kHarness, '--moto', moto.url, '--worker-name', 'tl-browser', '--testlooper', binary, '--dir', path.join(root, 'harness'),
        '--types', JSON.stringify(types)],
      { detached: true, stdio: ['ignore', fs.openSync(path.join(root, 'harness.err'), 'w'), fs.openSync(path.join(root, 'harness.err'), 'a')] },
    );
    const app = new GitRepo(path.join(root, 'repos', 'app'));
    app.write(
      'testlooper.yml',
      'looper_version: 5\nenvironments: {linux: {platform: linux, image: {host: true}}}\n' +
        "tests: {wide/linux: {command: 'sleep 8', min_cores: 4}}\n",
    );
    app.commit('a 4-core test');
    const config = path.join(root, 'config.json');
    fs.writeFileSync(
      config,
      JSON.stringify({
        source_control: { path_to_repos: path.join(root, 'repos') },
        machine_management: {
          worker_name: 'tl-browser',
          region: 'us-east-1',
          endpoint_url: moto.url,
          instance_types: Object.entries(types).map(([name, [cores, ram_gb]]) => [{ cores, ram_gb }, name]),
          linux_ami: 'ami-0a1b2c3d4e5f60718',
          max_cores: 16,
          idle_shutdown_seconds: 3600,
        },
      }),
    );
    server = await Server.start(binary, {
      reposDir: path.join(root, 'repos'),
      dataDir: path.join(root, 'data'),
      workers: 0,
      extra: ['--config', config],
    });
    await eventually(async () => (await server.get('/api/repos')).length === 1, { what: 'the repo is seen' });
    await server.post('/api/repos/app/branches/main/test', { enabled: true });

    let last = null;
    await eventually(
      async () => {
        last = await server.get('/api/machines');
        return last.machines.some((m) => m.state === 'busy');
      },
      { what: 'a machine is booted and runs the test', timeoutMs: 120_000 },
    ).catch((e) => {
      const harnessLog = ['harness.err', 'harness/harness.log']
        .map((f) => (fs.existsSync(path.join(root, f)) ? fs.readFileSync(path.join(root, f), 'utf8') : ''))
        .join('\n');
      throw new Error(
        `${e.message}\n/api/machines: ${JSON.stringify(last)}\nserve: ${server.stderr.slice(-3000)}\nharness: ${harnessLog.slice(-3000)}`,
      );
    });
    browser = await launchBrowser(path.join(root, 'profile'));
    const page = await browser.newPage();
    await page.goto(`${server.url}/machines`);
    const busy = 'table.machines tr[data-state="busy"]';
    await page.waitForSelector(busy, { timeout: 90_000 });
    const row = await page.textContent(busy);
    assert(row.includes('m5.xlarge') && row.includes('wide/linux'), `the machine, its type and its run: ${row}`);
    const limits = await page.textContent('section.limits');
    assert(/cores\s*4 of 16/.test(limits), `the cores in use and the limit: ${limits}`);
    await screenshot(page, artifacts, 'machines-busy');
    await page.waitForSelector('table.machines tr[data-state="idle"]', { timeout: 60_000 });
    assert((await page.textContent('table.machines tr[data-state="idle"] td.idle')).length > 0, 'its idle time');
    await screenshot(page, artifacts, 'machines-idle');
  }, { timeoutMs: 240_000 });

  test('machines: without a fleet the page says so', async () => {
    const root = tempDir('nofleet');
    dirs.push(root);
    fs.mkdirSync(path.join(root, 'repos'), { recursive: true });
    const local = await Server.start(binary, { reposDir: path.join(root, 'repos'), dataDir: path.join(root, 'data') });
    try {
      if (!browser) browser = await launchBrowser(path.join(root, 'profile'));
      const page = await browser.newPage();
      await page.goto(`${local.url}/machines`);
      await page.waitForSelector('p.no-fleet');
      assert((await page.textContent('p.no-fleet')).includes('No fleet'), 'it says there is no fleet');
      await page.close();
    } finally {
      await local.stop();
    }
  });

  return async function teardown() {
    if (browser) await browser.close();
    if (server) await server.stop();
    if (harness) {
      try {
        process.kill(-harness.pid, 'SIGTERM');
      } catch {
        // already gone
      }
      await new Promise((r) => setTimeout(r, 500));
      killGroup(harness);
    }
    killGroup(moto?.child);
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  };
}
