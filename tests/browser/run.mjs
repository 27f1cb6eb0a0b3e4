// Runs the browser tests: node tests/browser/run.mjs BINARY ARTIFACTS_DIR
// (scripts/browser-test checks the prerequisites first and says why when it skips).
import fs from 'node:fs';
import path from 'node:path';

import { runAll } from './harness.mjs';
import { register } from './ui_test.mjs';

const [binary, artifacts] = process.argv.slice(2);
if (!binary || !artifacts) {
  console.error('usage: node tests/browser/run.mjs BINARY ARTIFACTS_DIR');
  process.exit(2);
}
fs.mkdirSync(artifacts, { recursive: true });
const teardown = register({ binary: path.resolve(binary), artifacts: path.resolve(artifacts) });
const failed = await runAll(teardown);
console.log(`screenshots: ${path.resolve(artifacts)}`);
process.exit(failed > 0 ? 1 : 0);
