// Sign-in with GitHub in Chromium (issue 12): a real `testlooper serve` in auth mode "oauth"
// against tests/server/fake_oauth.py playing GitHub on loopback. Signed out, the page offers
// "Sign in with GitHub" and no controls; signing in goes through the fake's authorize page and
// back, shows who is signed in with their role and the controls (which work: their POSTs carry
// the CSRF token); signing out takes the controls away again.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { assert, assertEqual, eventually, test } from './harness.mjs';
import { GitRepo, launchBrowser, Server, tempDir, screenshot } from './fixtures.mjs';

const kFakeOAuth = fileURLToPath(new URL('../server/fake_oauth.py', import.meta.url));

// fake_oauth.py with `args`, once it printed its port.
async function startFakeProvider(args) {
  const child = spawn('python3', [kFakeOAuth, ...args], { detached: true, stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /^port (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', (code) => reject(new Error(`fake_oauth.py exited (${code}): ${out}`)));
  });
  return { child, url: `http://127.0.0.1:${port}` };
}

export function register({ binary, artifacts }) {
  let root = null;
  let provider = null;
  let server = null;
  let browser = null;
  let page = null;
  const shot = (name) => screenshot(page, artifacts, name);
  const row = () => page.locator('tr[data-branch="main"]');

  test('oauth setup: a fake GitHub, a server signing in with it, Chromium', async () => {
    root = tempDir('oauth');
    const app = new GitRepo(path.join(root, 'repos', 'app'));
    app.write('testlooper.yml', "looper_version: 5\nenvironments: {linux: {platform: linux, image: {host: true}}}\ntests:\n  one/linux: {command: 'true'}\n");
    app.commit('A test');
    provider = await startFakeProvider(['--kind', 'github', '--client-id', 'the-app', '--client-secret', 'the-secret',
      '--org', 'acme', '--user', 'alice:1', '--member', 'alice', '--default-user', 'alice']);
    const config = {
      source_control: {
        path_to_repos: path.join(root, 'repos'), oauth_key: 'the-app', oauth_secret: 'the-secret',
        github_login_url: provider.url, github_api_url: provider.url, owner: 'acme',
      },
      auth: { mode: 'oauth', public_read: true },  // signed out, one may look but not touch
    };
    fs.writeFileSync(path.join(root, 'config.json'), JSON.stringify(config));
    server = await Server.start(binary, {
      reposDir: path.join(root, 'repos'),
      dataDir: path.join(root, 'data'),
      workers: 0,
      extra: ['--config', path.join(root, 'config.json')],
    });
    await eventually(async () => (await server.get('/api/repos')).length === 1, { what: 'the repo is seen' });
    browser = await launchBrowser(path.join(root, 'profile'));
    page = await browser.newPage();
  });

  test('oauth: signed out, a sign-in button and no controls', async () => {
    await page.goto(`${server.url}/repos/app`);
    await row().waitFor();
    await page.locator('button[name="sign-in"]').waitFor();
    assertEqual(await page.locator('button[name="sign-in"]').textContent(), 'Sign in with GitHub', 'the button');
    assertEqual(await page.locator('button[name="test"]').count(), 0, 'controls shown to nobody');
    await shot('oauth-1-signed-out');
  });

  test('oauth: sign in through the fake GitHub; the user, the role and the controls', async () => {
    await page.locator('button[name="sign-in"]').click();
    await page.locator('#authorize').waitFor();
    assert(page.url().startsWith(provider.url + '/login/oauth/authorize?'), `at the provider: ${page.url()}`);
    await shot('oauth-2-authorize');
    await page.locator('#authorize').click();
    await page.waitForURL(`${server.url}/`);
    await page.locator('.who[data-user="alice"]').waitFor();
    assertEqual(await page.locator('.who').getAttribute('data-role'), 'editor', 'a member of acme edits');
    await page.goto(`${server.url}/repos/app`);
    await row().locator('button[name="test"]').waitFor();
    await row().locator('button[name="test"]').click();
    await eventually(async () => (await row().getAttribute('data-under-test')) === 'true', {
      what: 'the branch is put under test (a POST with the CSRF token)',
    });
    await shot('oauth-3-signed-in');
  });

  test('oauth: sign out; the controls are gone', async () => {
    await page.locator('button[name="sign-out"]').click();
    await page.locator('button[name="sign-in"]').waitFor();
    assertEqual(await page.locator('button[name="test"]').count(), 0, 'controls after signing out');
    const session = await page.evaluate(async () => (await fetch('/api/session')).json());
    assertEqual(session.role, 'anonymous', 'the session is over');
    await shot('oauth-4-signed-out-again');
  });

  return async function teardown() {
    if (browser) await browser.close();
    if (server) await server.stop();
    if (provider) {
      try {
        process.kill(-provider.child.pid, 'SIGKILL');
      } catch {}
    }
    if (root) fs.rmSync(root, { recursive: true, force: true });
  };
}
