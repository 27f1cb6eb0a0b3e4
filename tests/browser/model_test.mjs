// Statistics first (issue 16 items 1, 4, 5, 6, 8): the web UI draws the model, in Debian's
// Chromium against a real `testlooper serve` and a worker the test plays (so every outcome is
// chosen): a known 20% flake that fails its one run at the head is coloured as a flake, a broken
// test's 1/1 cell as broken; the docs commit shares its runs with the commit below ("same runs
// as ↓"); the test history plots the model's steps, band and labelled change; the search, queue
// and workers' runs are shown; a definitions error, a branch not under test and a page that does
// not exist say so; titles name the pages; "Run N more" asks for runs.
import fs from 'node:fs';
import path from 'node:path';

import { assert, assertEqual, eventually, test } from './harness.mjs';
import { FakeWorker, GitRepo, launchBrowser, Server, tempDir, screenshot } from './fixtures.mjs';

const kFlaky = 'flaky/linux';
const kBroken = 'broken/linux';
const kRuns = 5; // target runs of each older commit

// The column index of test `name` in the history grid.
async function columnOf(page, name) {
  const cols = await page.$$eval('.hgrid .names [data-col]', (els) => els.map((e) => e.getAttribute('data-col')));
  const i = cols.indexOf(name);
  assert(i >= 0, `the grid has a column ${name}: ${cols.join(', ')}`);
  return i;
}

async function cellOf(page, sha, name) {
  const i = await columnOf(page, name);
  const selector = `.hrow[data-sha="${sha}"] .cells [data-i="${i}"]`;
  await page.waitForSelector(selector);
  return {
    cls: await page.getAttribute(selector, 'class'),
    text: (await page.textContent(selector)).trim(),
  };
}

export function register({ binary, artifacts }) {
  const dirs = [];
  let browser = null;
  let server = null;
  let worker = null;
  const servers = [];
  const workers = [];

  test('model: the grid, the plot, the search and the states show the statistics', async () => {
    const root = tempDir('model');
    dirs.push(root);
    const app = new GitRepo(path.join(root, 'repos', 'app'));
    app.write(
      'testlooper.yml',
      'looper_version: 5\nenvironments: {linux: {platform: linux, image: {host: true}}}\n' +
        'tests:\n' +
        `  ${kFlaky}: {command: 'true', dependencies: {src: HEAD/source/src}}\n` +
        `  ${kBroken}: {command: 'true', dependencies: {src: HEAD/source/src}}\n`,
    );
    const shas = []; // oldest first
    for (let i = 1; i <= 4; i++) {
      app.write('src/a', String(i));
      shas.push(app.commit(`change ${i}`, { hoursAgo: 10 - i }));
    }
    app.write('README', 'docs\n');
    const docs = app.commit('docs only', { author: 'Doc Writer', hoursAgo: 5 });
    app.write('src/a', '6');
    const head = app.commit('the head', { hoursAgo: 4 });
    // A branch whose head's definitions do not parse, not under test.
    app.git('checkout', '-q', '-b', 'bad');
    app.write('testlooper.yml', 'looper_version: 5\ntests: [\n');
    app.commit('broken definitions', { hoursAgo: 3 });
    app.git('checkout', '-q', 'main');

    server = await Server.start(binary, {
      reposDir: path.join(root, 'repos'),
      dataDir: path.join(root, 'data'),
      workers: 0,
      extra: ['--extra-runs', '4'],
    });
    await eventually(async () => (await server.get('/api/repos')).length === 1, { what: 'the repo is seen' });
    await server.post('/api/repos/app/branches/main/test', { enabled: true, depth: 5 });
    for (const sha of shas) {
      for (const name of [kFlaky, kBroken]) {
        await server.post(`/api/repos/app/commits/${sha}/targets`, { name, runs: kRuns });
      }
    }

    // The worker: the flake fails 1 run in 5 on older commits and its first run at the head (the
    // head's later runs are left running: the search goes on); the broken test fails from the
    // third commit on.
    worker = await FakeWorker.connect(server, { cores: 64, ram_gb: 64 });
    const answered = new Set();
    const seen = new Map(); // `${name}@${commit}` -> runs so far
    const broken = new Set([shas[2], shas[3], docs, head]);
    const answer = () => {
      for (const job of worker.jobs()) {
        if (answered.has(job.run_id)) continue;
        answered.add(job.run_id);
        const name = job.object?.name;
        const key = `${name}@${job.commit}`;
        const k = seen.get(key) ?? 0;
        seen.set(key, k + 1);
        let fail;
        if (name === kFlaky) {
          if (job.commit === head && k > 0) continue; // stays running
          fail = job.commit === head || k % 5 === 0;
        } else {
          fail = broken.has(job.commit);
        }
        worker.send({ type: 'result', run_id: job.run_id, outcome: fail ? 'failure' : 'success', exit_code: fail ? 1 : 0 });
      }
    };
    const objectAt = async (sha, name) =>
      (await server.get(`/api/repos/app/commits/${sha}`)).objects.find((o) => o.name === name);
    await eventually(
      async () => {
        answer();
        for (const sha of shas) {
          for (const name of [kFlaky, kBroken]) if ((await objectAt(sha, name))?.runs < kRuns) return false;
        }
        const f = await objectAt(head, kFlaky);
        const b = await objectAt(head, kBroken);
        return f.runs === 1 && b.runs >= 1 && f.classification?.verdict === 'flaky' && b.classification?.verdict === 'broken';
      },
      { what: 'the runs are in and classified', timeoutMs: 120_000 },
    );
    answer();

    browser = await launchBrowser(path.join(root, 'profile'));
    const page = await browser.newPage();

    // Items 1 and 5: the grid.
    await page.goto(`${server.url}/repos/app/branches/main`);
    await page.waitForSelector(`.hrow[data-sha="${head}"]`);
    assertEqual(await page.title(), 'main · app · TestLooper', 'the grid page title');
    const flakyHead = await cellOf(page, head, kFlaky);
    const brokenHead = await cellOf(page, head, kBroken);
    assert(!/\bf5\b/.test(flakyHead.cls) && /\bf[1-4]\b/.test(flakyHead.cls), `a 1/1 of a known flake is a flake: ${flakyHead.cls}`);
    assert(/\bv-flaky\b/.test(flakyHead.cls), `the flake's corner: ${flakyHead.cls}`);
    assert(/^\d+%$/.test(flakyHead.text) && flakyHead.text !== '100%', `the flake's cell says its rate: ${flakyHead.text}`);
    assert(/\bf5\b/.test(brokenHead.cls), `a broken test's 1/1 is broken: ${brokenHead.cls}`);
    // The docs commit shares its runs with the commit below, and no change is put on it.
    const docsRow = `.hrow[data-sha="${docs}"]`;
    assert((await page.getAttribute(docsRow, 'class')).includes('same-next'), 'the docs row is grouped with the one below');
    assertEqual((await page.textContent(`${docsRow} .same-tag`)).trim(), 'same runs as ↓', 'the docs row says so');
    assert(!(await page.getAttribute(docsRow, 'class')).includes('has-cp'), 'no change on the docs commit');
    assert((await cellOf(page, docs, kBroken)).cls.includes('same'), 'its cells are the runs of the commit below');
    assert((await page.getAttribute(`.hrow[data-sha="${head}"]`, 'class')).includes('same-next') === false, 'the head is not');
    const legend = await page.textContent('.legend');
    for (const words of ['same runs as ↓', 'broken', 'flaky', 'fixed here', 'change of failure rate', 'no runs', 'merge']) {
      assert(legend.includes(words), `the legend decodes "${words}": ${legend}`);
    }
    // Item 6: the search and the queue.
    await page.waitForSelector('.search-bar .search');
    const search = await page.textContent('.search-bar');
    assert(/\d+\/4 extra runs used/.test(search), `the search's budget: ${search}`);
    assert(search.includes('queue:'), `the queue: ${search}`);
    const state = await page.getAttribute('.search-bar .search', 'data-search');
    assert(['searching', 'localised', 'budget_spent', 'idle'].includes(state), `a search state: ${state}`);
    await screenshot(page, artifacts, 'model-grid');
    // Hover the flake's head cell: the tooltip gives the model's rate and this commit's counts.
    await page.hover(`.hrow[data-sha="${head}"] .cells [data-i="${await columnOf(page, kFlaky)}"]`);
    await page.waitForSelector('.tip');
    const tip = await page.textContent('.tip');
    assert(tip.includes("the model's") && tip.includes('this commit: 1 runs, 1 failures'), `the tooltip: ${tip}`);
    await screenshot(page, artifacts, 'model-grid-tip');

    // Item 8: "Run N more" at the head of the grid.
    await page.waitForSelector('.head-actions button[name="run-more"]');
    await page.selectOption('.head-actions select[name="more-count"]', '5');
    await page.click('.head-actions button[name="run-more"]');
    await page.waitForSelector('.head-actions .said');
    await eventually(async () => (await objectAt(head, kBroken)).target_runs >= 6, { what: 'the grid asked for 5 more runs' });

    // Item 4: the test history plots the model.
    await page.goto(`${server.url}/repos/app/branches/main/tests/${kBroken}`);
    await page.waitForSelector('.plot canvas');
    assertEqual(await page.title(), `${kBroken} · main · app · TestLooper`, 'the test history title');
    const plot = '.plot';
    const rates = (await page.getAttribute(plot, 'data-segment-rates')).split(' ').map(Number);
    assert(rates.length === 2 && rates.some((r) => r < 0.2) && rates.some((r) => r > 0.8), `two segments: ${rates}`);
    assert(Number(await page.getAttribute(plot, 'data-change-points')) >= 1, 'the change is listed');
    assert((await page.getAttribute(plot, 'data-change-commits')).includes(shas[2]), 'at the commit that broke it');
    const plotLegend = await page.textContent('.plot-legend');
    for (const words of ['failure rate of the model', '95% interval', "one commit's own runs", 'change of failure rate']) {
      assert(plotLegend.includes(words), `the plot's legend says "${words}": ${plotLegend}`);
    }
    const changeLine = await page.textContent('ul.changes');
    assert(changeLine.includes('started failing here') && /\d+% sure/.test(changeLine), `the change in words: ${changeLine}`);
    await screenshot(page, artifacts, 'model-plot-broken');
    await page.goto(`${server.url}/repos/app/branches/main/tests/${kFlaky}`);
    await page.waitForSelector('.plot canvas');
    const flakyRates = (await page.getAttribute(plot, 'data-segment-rates')).split(' ').filter(Boolean).map(Number);
    assert(flakyRates.length === 1 && flakyRates[0] > 0.1 && flakyRates[0] < 0.4, `one flaky segment: ${flakyRates}`);
    await screenshot(page, artifacts, 'model-plot-flaky');

    // Item 8: "Run N more" on the test page.
    await page.goto(`${server.url}/repos/app/commits/${head}/tests/${kFlaky}?branch=main`);
    await page.waitForSelector('button[name="run-more"]');
    assert((await page.title()).startsWith(`${kFlaky} · `), `the test page's title: ${await page.title()}`);
    const before = await objectAt(head, kFlaky);
    await page.click('button[name="run-more"]');
    await eventually(async () => (await objectAt(head, kFlaky)).target_runs >= Math.max(before.runs, before.target_runs) + 10, {
      what: 'the test page asked for 10 more runs',
    });

    // Item 6: the workers page names the running test and commit, and the recent runs.
    await page.goto(`${server.url}/workers`);
    await page.waitForSelector('tr[data-worker="fake"] td.running .worker-run');
    const running = await page.textContent('tr[data-worker="fake"] td.running');
    assert(running.includes(`${kFlaky} at ${head.slice(0, 8)}`), `the running test and commit: ${running}`);
    const recent = await page.textContent('tr[data-worker="fake"] td.recent');
    assert(/(succeeded|failed)/.test(recent) && recent.includes('ago'), `the recent runs: ${recent}`);
    assert((await page.textContent('main')).includes('queue:'), 'the queue');
    assertEqual(await page.title(), 'Workers · TestLooper', 'the workers title');
    await screenshot(page, artifacts, 'model-workers');
    const runId = (await server.get('/api/workers')).find((w) => w.id === 'fake').recent[0].id;
    await page.goto(`${server.url}/runs/${runId}`);
    await page.waitForFunction((id) => document.title === `Run ${id} · TestLooper`, runId);

    // Item 8: a branch not under test says so, with the button; its head's definitions error shows.
    await page.goto(`${server.url}/repos/app/branches/bad`);
    await page.waitForSelector('.not-tested button[name="test"]');
    await page.waitForSelector('.head-error');
    assert((await page.textContent('.head-error')).includes('do not load'), 'the definitions error is an error');
    assert(!(await page.textContent('main')).includes('No tests match'), 'not "no tests"');
    await screenshot(page, artifacts, 'model-not-tested');
    await page.click('.not-tested button[name="test"]');
    await page.waitForSelector('.branch-state[data-under-test="true"]');
    await page.goto(`${server.url}/`);
    await page.waitForSelector('tr[data-branch="bad"] .head-error');
    assert((await page.textContent('tr[data-branch="bad"]')).includes('definitions error'), 'home says the error');
    assert(!(await page.textContent('tr[data-branch="bad"]')).includes('no tests'), 'home does not say "no tests"');
    assertEqual(await page.title(), 'Repos · TestLooper', 'the home title');
    await screenshot(page, artifacts, 'model-home');

    // Item 8: pages of things that do not exist end (no "Loading…" forever).
    for (const url of ['/repos/nope', '/repos/app/branches/nope', '/repos/app/commits/0123456789abcdef0123456789abcdef01234567', '/repos/app/branches/main/tests/nope/linux']) {
      await page.goto(`${server.url}${url}`);
      await page.waitForSelector('.problem');
      assertEqual(await page.$('.loading'), null, `${url} still says Loading`);
    }
    await screenshot(page, artifacts, 'model-not-found');
  }, { timeoutMs: 240_000 });

  test('model: Retry runs a test blocked by infrastructure failures again, from the grid and the test page', async () => {
    const root = tempDir('model-retry');
    dirs.push(root);
    const app = new GitRepo(path.join(root, 'repos', 'app'));
    app.write(
      'testlooper.yml',
      "looper_version: 5\nenvironments: {linux: {platform: linux, image: {host: true}}}\ntests: {infra/linux: {command: 'true'}}\n",
    );
    const head = app.commit('one');
    const retryServer = await Server.start(binary, {
      reposDir: path.join(root, 'repos'),
      dataDir: path.join(root, 'data'),
      workers: 0,
      extra: ['--extra-runs', '0', '--infra-backoff-seconds', '0.01'],
    });
    servers.push(retryServer);
    await eventually(async () => (await retryServer.get('/api/repos')).length === 1, { what: 'the repo is seen' });
    await retryServer.post('/api/repos/app/branches/main/test', { enabled: true });
    const infraWorker = await FakeWorker.connect(retryServer, { worker: 'infra-fake' });
    workers.push(infraWorker);
    const answered = new Set();
    const status = async () =>
      (await retryServer.get(`/api/repos/app/commits/${head}`)).objects.find((o) => o.name === 'infra/linux')?.status;
    // Every run is an infrastructure failure until the test is blocked.
    await eventually(
      async () => {
        for (const job of infraWorker.jobs()) {
          if (answered.has(job.run_id)) continue;
          answered.add(job.run_id);
          infraWorker.send({ type: 'result', run_id: job.run_id, outcome: 'infra', exit_code: 1, message: 'disk gone' });
        }
        return (await status()) === 'infra_blocked';
      },
      { what: 'the test is blocked by infrastructure failures' },
    );
    const blockedRuns = answered.size;
    if (!browser) browser = await launchBrowser(path.join(root, 'profile'));
    const page = await browser.newPage();
    await page.goto(`${retryServer.url}/repos/app/branches/main`);
    await page.waitForSelector('.head-actions button[name="retry"]');
    await page.goto(`${retryServer.url}/repos/app/commits/${head}/tests/infra/linux?branch=main`);
    await page.waitForSelector('button[name="retry"]');
    await screenshot(page, artifacts, 'model-retry');
    await page.click('button[name="retry"]');
    await page.waitForSelector('.more-runs .said');
    await eventually(async () => infraWorker.jobs().length > blockedRuns, { what: 'a new run after Retry' });
    assert((await status()) !== 'infra_blocked', 'no longer blocked');
    await page.close();
  });

  return async function teardown() {
    if (browser) await browser.close();
    for (const w of [worker, ...workers]) if (w) await w.close().catch(() => {});
    for (const s of [server, ...servers]) if (s) await s.stop();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  };
}
