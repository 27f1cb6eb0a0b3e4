// The web UI's test and case histories, classification labels and run cancelling, in Debian's
// Chromium against real `testlooper serve`s of their own (no extra runs, so counts are exact).
import fs from 'node:fs';
import path from 'node:path';

import { assert, assertEqual, eventually, test } from './harness.mjs';
import { FakeWorker, GitRepo, launchBrowser, Server, tempDir, screenshot } from './fixtures.mjs';

// `cases/linux` always passes, but its case `b` fails from the commit that adds BROKEN on;
// `flip/linux` itself fails from there.
const kCaseDefinitions = `looper_version: 5
environments: {linux: {platform: linux, image: {host: true}}}
tests:
  cases/linux:
    command: |
      if test -e $TEST_INPUTS/src/BROKEN; then echo '{"a": true, "b": false}'; else echo '{"a": true, "b": true}'; fi > $TEST_OUTPUT_DIR/testSummary.json
    dependencies: {src: HEAD}
  flip/linux: {command: 'test ! -e $TEST_INPUTS/src/BROKEN', dependencies: {src: HEAD}}
`;

const kSlowDefinitions = `looper_version: 5
environments: {linux: {platform: linux, image: {host: true}}}
tests:
  slow/linux: {command: 'echo started; sleep 300'}
`;

// Leaves one artifact, a folder with a report in it.
const kArtifactDefinitions = `looper_version: 5
environments: {linux: {platform: linux, image: {host: true}}}
tests:
  art/linux:
    stages:
      - command: 'mkdir -p $TEST_OUTPUT_DIR/report && echo all good > $TEST_OUTPUT_DIR/report/summary.txt'
        artifacts: [{name: report, directory: report, format: Tar}]
`;

const kRunsPerCommit = 4;

export function register({ binary, artifacts }) {
  const dirs = [];
  const servers = [];
  let browser = null;
  let server = null;
  let page = null;
  const repo = {};

  const shot = (p, name) => screenshot(p, artifacts, name);

  test('history setup: a test whose case breaks at one commit, every commit run 4 times', async () => {
    const root = tempDir('history');
    dirs.push(root);
    const cases = new GitRepo(path.join(root, 'repos', 'cases'));
    cases.write('testlooper.yml', kCaseDefinitions);
    cases.commit('Add the tests', { hoursAgo: 9 });
    cases.write('src/a', '1');
    cases.commit('Another change', { hoursAgo: 8 });
    cases.write('BROKEN', '');
    repo.broken = cases.commit('Break case b', { hoursAgo: 7 });
    cases.write('src/b', '2');
    cases.commit('A later change', { hoursAgo: 6 });
    repo.history = cases.firstParents('main');
    const art = new GitRepo(path.join(root, 'repos', 'art'));
    art.write('testlooper.yml', kArtifactDefinitions);
    repo.art = art.commit('A test that leaves a report');
    server = await Server.start(binary, {
      reposDir: path.join(root, 'repos'),
      dataDir: path.join(root, 'data'),
      extra: ['--extra-runs', '0'],
    });
    servers.push(server);
    await eventually(async () => (await server.get('/api/repos/cases/branches/main/history')).commits.length === 4, {
      what: 'the commits are ingested',
    });
    await server.post('/api/repos/cases/branches/main/test', { enabled: true, depth: 3 });
    for (const sha of repo.history) {
      for (const name of ['cases/linux', 'flip/linux']) {
        await server.post(`/api/repos/cases/commits/${sha}/targets`, { name, runs: kRunsPerCommit });
      }
    }
    await eventually(
      async () => {
        const h = await server.get('/api/repos/cases/branches/main/history');
        return h.commits.every((c) => c.objects.every((o) => o.runs === kRunsPerCommit && o.active_runs === 0));
      },
      { what: 'every commit has its runs', timeoutMs: 150_000 },
    );
    const profile = tempDir('profile');
    dirs.push(profile);
    browser = await launchBrowser(profile);
    page = await browser.newPage();
  }, { timeoutMs: 200_000 });

  test('the case history API counts one case per commit and finds where it broke', async () => {
    const h = await server.get(`/api/repos/cases/branches/main/tests/${encodeURIComponent('cases/linux::b')}/history`);
    assertEqual([h.test, h.case, h.name], ['cases/linux', 'b', 'cases/linux::b'], 'test and case');
    assertEqual(h.commits.map((c) => c.sha), repo.history, 'first-parent commits, newest first');
    assertEqual(
      h.commits.map((c) => `${c.failures}/${c.runs}`),
      ['4/4', '4/4', '0/4', '0/4'],
      'failures/runs of case b per commit',
    );
    assert(h.commits.every((c) => c.failure_rate.low <= c.failure_rate.estimate && c.failure_rate.estimate <= c.failure_rate.high), 'intervals');
    assertEqual(h.change_points[0]?.commit, repo.broken, 'the change point is the breaking commit');
    const a = await server.get(`/api/repos/cases/branches/main/tests/cases/linux::a/history?limit=2`);
    assertEqual(a.commits.map((c) => `${c.failures}/${c.runs}`), ['0/4', '0/4'], 'case a, limit 2');
    assertEqual(a.change_points, [], 'case a never changed');
    const t = await server.get('/api/repos/cases/branches/main/tests/flip/linux/history');
    assertEqual([t.case, t.commits.map((c) => c.failures)], [null, [4, 4, 0, 0]], 'a whole test');
    const missing = await fetch(`${server.url}/api/repos/cases/branches/main/tests/nope/history`);
    assertEqual(missing.status, 404, 'an unknown test');
    // The plain branch history is still served beside it.
    assertEqual((await server.get('/api/repos/cases/branches/main/history')).commits.length, 4, 'branch history');
  });

  test('a case’s history page, opened from the test page, plots every commit and the change point', async () => {
    const head = repo.history[0];
    await page.goto(`${server.url}/repos/cases/commits/${head}/tests/cases/linux`);
    await page.waitForSelector('tr[data-case="b"] a.case-history');
    await shot(page, 'test-page-cases');
    await page.evaluate(() => (window.__sameDocument = true));
    await page.click('tr[data-case="b"] a.case-history');
    await page.waitForSelector('.plot[data-points="4"] canvas');
    assert(
      decodeURIComponent(new URL(page.url()).pathname) === '/repos/cases/branches/main/tests/cases/linux::b',
      `a stable URL: ${page.url()}`,
    );
    assertEqual(await page.getAttribute('.plot', 'data-with-runs'), '4', 'points with runs');
    assertEqual(await page.getAttribute('.plot', 'data-change-commits'), repo.broken, 'the change point');
    assert((await page.textContent('ul.changes')).includes('0% → 100%'), 'the change is listed');
    const rows = await page.$$eval('table.test-history tr[data-sha]', (r) =>
      r.map((e) => `${e.getAttribute('data-failures')}/${e.getAttribute('data-runs')}`),
    );
    assertEqual(rows, ['4/4', '4/4', '0/4', '0/4'], 'the commits listed');
    assert(await page.evaluate(() => window.__sameDocument === true), 'followed without a reload');
    await shot(page, 'case-history');

    // The history grid's column name opens the test's own history; the old ?test= URL moves there.
    await page.goto(`${server.url}/repos/cases/branches/main`);
    await page.waitForSelector('.hgrid .hrow');
    await page.click('.hgrid .names a[data-col="flip/linux"]');
    await page.waitForSelector('.plot[data-points="4"][data-with-runs="4"] canvas');
    assertEqual(await page.getAttribute('.plot', 'data-change-commits'), repo.broken, 'the test’s change point');
    await page.goto(`${server.url}/repos/cases/branches/main?test=flip/linux`);
    await page.waitForSelector('.plot[data-points="4"] canvas');
    assert(page.url().includes('/branches/main/tests/flip/linux'), `the old URL moved: ${page.url()}`);
    await shot(page, 'test-history-flip');
  });

  test('classification labels: the commit page, the test page and the history cells', async () => {
    const commit = await server.get(`/api/repos/cases/commits/${repo.broken}`);
    const flip = commit.objects.find((o) => o.name === 'flip/linux');
    assert(flip.classification?.verdict, `the server classifies: ${JSON.stringify(flip.classification)}`);
    await page.goto(`${server.url}/repos/cases/commits/${repo.broken}`);
    const label = 'tr[data-name="flip/linux"] .verdict';
    await page.waitForSelector(label);
    assertEqual(await page.getAttribute(label, 'data-verdict'), flip.classification.verdict, 'the verdict shown');
    // The verdict in words that say what happened (issue 16), its confidence labelled "N% sure".
    const words = {
      good: ['passing'],
      flaky: ['flaky'],
      broken: ['failing', 'started failing here'],
      fixed: ['fixed here'],
      new: ['new here'],
      removed: ['removed here'],
      unknown: ['no runs'],
    }[flip.classification.verdict];
    const shown = await page.textContent(label);
    assert(words.some((w) => shown.startsWith(w)), `its words: ${shown}`);
    if (flip.classification.verdict !== 'unknown') assert(/ · \d+% sure$/.test(shown), `its confidence: ${shown}`);
    await shot(page, 'commit-classification');

    const caseB = commit.objects.find((o) => o.name === 'cases/linux').cases.b;
    await page.goto(`${server.url}/repos/cases/commits/${repo.broken}/tests/cases/linux`);
    await page.waitForSelector('tr[data-case="b"]');
    if (caseB.classification) {
      await page.waitForSelector(`tr[data-case="b"] .verdict[data-verdict="${caseB.classification.verdict}"]`);
    }

    // A history cell carries a corner mark for the verdicts worth a look, and says it on hover.
    const history = await server.get('/api/repos/cases/branches/main/history');
    await page.goto(`${server.url}/repos/cases/branches/main`);
    await page.waitForSelector('.hgrid .hrow');
    const marked = new Set(['flaky', 'broken', 'fixed', 'new', 'removed']);
    for (const c of history.commits) {
      const o = c.objects.find((x) => x.name === 'flip/linux');
      const cls = await page.$eval(`.hrow[data-sha="${c.sha}"] .c[data-i="1"]`, (e) => e.className);
      const v = o.classification?.verdict;
      assertEqual(cls.includes(`v-${v}`), marked.has(v), `commit ${c.sha.slice(0, 8)} (${v}): ${cls}`);
    }
    await page.hover(`.hrow[data-sha="${repo.broken}"] .c[data-i="1"]`);
    const tip = await page.waitForSelector('.tip');
    const v = history.commits.find((c) => c.sha === repo.broken).objects.find((x) => x.name === 'flip/linux').classification;
    if (v) assert((await tip.textContent()).includes(`${v.verdict}:`), `the tooltip says it: ${await tip.textContent()}`);
    await shot(page, 'history-classification');
  });

  test('cancelling a running run from the UI ends it as cancelled without a reload', async () => {
    const root = tempDir('cancel');
    dirs.push(root);
    const slow = new GitRepo(path.join(root, 'repos', 'slow'));
    slow.write('testlooper.yml', kSlowDefinitions);
    const sha = slow.commit('A test that takes long');
    const cancelServer = await Server.start(binary, {
      reposDir: path.join(root, 'repos'),
      dataDir: path.join(root, 'data'),
      extra: ['--extra-runs', '0'],
    });
    servers.push(cancelServer);
    await eventually(async () => (await cancelServer.get('/api/repos')).length === 1, { what: 'the repo is seen' });
    await cancelServer.post('/api/repos/slow/branches/main/test', { enabled: true, depth: 0 });
    const runsOf = () => cancelServer.get(`/api/repos/slow/commits/${sha}/runs?name=slow/linux`);
    const first = await eventually(async () => (await runsOf()).find((r) => r.state === 'running'), {
      what: 'the run starts',
    });

    const testPage = await browser.newPage();
    await testPage.goto(`${cancelServer.url}/repos/slow/commits/${sha}/tests/slow/linux`);
    await testPage.waitForSelector(`tr[data-run="${first.id}"][data-state="running"] button.cancel`);
    await testPage.evaluate(() => (window.__sameDocument = true));
    await page.goto(`${cancelServer.url}/runs/${first.id}`);
    await page.waitForSelector('[data-follow="following"]');
    await eventually(async () => (await page.textContent('.xterm-rows')).includes('started'), { what: 'the log' });
    await page.evaluate(() => (window.__sameDocument = true));
    await shot(page, 'run-cancel-before');
    await page.click('button.cancel');
    await eventually(async () => (await page.textContent('.badge')) === 'cancelled', { what: 'the run page says cancelled' });
    await page.waitForSelector('[data-follow="complete"]');
    assert((await page.textContent('table.facts')).includes('cancelled by a user'), 'the reason');
    assert(await page.evaluate(() => window.__sameDocument === true), 'the run page was not reloaded');
    await shot(page, 'run-cancelled');
    await testPage.waitForSelector(`tr[data-run="${first.id}"][data-state="cancelled"]`);
    assert(await testPage.evaluate(() => window.__sameDocument === true), 'the test page was not reloaded');

    // A cancelled run counts neither as a run nor as a failure; the target still wants one run,
    // so the planner starts a replacement, which the test page's list can cancel too.
    const commit = await cancelServer.get(`/api/repos/slow/commits/${sha}`);
    const o = commit.objects.find((x) => x.name === 'slow/linux');
    assertEqual([o.runs, o.failures], [0, 0], 'runs and failures after the cancel');
    const second = await eventually(async () => (await runsOf()).find((r) => r.state === 'running'), {
      what: 'a replacement starts',
    });
    assert(second.id !== first.id, 'a new run');
    await testPage.click(`tr[data-run="${second.id}"] button.cancel`);
    await testPage.waitForSelector(`tr[data-run="${second.id}"][data-state="cancelled"]`);
    await shot(testPage, 'test-page-cancelled');
    // Lowering the target stops the next replacement by itself: nobody wants it any more.
    const third = await eventually(
      async () => (await runsOf()).find((r) => r.state === 'running' && r.id !== second.id),
      { what: 'another replacement starts' },
    );
    await cancelServer.post(`/api/repos/slow/commits/${sha}/targets`, { name: 'slow/linux', runs: 0 });
    const stopped = await eventually(
      async () => {
        const r = await cancelServer.get(`/api/runs/${third.id}`);
        return r.state === 'cancelled' ? r : null;
      },
      { what: 'the run nobody wants is cancelled' },
    );
    assert(stopped.detail.includes('no longer wanted'), 'the reason of an unwanted run');
    await testPage.waitForTimeout(1500);
    const after = await runsOf();
    assertEqual(after.map((r) => r.state), ['cancelled', 'cancelled', 'cancelled'], 'no run starts once the target is met');

    const json = { method: 'POST', headers: { 'Content-Type': 'application/json' } };
    const again = await fetch(`${cancelServer.url}/api/runs/${first.id}/cancel`, json);
    assertEqual([again.status, typeof (await again.json()).error], [409, 'string'], 'cancelling an ended run');
    const unknown = await fetch(`${cancelServer.url}/api/runs/0123456789abcdef/cancel`, json);
    assertEqual(unknown.status, 404, 'cancelling an unknown run');
    const malformed = await fetch(`${cancelServer.url}/api/runs/nope/cancel`, json);
    assertEqual(malformed.status, 400, 'cancelling what is not a run id');
    await testPage.close();
    await cancelServer.stop();
  }, { timeoutMs: 120_000 });

  test('a worker is sent the cancel; a run whose worker is away ends at once and is stopped on its return', async () => {
    const root = tempDir('cancel-away');
    dirs.push(root);
    const slow = new GitRepo(path.join(root, 'repos', 'slow'));
    slow.write('testlooper.yml', kSlowDefinitions);
    slow.commit('A test that takes long');
    // No local worker: this test plays the worker, to see what it is sent.
    const awayServer = await Server.start(binary, {
      reposDir: path.join(root, 'repos'),
      dataDir: path.join(root, 'data'),
      workers: 0,
      extra: ['--extra-runs', '0'],
    });
    servers.push(awayServer);
    await eventually(async () => (await awayServer.get('/api/repos')).length === 1, { what: 'the repo is seen' });
    let worker;
    const connect = async (running) => {
      worker = await FakeWorker.connect(awayServer, { worker: 'fake', cores: 1, ram_gb: 1, host: 'test', running });
    };
    const messages = async () => worker.messages;
    await connect([]);
    await awayServer.post('/api/repos/slow/branches/main/test', { enabled: true, depth: 0 });
    const first = await eventually(async () => (await messages()).find((m) => m.type === 'job')?.run_id, {
      what: 'a job is sent',
    });

    // Cancelled while connected: the worker is told, and the run ends when it reports so.
    await page.goto(`${awayServer.url}/runs/${first}`);
    await page.click('button.cancel');
    await eventually(async () => (await messages()).some((m) => m.type === 'cancel' && m.run_id === first), {
      what: 'the worker is sent the cancel',
    });
    assertEqual((await awayServer.get(`/api/runs/${first}`)).state, 'running', 'running until the worker reports');
    const now = Date.now() / 1000;
    worker.send(
      { type: 'result', run_id: first, outcome: 'cancelled', exit_code: -1, message: '', start: now - 1, end: now, cases: [] },
    );
    await eventually(async () => (await page.textContent('.badge')) === 'cancelled', { what: 'the run page says cancelled' });

    // Cancelled while its worker is away: the run ends at once; back, the worker is told to stop.
    const second = await eventually(
      async () => (await messages()).filter((m) => m.type === 'job').map((m) => m.run_id).find((id) => id !== first),
      { what: 'a replacement job' },
    );
    await worker.close();
    await eventually(async () => !(await awayServer.get('/api/workers'))[0].connected, { what: 'the worker is away' });
    await page.goto(`${awayServer.url}/runs/${second}`);
    await page.click('button.cancel');
    await eventually(async () => (await page.textContent('.badge')) === 'cancelled', { what: 'cancelled at once' });
    // (Lowered before the cancel, the target would have cancelled the run itself: nobody wants it.)
    await awayServer.post(`/api/repos/slow/commits/${(await awayServer.get(`/api/runs/${second}`)).commit}/targets`, {
      name: 'slow/linux',
      runs: 0,
    });
    await connect([second]);
    await eventually(async () => (await messages()).some((m) => m.type === 'cancel' && m.run_id === second), {
      what: 'the returning worker is told to stop the run',
    });
    assertEqual((await messages()).filter((m) => m.type === 'job').length, 0, 'no job once the target is met');
    await shot(page, 'run-cancelled-worker-away');
    await worker.close();
    await awayServer.stop();
  });

  test('the run page links the run’s artifacts for download', async () => {
    await server.post('/api/repos/art/branches/main/test', { enabled: true, depth: 0 });
    const run = await eventually(
      async () => (await server.get(`/api/repos/art/commits/${repo.art}/runs?name=art/linux`)).find((r) => r.state === 'succeeded'),
      { what: 'the run ends' },
    );
    const list = await server.get(`/api/runs/${run.id}/artifacts`);
    assertEqual(list.map((a) => a.name), ['report.tar'], 'the listing');
    await page.goto(`${server.url}/runs/${run.id}`);
    await page.waitForSelector('table.artifacts tr[data-artifact] a');
    const shown = await page.$$eval('table.artifacts tr[data-artifact] a', (a) => a.map((e) => e.getAttribute('href')));
    assertEqual(shown, list.map((x) => x.url), 'a link per artifact');
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('table.artifacts a')]);
    const saved = path.join(artifacts, 'downloaded-report.tar');
    await download.saveAs(saved);
    assert(fs.statSync(saved).size > 0, 'the artifact downloads');
    await shot(page, 'run-artifacts');
  });

  return async function teardown() {
    if (browser) await browser.close();
    for (const s of servers) await s.stop();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  };
}
