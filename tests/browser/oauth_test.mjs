// Sign-in with GitHub and with GitLab in Chromium (issue 12): a real `testlooper serve` in auth
// mode "oauth" against tests/server/fake_oauth.py playing each provider on loopback. Signed out, the page offers
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

// Each provider as the server is configured for it: its `source_control` keys, the sign-in
// button's text and where its authorize page is.
const kProviders = [
  {
    kind: 'github', org: 'acme', button: 'Sign in with GitHub', authorize: '/login/oauth/authorize?',
    keys: (url) => ({ github_login_url: url, github_api_url: url, owner: 'acme' }),
  },
  {
    kind: 'gitlab', org: 'acme/dev', button: 'Sign in with GitLab', authorize: '/oauth/authorize?',
    keys: (url) => ({ gitlab_login_url: url, gitlab_api_url: `${url}/api/v4`, group: 'acme/dev' }),
  },
];

export function register({ binary, artifacts }) {
  const teardowns = kProviders.map((p) => registerProvider({ binary, artifacts }, p));
  return async function teardown() {
    for (const t of teardowns) await t();
  };
}

function registerProvider({ binary, artifacts }, kind) {
  let root = null;
  let provider = null;
  let server = null;
  let browser = null;
  let page = null;
  const shot = (name) => screenshot(page, artifacts, `${kind.kind}-${name}`);
  const row = () => page.locator('tr[data-branch="main"]');

  test(`oauth setup: a fake ${kind.kind}, a server signing in with it, Chromium`, async () => {
    root = tempDir(`oauth-${kind.kind}`);
    const app = new GitRepo(path.join(root, 'repos', 'app'));
    app.write('testlooper.yml', "looper_version: 5\nenvironments: {linux: {platform: linux, image: {host: true}}}\ntests:\n  one/linux: {command: 'true'}\n");
    app.commit('A test');
    provider = await startFakeProvider(['--kind', kind.kind, '--client-id', 'the-app', '--client-secret', 'the-secret',
      '--org', kind.org, '--user', 'alice:1', '--member', 'alice', '--default-user', 'alice']);
    const config = {
      source_control: {
        path_to_repos: path.join(root, 'repos'), oauth_key: 'the-app', oauth_secret: 'the-secret',
        ...kind.keys(provider.url),
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

  test(`oauth ${kind.kind}: signed out, a sign-in button and no controls`, async () => {
    await page.goto(`${server.url}/repos/app`);
    await row().waitFor();
    await page.locator('button[name="sign-in"]').waitFor();
    assertEqual(await page.locator('button[name="sign-in"]').textContent(), kind.button, 'the button');
    assertEqual(await page.locator('button[name="test"]').count(), 0, 'controls shown to nobody');
    await shot('oauth-1-signed-out');
  });

  test(`oauth ${kind.kind}: sign in through the fake provider; the user, the role and the controls`, async () => {
    await page.locator('button[name="sign-in"]').click();
    await page.locator('#authorize').waitFor();
    assert(page.url().startsWith(provider.url + kind.authorize), `at the provider: ${page.url()}`);
    await shot('oauth-2-authorize');
    await page.locator('#authorize').click();
    await page.waitForURL(`${server.url}/`);
    await page.locator('.who[data-user="alice"]').waitFor();
    assertEqual(await page.locator('.who').getAttribute('data-role'), 'editor', `a member of ${kind.org} edits`);
    await page.goto(`${server.url}/repos/app`);
    await row().locator('button[name="test"]').waitFor();
    await row().locator('button[name="test"]').click();
    await eventually(async () => (await row().getAttribute('data-under-test')) === 'true', {
      what: 'the branch is put under test (a POST with the CSRF token)',
    });
    await shot('oauth-3-signed-in');
  });

  test(`oauth ${kind.kind}: sign out; the controls are gone`, async () => {
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
