// Runs the browser tests: node tests/browser/run.mjs BINARY ARTIFACTS_DIR
// (scripts/browser-test checks the prerequisites first and says why when it skips).
// TL_BROWSER_SUITES=ui,history_cancel runs only those suites (default: all, in this order).
import fs from 'node:fs';
import path from 'node:path';

import { runAll } from './harness.mjs';
import { register as registerChanges } from './changes_test.mjs';
import { register as registerDeploy } from './deploy_test.mjs';
import { register as registerHistoryCancel } from './history_cancel_test.mjs';
import { register as registerMachines } from './machines_test.mjs';
import { register as registerModel } from './model_test.mjs';
import { register as registerOAuth } from './oauth_test.mjs';
import { register as registerPins } from './pins_test.mjs';
import { register as registerUi } from './ui_test.mjs';

const kSuites = { ui: registerUi, changes: registerChanges, history_cancel: registerHistoryCancel, machines: registerMachines, model: registerModel, oauth: registerOAuth, pins: registerPins, deploy: registerDeploy };

const [binary, artifacts] = process.argv.slice(2);
if (!binary || !artifacts) {
  console.error('usage: node tests/browser/run.mjs BINARY ARTIFACTS_DIR');
  process.exit(2);
}
const chosen = (process.env.TL_BROWSER_SUITES || Object.keys(kSuites).join(',')).split(',').filter(Boolean);
for (const name of chosen) {
  if (!kSuites[name]) {
    console.error(`no browser test suite named '${name}' (there are: ${Object.keys(kSuites).join(', ')})`);
    process.exit(2);
  }
}
fs.mkdirSync(artifacts, { recursive: true });
const options = { binary: path.resolve(binary), artifacts: path.resolve(artifacts) };
const teardowns = chosen.map((name) => kSuites[name](options));
const failed = await runAll(async () => {
  for (const teardown of teardowns) await teardown();
});
console.log(`screenshots: ${path.resolve(artifacts)}`);
process.exit(failed > 0 ? 1 : 0);
