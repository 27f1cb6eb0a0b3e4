// Deployments (issue 15): from a commit's page, Boot opens the deployment's page; its xterm.js
// terminal answers what is typed in it (the deployment's inputs are staged); Shut down stops it.
// Debian's Chromium against a real `testlooper serve` and its local worker.
import fs from 'node:fs';
import path from 'node:path';

import { assert, eventually, test } from './harness.mjs';
import { GitRepo, launchBrowser, Server, tempDir, screenshot } from './fixtures.mjs';

const kDefinitions = `looper_version: 5
environments: {linux: {platform: linux, image: {host: true}}}
builds:
  build/linux:
    stages:
      - command: 'mkdir -p $TEST_BUILD_OUTPUT_DIR/bin && echo built > $TEST_BUILD_OUTPUT_DIR/bin/out.txt'
        artifacts: [{name: bin, directory: bin}]
deployments:
  shell/linux:
    dependencies: {whole: build/linux}
    command: 'true'
`;

export function register({ binary, artifacts }) {
  const dirs = [];
  let browser = null;
  let server = null;

  test('deploy: boot from the commit page, type in its terminal, see the output, shut it down', async () => {
    const root = tempDir('deploy');
    dirs.push(root);
    const app = new GitRepo(path.join(root, 'repos', 'app'));
    app.write('testlooper.yml', kDefinitions);
    const sha = app.commit('a deployment');
    server = await Server.start(binary, { reposDir: path.join(root, 'repos'), dataDir: path.join(root, 'data') });
    await eventually(async () => {
      const c = await server.get(`/api/repos/app/commits/${sha}`).catch(() => null);
      return c !== null && Array.isArray(c.objects);
    }, { what: 'the commit is known' });
    browser = await launchBrowser(path.join(root, 'profile'));
    const page = await browser.newPage();
    await page.goto(`${server.url}/repos/app/commits/${sha}`);
    await page.click('tr[data-name="shell/linux"] button[name="boot"]');
    await page.waitForURL(/\/deployments\/[0-9a-f]{16}$/);
    const id = page.url().split('/').pop();
    await page.waitForSelector('.deploy-terminal .xterm-screen', { timeout: 120_000 });
    await eventually(async () => (await server.get(`/api/deployments/${id}`)).state === 'running', {
      what: 'the deployment runs',
    });
    // The shell's prompt came through the terminal's socket: it is open.
    await eventually(async () => /bash/.test(await page.innerText('.deploy-terminal .xterm-rows')), {
      what: 'the prompt',
    });
    await page.click('.deploy-terminal');
    await page.keyboard.type('find "$TEST_INPUTS" -name out.txt -exec cat {} + | tr a-z A-Z\n');
    await eventually(async () => /(^|\n)BUILT/.test(await page.innerText('.deploy-terminal .xterm-rows')), {
      what: 'the terminal shows the answer',
    });
    await screenshot(page, artifacts, 'deploy-terminal');
    await page.click('button[name="shutdown"]');
    await eventually(async () => (await server.get(`/api/deployments/${id}`)).state === 'stopped', {
      what: 'the deployment stops',
    });
    await page.waitForSelector('.terminal-closed');
    assert((await server.get('/api/workers'))[0].cores_used === 0, 'its core is free again');
  });

  return async function teardown() {
    if (browser) await browser.close();
    if (server) await server.stop();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  };
}
