// The web UI in Debian's Chromium against a real `testlooper serve` over repos made here.
// Each test leaves screenshots in the artifacts folder; they are meant to be looked at.
import fs from 'node:fs';
import path from 'node:path';

import { assert, assertEqual, eventually, test } from './harness.mjs';
import { FakeWorker, GitRepo, launchBrowser, Server, tempDir, screenshot } from './fixtures.mjs';
import { syntheticHistory } from './synthetic.mjs';

// Each test gets its own identity per commit (it depends on the commit's tree), so runs are
// counted per commit. `cases/linux` reports two test cases, one of which fails (saying why, in
// text that looks like HTML).
const kDefinitions = `looper_version: 5
environments: {linux: {platform: linux, image: {host: true}}}
tests:
  unit/linux: {command: 'echo unit passes', dependencies: {src: HEAD}}
  fails/linux: {command: 'echo about to fail; exit 1', dependencies: {src: HEAD}}
  cases/linux:
    command: 'echo "{\\"a\\": true, \\"b\\": {\\"success\\": false, \\"message\\": \\"<b>b</b> broke\\"}}" > $TEST_OUTPUT_DIR/testSummary.json'
    dependencies: {src: HEAD}
`;

// Fails from the commit that adds BROKEN on.
const kFlipDefinitions = `looper_version: 5
environments: {linux: {platform: linux, image: {host: true}}}
tests:
  flip/linux: {command: 'test ! -e $TEST_INPUTS/src/BROKEN', dependencies: {src: HEAD}}
`;

// Prints a line every half second.
const kTicksDefinitions = `looper_version: 5
environments: {linux: {platform: linux, image: {host: true}}}
tests:
  ticks/linux: {command: 'for i in 1 2 3 4 5 6 7 8 9 10; do echo tick $i; sleep 0.5; done'}
`;

const kLiveDefinitions = `looper_version: 5
environments: {linux: {platform: linux, image: {host: true}}}
tests:
  slow/linux: {command: 'sleep 1000'}
`;

// Text of every history row, in order: [{sha, mark, cells: [text]}], and the column names.
async function readGrid(page) {
  return page.evaluate(() => ({
    columns: [...document.querySelectorAll('.hgrid .names [data-col]')].map((e) => e.getAttribute('data-col')),
    rows: [...document.querySelectorAll('.hgrid .hrow')].map((r) => ({
      sha: r.getAttribute('data-sha'),
      mark: r.querySelector('.mark')?.getAttribute('data-mark') ?? '',
      cells: [...r.querySelectorAll('.c')].map((c) => c.textContent),
    })),
  }));
}

async function terminalText(page) {
  return page.evaluate(() => document.querySelector('.xterm-rows')?.textContent ?? '');
}

export function register({ binary, artifacts }) {
  const dirs = [];
  const servers = [];
  let browser = null;
  let server = null;
  let page = null;
  const repo = {};

  const shot = (p, name) => screenshot(p, artifacts, name);

  test('setup: repos, a real server and Chromium', async () => {
    const root = tempDir('ui');
    dirs.push(root);
    const app = new GitRepo(path.join(root, 'repos', 'app'));
    app.write('testlooper.yml', kDefinitions);
    repo.c1 = app.commit('Add the test definitions', { hoursAgo: 50 });
    app.write('src/parser.c', 'int parse(void) { return 1; }\n');
    repo.c2 = app.commit('Speed up the parser', { author: 'Alan Turing', hoursAgo: 30 });
    app.git('checkout', '-q', '-b', 'feature');
    app.write('src/cache.c', 'int cache;\n');
    app.commit('Try a new cache', { author: 'Grace Hopper', hoursAgo: 20 });
    app.git('checkout', '-q', 'main');
    app.write('docs/api.md', '# API\n');
    repo.c3 = app.commit('Document the API', { hoursAgo: 12 });
    repo.merge = app.merge('feature', "Merge branch 'feature'", { author: 'Grace Hopper', hoursAgo: 6 });
    app.write('README', 'a typo fixed\n');
    repo.c4 = app.commit('Fix a typo in the README', { author: 'Edsger Dijkstra', hoursAgo: 2 });
    repo.history = app.firstParents('main');
    assertEqual(repo.history, [repo.c4, repo.merge, repo.c3, repo.c2, repo.c1], 'first-parent history');

    const flip = new GitRepo(path.join(root, 'repos', 'flip'));
    flip.write('testlooper.yml', kFlipDefinitions);
    flip.commit('A test that passes', { hoursAgo: 9 });
    flip.write('a', '1');
    flip.commit('Another change', { hoursAgo: 8 });
    flip.write('BROKEN', '');
    repo.broken = flip.commit('Break the test', { hoursAgo: 7 });
    flip.write('b', '2');
    flip.commit('A later change', { hoursAgo: 6 });

    const ticks = new GitRepo(path.join(root, 'repos', 'ticks'));
    ticks.write('testlooper.yml', kTicksDefinitions);
    repo.ticks = ticks.commit('A test that takes its time', { hoursAgo: 1 });

    // No extra runs (planner::BranchBudget): the counts below are exactly the runs asked for.
    server = await Server.start(binary, {
      reposDir: path.join(root, 'repos'),
      dataDir: path.join(root, 'data'),
      extra: ['--extra-runs', '0'],
    });
    servers.push(server);
    await eventually(async () => (await server.get('/api/repos')).length === 3, { what: 'the repos are seen' });
    await eventually(async () => (await server.get('/api/repos/app/branches/main/history')).commits.length === 5, {
      what: 'the commits are ingested',
    });
    const profile = tempDir('profile');
    dirs.push(profile);
    browser = await launchBrowser(profile);
    page = await browser.newPage();
  });

  test('the server serves the built UI with SPA routing and content types', async () => {
    const index = await fetch(`${server.url}/`);
    assertEqual(index.status, 200, 'GET /');
    assert(index.headers.get('content-type').startsWith('text/html'), 'index is HTML');
    const html = await index.text();
    const script = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    assert(script, `index.html names its script: ${html}`);
    const js = await fetch(server.url + script);
    assert(js.headers.get('content-type').startsWith('text/javascript'), 'scripts are JavaScript');
    const deep = await fetch(`${server.url}/repos/app/commits/${repo.c1}/tests/unit/linux`);
    assertEqual([deep.status, (await deep.text()) === html], [200, true], 'a deep link gets index.html');
    assertEqual((await fetch(`${server.url}/assets/missing.js`)).status, 404, 'a missing asset');
    const api = await fetch(`${server.url}/api/nope`);
    assertEqual(api.status, 404, 'an unknown API path');
    assert((await api.json()).error, 'API errors stay JSON');
    assert(!html.includes('http://') && !html.includes('https://'), 'no asset from outside');
  });

  test('putting a branch under test from the UI makes runs appear without a reload', async () => {
    await page.goto(`${server.url}/repos/app/branches/main`);
    await page.waitForSelector('.hgrid .hrow');
    await page.evaluate(() => (window.__sameDocument = true));
    let grid = await readGrid(page);
    assertEqual(grid.rows.length, 5, 'rows before');
    assert(grid.rows.every((r) => r.cells.every((c) => c === '·')), `no runs yet: ${JSON.stringify(grid.rows)}`);
    await shot(page, 'history-before');

    const control = await browser.newPage();
    await control.goto(`${server.url}/repos/app`);
    await control.fill('tr[data-branch="main"] input[name="depth"]', '2');
    await control.click('tr[data-branch="main"] button[name="test"]');
    await control.waitForSelector('tr[data-branch="main"][data-under-test="true"]');
    await shot(control, 'repo');
    await control.close();

    grid = await eventually(
      async () => {
        const g = await readGrid(page);
        // A failing test's cell says the model's failure rate, a passing one its runs (issue 16).
        return g.rows.slice(0, 3).every((r) => r.cells.join(' ') === '100% 100% 1') ? g : null;
      },
      { what: 'runs appear in the open history page' },
    );
    assertEqual(grid.columns, ['cases/linux', 'fails/linux', 'unit/linux'], 'columns');
    assert(await page.evaluate(() => window.__sameDocument === true), 'the page was not reloaded');
  });

  test('the history page lists the commits and cells with the right counts', async () => {
    await eventually(
      async () => {
        const h = await server.get('/api/repos/app/branches/main/history');
        return h.commits.slice(0, 3).every((c) => c.objects.every((o) => o.status === 'done' && o.active_runs === 0));
      },
      { what: 'the runs end' },
    );
    await page.goto(`${server.url}/repos/app/branches/main`);
    await page.waitForSelector('.hgrid .hrow');
    const grid = await readGrid(page);
    assertEqual(grid.rows.map((r) => r.sha), repo.history, 'rows are the first-parent commits, newest first');
    assertEqual(
      grid.rows.map((r) => r.cells.join(' ')),
      // cases/linux exits 0 but its case b fails: its runs count as failed (issue 16). Failing
      // tests show the model's failure rate, passing ones their runs.
      ['100% 100% 1', '100% 100% 1', '100% 100% 1', '· · ·', '· · ·'],
      'cells: runs, and the rate of failing tests',
    );
    assertEqual(grid.rows.map((r) => r.mark), ['', 'merge', '', '', ''], 'the merge is marked');
    const subjects = await page.$$eval('.hrow .subj', (s) => s.map((e) => e.textContent));
    assertEqual(subjects[0], 'Fix a typo in the README', 'subject');
    const authors = await page.$$eval('.hrow .auth', (s) => s.map((e) => e.textContent));
    assertEqual(authors[0], 'Edsger Dijkstra', 'author');
    // The colour class; a classification mark (`v v-broken`) may follow it.
    const classes = await page.$eval('.hrow', (r) =>
      [...r.querySelectorAll('.c')].map((e) => e.className.split(' ').slice(0, 2).join(' ')),
    );
    assertEqual(classes, ['c f5', 'c f5', 'c pass'], 'colours by failure rate (cases/linux fails: its case b does)');
    await shot(page, 'history');

    await page.check('input[name="results"]');
    await eventually(async () => (await readGrid(page)).rows.length === 3, { what: 'only commits with results' });
    await page.fill('input[name="q"]', 'f*');
    await eventually(async () => (await readGrid(page)).columns.join() === 'fails/linux', { what: 'the name glob' });
    assert(page.url().includes('results=1') && page.url().includes('q=f*'), `filters are in the URL: ${page.url()}`);
    await page.fill('input[name="q"]', '');
    await page.check('input[name="group"]');
    await eventually(async () => (await page.$$('.hgrid .band')).length === 3, { what: 'groups by project × configuration' });
    await shot(page, 'history-grouped');
    await page.uncheck('input[name="group"]');
    await page.uncheck('input[name="results"]');
  });

  test("the commit page's target-runs control changes the number of runs", async () => {
    await page.goto(`${server.url}/repos/app/commits/${repo.c4}`);
    const row = 'tr[data-name="unit/linux"]';
    await page.waitForSelector(`${row}[data-runs="1"]`);
    await page.fill(`${row} input[name="target"]`, '3');
    await page.click(`${row} button[name="set-target"]`);
    await page.waitForSelector(`${row}[data-runs="3"]`, { timeout: 60_000 });
    assertEqual(await page.textContent(`${row} td.runs`), '3', 'runs shown');
    const runs = await server.get(`/api/repos/app/commits/${repo.c4}/runs?name=unit/linux`);
    assertEqual(runs.length, 3, 'runs stored');
    assertEqual(await page.inputValue(`${row} input[name="target"]`), '3', 'the target shown');
    await shot(page, 'commit');
  });

  test('the test page shows runs and test cases × runs; a run page shows its log', async () => {
    await page.goto(`${server.url}/repos/app/commits/${repo.c4}/tests/cases/linux`);
    await page.waitForSelector('tr[data-run]');
    await page.waitForSelector('tr[data-case="b"] td.mark.bad');
    await page.waitForSelector('tr[data-case="a"] td.mark.ok');
    await shot(page, 'test');

    // A run of it: the failed case first, its message as text (not markup), its name a link to
    // the case's history (issue 16 item 7).
    const [caseRun] = await server.get(`/api/repos/app/commits/${repo.c4}/runs?name=cases/linux`);
    await page.goto(`${server.url}/runs/${caseRun.id}`);
    await page.waitForSelector('tbody[data-case="b"] pre.case-message');
    const cases = await page.evaluate(() => [...document.querySelectorAll('table.cases tbody')].map((b) => b.getAttribute('data-case')));
    assertEqual(cases, ['b', 'a'], 'failed cases first');
    assertEqual(await page.textContent('tbody[data-case="b"] pre.case-message'), '<b>b</b> broke', 'the message, escaped');
    assertEqual(await page.$$eval('tbody[data-case="b"] pre.case-message b', (e) => e.length), 0, 'no markup from the message');
    const href = await page.getAttribute('tbody[data-case="b"] td a', 'href');
    assertEqual(href, '/repos/app/branches/main/tests/cases/linux%3A%3Ab', 'the case links to its history');
    await shot(page, 'run-cases');

    await page.goto(`${server.url}/repos/app/commits/${repo.c4}/tests/unit/linux`);
    await page.waitForSelector('tr[data-run]');
    await page.click('tr[data-run] a');
    await page.waitForSelector('[data-follow="complete"]');
    await eventually(async () => (await terminalText(page)).includes('unit passes'), { what: 'the log is shown' });
    assert(/\/runs\/[0-9a-f]+$/.test(page.url()), `a run URL: ${page.url()}`);
    await shot(page, 'run');
  });

  test('a running test’s log grows live on its run page', async () => {
    const root = tempDir('live');
    dirs.push(root);
    const live = new GitRepo(path.join(root, 'repos', 'live'));
    live.write('testlooper.yml', kLiveDefinitions);
    live.commit('A slow test');
    // No local worker: this test is the worker, so it decides when each piece of log arrives.
    const liveServer = await Server.start(binary, {
      reposDir: path.join(root, 'repos'),
      dataDir: path.join(root, 'data'),
      workers: 0,
    });
    servers.push(liveServer);
    await eventually(async () => (await liveServer.get('/api/repos')).length === 1, { what: 'the repo is seen' });
    const worker = await FakeWorker.connect(liveServer, { worker: 'test-worker' });
    await liveServer.post('/api/repos/live/branches/main/test', { enabled: true, depth: 0 });
    const runId = await eventually(() => worker.jobs()[0]?.run_id, { what: 'a job is sent' });
    const send = (message) => worker.send(message);

    const runPage = await browser.newPage();
    await runPage.goto(`${liveServer.url}/runs/${runId}`);
    await runPage.waitForSelector('[data-follow="following"]');
    await runPage.evaluate(() => (window.__sameDocument = true));
    await send({ type: 'log', run_id: runId, data: 'step 1: configuring\n' });
    await eventually(async () => (await terminalText(runPage)).includes('step 1: configuring'), { what: 'the first piece' });
    const before = Number(await runPage.getAttribute('[data-log-bytes]', 'data-log-bytes'));
    assert(!(await terminalText(runPage)).includes('step 2'), 'not yet the second piece');
    await send({ type: 'log', run_id: runId, data: 'step 2: compiling\nstep 3: testing\n' });
    await eventually(async () => (await terminalText(runPage)).includes('step 3: testing'), { what: 'the log grows' });
    const after = Number(await runPage.getAttribute('[data-log-bytes]', 'data-log-bytes'));
    assert(after > before && before > 0, `the log grew: ${before} -> ${after} bytes`);
    assertEqual(await runPage.textContent('.badge'), 'running', 'still running');
    await shot(runPage, 'run-live');
    const now = Date.now() / 1000;
    await send({ type: 'result', run_id: runId, outcome: 'success', exit_code: 0, message: '', start: now - 2, end: now, cases: [] });
    await runPage.waitForSelector('[data-follow="complete"]');
    await eventually(async () => (await runPage.textContent('.badge')) === 'succeeded', { what: 'the run ends on the page' });
    assert(await runPage.evaluate(() => window.__sameDocument === true), 'the page was not reloaded');
    assert((await terminalText(runPage)).includes('step 1: configuring'), 'the whole log stays');
    await shot(runPage, 'run-finished');
    await runPage.close();
    await worker.close();
    await liveServer.stop();
  });

  test('a real worker’s running test streams its log to the run page', async () => {
    await server.post('/api/repos/ticks/branches/main/test', { enabled: true, depth: 0 });
    const run = await eventually(
      async () => (await server.get(`/api/repos/ticks/commits/${repo.ticks}/runs?name=ticks/linux`)).find((r) => r.state === 'running'),
      { what: 'the run starts' },
    );
    await page.goto(`${server.url}/runs/${run.id}`);
    await page.waitForSelector('[data-follow="following"]');
    await eventually(async () => (await terminalText(page)).includes('tick 2'), { what: 'the first lines' });
    const early = await terminalText(page);
    assert(!early.includes('tick 10'), `the run is not over yet: ${early}`);
    await eventually(async () => (await terminalText(page)).includes('tick 10'), { what: 'the last line', timeoutMs: 30_000 });
    await page.waitForSelector('[data-follow="complete"]');
    await eventually(async () => (await page.textContent('.badge')) === 'succeeded', { what: 'the run ends on the page' });
    await shot(page, 'run-real-worker');
  });

  test('overview pages: repos with head health, workers, a test history plot', async () => {
    await page.goto(`${server.url}/`);
    await page.waitForSelector('section[data-repo="app"] tr[data-branch="main"] .health');
    assertEqual(
      await page.getAttribute('section[data-repo="app"] tr[data-branch="main"] .health', 'data-failing'),
      '2',
      'head health: two failing tests (fails/linux, and cases/linux whose case b fails)',
    );
    await shot(page, 'repos');
    await page.goto(`${server.url}/workers`);
    await page.waitForSelector('tr[data-worker="local-0"]');
    await shot(page, 'workers');
    await page.goto(`${server.url}/repos/app/branches/main?test=fails/linux`);
    await page.waitForSelector('.plot[data-points="5"] canvas');
    await shot(page, 'test-history');
  });

  test('a change of failure rate is marked on its history row and on the test’s plot', async () => {
    await server.post('/api/repos/flip/branches/main/test', { enabled: true, depth: 3 });
    const history = await server.get('/api/repos/flip/branches/main/history');
    for (const c of history.commits) {
      await server.post(`/api/repos/flip/commits/${c.sha}/targets`, { name: 'flip/linux', runs: 4 });
    }
    await eventually(async () => (await server.get('/api/repos/flip/branches/main/history')).change_points.length > 0, {
      what: 'the statistics find the change',
      timeoutMs: 90_000,
    });
    await page.goto(`${server.url}/repos/flip/branches/main`);
    await page.waitForSelector(`.hrow[data-sha="${repo.broken}"] .mark[data-mark="change"]`);
    const marks = await page.$$eval('.hrow .mark', (m) => m.map((e) => e.getAttribute('data-mark')));
    assertEqual(marks, ['', 'change', '', ''], 'only the breaking commit is marked');
    await shot(page, 'history-change-point');
    await page.goto(`${server.url}/repos/flip/branches/main?test=flip/linux`);
    await page.waitForSelector('.plot[data-change-points="1"] canvas');
    assert((await page.textContent('ul.changes')).includes('0% → 100%'), 'the change is listed');
    await shot(page, 'test-history-change-point');
  }, { timeoutMs: 150_000 });

  test('the history page of 500 commits × 100 tests draws in under 1 s after the data arrives', async () => {
    const synthetic = syntheticHistory({ commits: 500, tests: 100 });
    const history = JSON.stringify(synthetic);
    const mock = await browser.newPage();
    await mock.route(/\/api\/repos\/big\/branches\/main\/history/, (route) =>
      route.fulfill({ status: 200, contentType: 'application/json', body: history }),
    );
    await mock.route(/\/api\/repos\/big\/commits\//, (route) =>
      route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify({ objects: [] }) }),
    );
    const figures = [];
    for (let i = 0; i < 3; i++) {
      await mock.goto(`${server.url}/repos/big/branches/main?limit=500`);
      const ms = await mock.waitForFunction(() => document.documentElement.dataset.historyRenderMs, null, { timeout: 30_000 });
      figures.push(Number(await ms.jsonValue()));
      assertEqual(await mock.getAttribute('.hgrid', 'data-rows'), '500', 'rows in the grid');
      assertEqual(await mock.$eval('.hgrid .hrow', (r) => r.querySelectorAll('.c').length), 100, 'cells per row');
    }
    await shot(mock, 'history-500x100');
    // Only the rows in view are in the document; scrolling draws the others.
    const drawn = await mock.$$eval('.hgrid .hrow', (r) => r.length);
    assert(drawn < 100, `rows in the document: ${drawn}`);
    await mock.$eval('.hgrid', (g) => (g.scrollTop = g.scrollHeight));
    await mock.waitForSelector(`.hrow[data-sha="${synthetic.commits[499].sha}"]`);
    for (const index of [497, 499]) {
      const commit = synthetic.commits[index];
      const text = await mock.$$eval(`.hrow[data-sha="${commit.sha}"] .c`, (c) => c.map((e) => e.textContent));
      const byName = new Map(commit.objects.map((o) => [o.name, o]));
      const expected = (await readGrid(mock)).columns.map((name) => {
        const o = byName.get(name);
        if (o.runs === 0) return o.active_runs || o.status === 'runnable' ? '' : '·';
        return o.failures ? `${o.failures}/${o.runs}` : String(o.runs);
      });
      assertEqual(text, expected, `commit ${index} after scrolling`);
    }
    await shot(mock, 'history-500x100-scrolled');
    const sorted = [...figures].sort((a, b) => a - b);
    console.log(
      `    history render, 500 commits × 100 tests: ${figures.map((f) => f.toFixed(0)).join(', ')} ms ` +
        `(median ${sorted[1].toFixed(0)} ms) from the response body to the first paint`,
    );
    assert(sorted[1] < 1000, `median render time ${sorted[1]} ms`);
    await mock.close();
  });

  return async function teardown() {
    if (browser) await browser.close();
    for (const s of servers) await s.stop();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  };
}
