// Statistics first (issue 16): a test that breaks at a known commit is named on the branch's
// Changes page ("started failing here: 0% → 100%", "N% sure"), in home's "Regressions and flakes"
// panel, and in a banner on the culprit's commit page, in Debian's Chromium against a real
// `testlooper serve` and its worker.
import fs from 'node:fs';
import path from 'node:path';

import { assert, assertEqual, eventually, test } from './harness.mjs';
import { GitRepo, launchBrowser, Server, tempDir, screenshot } from './fixtures.mjs';

export function register({ binary, artifacts }) {
  const dirs = [];
  let browser = null;
  let server = null;

  test('changes: the culprit of a broken test is named on the Changes page, on home and on its commit', async () => {
    const root = tempDir('changes');
    dirs.push(root);
    const app = new GitRepo(path.join(root, 'repos', 'app'));
    app.write(
      'testlooper.yml',
      'looper_version: 5\nenvironments: {linux: {platform: linux, image: {host: true}}}\n' +
        "tests: {t/linux: {command: 'test ! -e src/broken', dependencies: {src: HEAD}}}\n",
    );
    app.commit('passing 1', { hoursAgo: 5 });
    app.write('a', '1');
    app.commit('passing 2', { hoursAgo: 4 });
    app.write('broken', 'yes');
    const culprit = app.commit('breaks it', { author: 'Bob Breaker', hoursAgo: 3 });
    app.write('b', '2');
    app.commit('still broken', { hoursAgo: 2 });
    server = await Server.start(binary, { reposDir: path.join(root, 'repos'), dataDir: path.join(root, 'data') });
    await eventually(async () => (await server.get('/api/repos')).length === 1, { what: 'the repo is seen' });
    await server.post('/api/repos/app/branches/main/test', { enabled: true, depth: 3 });
    for (const sha of app.firstParents('main')) {
      await server.post(`/api/repos/app/commits/${sha}/targets`, { name: 't/linux', runs: 6 });
    }
    await eventually(
      async () => {
        const changes = await server.get('/api/repos/app/branches/main/changes');
        return Array.isArray(changes) && changes.length > 0 && changes[0].commit === culprit && changes[0].probability >= 0.8;
      },
      { what: 'the statistics name the culprit', timeoutMs: 180_000 },
    );
    browser = await launchBrowser(path.join(root, 'profile'));
    const page = await browser.newPage();

    await page.goto(`${server.url}/repos/app/branches/main/changes`);
    const row = `table.changes tr[data-change="t/linux"][data-commit="${culprit}"]`;
    await page.waitForSelector(row);
    const text = await page.textContent(row);
    assert(text.includes('started failing here'), `the words of the change: ${text}`);
    assert(/\d+% sure/.test(text), `a confidence labelled as one: ${text}`);
    assert(text.includes('breaks it') && text.includes('Bob Breaker'), `the commit's subject and author: ${text}`);
    assertEqual(await page.title(), 'Changes · main · app · TestLooper', 'the page title names the page');
    await screenshot(page, artifacts, 'changes-page');
    // A glob that matches nothing says so.
    await page.fill('input[name="test"]', 'other/*');
    await page.press('input[name="test"]', 'Enter');
    await page.waitForSelector('p.no-changes');

    await page.goto(`${server.url}/`);
    await page.waitForSelector('section.regressions li[data-change="t/linux"]');
    const panel = await page.textContent('section.regressions');
    assert(panel.includes('started failing here: 0% → 100%'), `home names the regression: ${panel}`);
    await screenshot(page, artifacts, 'changes-home');

    await page.goto(`${server.url}/repos/app/commits/${culprit}`);
    await page.waitForSelector('.culprit-banner');
    const banner = await page.textContent('.culprit-banner');
    assert(banner.includes('t/linux') && banner.includes('started failing here'), `the culprit's banner: ${banner}`);
    await screenshot(page, artifacts, 'changes-culprit');
  }, { timeoutMs: 240_000 });

  return async function teardown() {
    if (browser) await browser.close();
    if (server) await server.stop();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  };
}
