'use strict';
// What every Node test of the connector shares: the binary under test and an environment
// without a developer's connector or go-plugin settings (each case sets what it needs).

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const BIN = process.env.SMS_CONNECTOR_BIN || path.resolve(__dirname, '..', '..', '..', 'bin', 'sms-connector');
if (!fs.existsSync(BIN)) {
  throw new Error(`no connector binary at ${BIN}: run "make test-node" (or "make build", or set SMS_CONNECTOR_BIN)`);
}

const BASE_ENV = Object.fromEntries(Object.entries(process.env)
  .filter(([k]) => !k.startsWith('SMS_CONNECTOR_') && !k.startsWith('PLUGIN_')));

// rejection awaits a call that must fail and returns its error.
async function rejection(promise) {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  assert.fail('the call succeeded; it should have failed');
}

module.exports = { BIN, BASE_ENV, rejection };
