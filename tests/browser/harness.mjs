// A minimal sequential test runner for the browser tests: named steps that share fixtures, a
// timeout per step, and the closing line `N passed, N failed` (exit status 1 on any failure).

const tests = [];

// Registers a test. Tests run in the order they are registered.
export function test(name, fn, { timeoutMs = 120_000 } = {}) {
  tests.push({ name, fn, timeoutMs });
}

function withTimeout(promise, ms, name) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${name}: timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// Runs every registered test, then `teardown`; returns the number of failures.
export async function runAll(teardown) {
  let passed = 0;
  let failed = 0;
  for (const t of tests) {
    const started = Date.now();
    try {
      await withTimeout(Promise.resolve().then(t.fn), t.timeoutMs, t.name);
      passed++;
      console.log(`ok - ${t.name} (${Date.now() - started} ms)`);
    } catch (e) {
      failed++;
      console.log(`not ok - ${t.name} (${Date.now() - started} ms)`);
      console.log(String(e?.stack ?? e).split('\n').map((l) => `    ${l}`).join('\n'));
    }
  }
  try {
    await teardown();
  } catch (e) {
    console.log(`teardown: ${e?.message ?? e}`);
  }
  console.log(`${passed} passed, ${failed} failed`);
  return failed;
}

export function assert(condition, message) {
  if (!condition) throw new Error(`assertion failed: ${message}`);
}

export function assertEqual(actual, expected, message) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${message}: expected ${e}, got ${a}`);
}

// Polls `check` (sync or async) every 100 ms until it returns a truthy value; returns it.
export async function eventually(check, { timeoutMs = 60_000, what = 'condition' } = {}) {
  const until = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await check();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > until) throw new Error(`${what} did not happen in ${timeoutMs} ms (last: ${last})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
