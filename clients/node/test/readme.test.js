'use strict';
// Runs the example of clients/node/README.md as printed: the one ```js block, saved as a file
// in clients/node and run with node, against bin/sms-connector (`make test-node` builds it).

const { it } = require('node:test');
const assert = require('node:assert/strict');
const { execFile } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { BASE_ENV } = require('./helpers.js');

const NODE_DIR = path.resolve(__dirname, '..');


it('the README example runs as printed', async () => {
  const bin = path.join(NODE_DIR, '..', '..', 'bin', 'sms-connector');
  assert.ok(fs.existsSync(bin), `no ${bin}: run "make test-node" or "make build" first`);
  const readme = fs.readFileSync(path.join(NODE_DIR, 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(/^```js\n([\s\S]*?)^```$/gm)].map((m) => m[1]);
  assert.equal(blocks.length, 1, 'the README should have exactly one js block, the example');

  const file = path.join(NODE_DIR, `.readme-example-${process.pid}.js`);
  fs.writeFileSync(file, blocks[0]);
  let out;
  try {
    out = await new Promise((resolve, reject) => {
      execFile(process.execPath, [file], { cwd: NODE_DIR, env: BASE_ENV, timeout: 60_000 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`node example.js failed: ${err.message}\n${stdout}\n${stderr}`));
        else resolve(stdout);
      });
    });
  } finally {
    fs.rmSync(file, { force: true });
  }
  assert.match(out, /^SM[0-9a-f]{32}$/m, out);
  assert.match(out, /'accountSID'/, out);
  assert.match(out, /^9 \{[\s\S]*reason: 'COUNTRY_NOT_PERMITTED'/m, out);
  assert.match(out, /\{ code: 0, signal: null, killed: false \}/, out);
});
