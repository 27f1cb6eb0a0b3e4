// The branch page's pins (issue 13): every pin, where it points, how far behind its branch, and
// "Update to branch head", which commits and pushes the move, in Debian's Chromium against a
// real `testlooper serve` over local repos.
import fs from 'node:fs';
import path from 'node:path';

import { assertEqual, eventually, test } from './harness.mjs';
import { GitRepo, launchBrowser, Server, tempDir, screenshot } from './fixtures.mjs';

export function register({ binary, artifacts }) {
  const dirs = [];
  let browser = null;
  let server = null;

  test('pins: the branch page shows a pin two commits behind and moves it to the branch head', async () => {
    const root = tempDir('pins');
    dirs.push(root);
    const lib = new GitRepo(path.join(root, 'repos', 'lib'));
    lib.write('testlooper.yml', 'looper_version: 5\n');
    const lib1 = lib.commit('lib 1', { hoursAgo: 5 });
    const app = new GitRepo(path.join(root, 'repos', 'app'));
    app.write(
      'testlooper.yml',
      `looper_version: 5\nrepos:\n  lib: {reference: lib/${lib1}, branch: main, auto: false}  # by hand\n`,
    );
    const app1 = app.commit('app pins lib', { hoursAgo: 4 });
    lib.write('a', '2');
    lib.commit('lib 2', { hoursAgo: 3 });
    lib.write('a', '3');
    const lib3 = lib.commit('lib 3', { hoursAgo: 2 });
    server = await Server.start(binary, { reposDir: path.join(root, 'repos'), dataDir: path.join(root, 'data'), workers: 0 });
    await eventually(async () => (await server.get('/api/repos/app/branches/main/pins')).length === 1, {
      what: 'the mover has looked',
    });
    browser = await launchBrowser(path.join(root, 'profile'));
    const page = await browser.newPage();
    await page.goto(`${server.url}/repos/app/branches/main`);
    await page.waitForSelector('section.pins tr[data-pin="lib"]');
    assertEqual(await page.textContent('tr[data-pin="lib"] td.behind'), '2 behind', 'how far behind');
    await screenshot(page, artifacts, 'pins-behind');
    await page.click('tr[data-pin="lib"] button[name="update-pin"]');
    await eventually(async () => app.git('log', '-1', '--format=%s', 'main') === `Update pin lib to ${lib3}`, {
      what: 'the update is pushed',
    });
    assertEqual(app.git('log', '-1', '--format=%P', 'main'), app1, 'one commit on the old head');
    // The page follows the new head and shows the pin up to date.
    await eventually(async () => (await page.textContent('tr[data-pin="lib"] td.behind')) === 'up to date', {
      what: 'the page shows the pin up to date',
    });
    await screenshot(page, artifacts, 'pins-updated');
  });

  return async function teardown() {
    if (browser) await browser.close();
    if (server) await server.stop();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  };
}
