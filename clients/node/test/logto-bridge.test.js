'use strict';
// Logto's own HTTP SMS connector (@logto/connector-http-sms, the npm package Logto loads,
// pinned in devDependencies) calls bin/sms-connector's Logto bridge (--http-listen) over HTTP,
// in sandbox mode: the built-in Twilio emulator sits behind it and logs every message it
// accepts, so the test sees what Twilio would have sent. Nothing leaves the machine.
//
// `make test-node` builds the binary and passes its path in SMS_CONNECTOR_BIN.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { BIN, BASE_ENV } = require('./helpers.js');
const readline = require('node:readline');



const TOKEN = 'LoGtOtEsTtOkEn0LoGtOtEsTtOkEn0Lo';
const HTTP_SERVING = 'sms-connector http serving';
const SERVING = 'sms-connector serving';
const ACCEPTED = 'sandbox Twilio accepted a message (nothing was sent)';

// startBridge runs the binary in sandbox mode with the bridge on a free loopback port and a
// guard policy of one SMS per recipient per hour; it resolves once both listeners serve.
function startBridge(dir) {
  const tokenFile = path.join(dir, 'token');
  fs.writeFileSync(tokenFile, TOKEN + '\n', { mode: 0o600 });
  const policy = path.join(dir, 'policy.json');
  fs.writeFileSync(policy, JSON.stringify({ recipient: [{ max: 1, window: '1h' }], prefix: [{ max: 1000, window: '1h' }] }));
  const child = spawn(BIN, ['--sandbox', '--listen', '127.0.0.1:0', '--http-listen', '127.0.0.1:0',
    '--auth-token-file', tokenFile, '--policy', policy], { env: BASE_ENV, stdio: ['ignore', 'ignore', 'pipe'] });
  const lines = [];
  const proc = { child, lines, address: null };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the bridge did not start:\n' + lines.map((l) => JSON.stringify(l)).join('\n'))), 20_000);
    child.on('exit', (code) => reject(new Error(`the binary exited with ${code}: ${lines.map((l) => JSON.stringify(l)).join('\n')}`)));
    readline.createInterface({ input: child.stderr }).on('line', (line) => {
      let entry;
      try { entry = JSON.parse(line); } catch { entry = { msg: line }; }
      lines.push(entry);
      if (entry.msg === HTTP_SERVING) proc.address = entry.address;
      if (entry.msg === SERVING) {
        clearTimeout(timer);
        if (!proc.address) reject(new Error(`"${SERVING}" came without "${HTTP_SERVING}" before it`));
        resolve(proc);
      }
    });
  });
}

// accepted returns the bodies the sandbox's Twilio accepted so far.
const accepted = (proc) => proc.lines.filter((l) => l.msg === ACCEPTED).map((l) => l.body);

// waitFor polls until cond() holds (log lines arrive asynchronously on stderr).
async function waitFor(cond, what) {
  for (let i = 0; i < 100; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail(`timed out waiting for ${what}`);
}

describe('Logto HTTP SMS connector -> sms-connector --http-listen', () => {
  let dir;
  let proc;
  let createConnector;
  let ConnectorError;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'logto-bridge-'));
    proc = await startBridge(dir);
    createConnector = (await import('@logto/connector-http-sms')).default;
    ({ ConnectorError } = await import('@logto/connector-kit'));
  });

  after(async () => {
    if (proc) {
      const exited = new Promise((r) => proc.child.once('exit', r));
      proc.child.kill('SIGTERM');
      await exited;
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  // logto builds the connector as Logto does: its factory with a getConfig. The config's
  // authorization is the given one, or none at all when null.
  const logto = (authorization = `Bearer ${TOKEN}`) => createConnector({
    getConfig: async () => ({ endpoint: `http://${proc.address}/logto/sms`, ...(authorization !== null && { authorization }) }),
  });

  // rejected runs sendMessage and returns the ConnectorError it must throw.
  async function rejected(promise) {
    try {
      await promise;
    } catch (err) {
      assert.ok(err instanceof ConnectorError, `not a ConnectorError: ${err}`);
      return err;
    }
    assert.fail('sendMessage succeeded; it should have failed');
  }

  it('a SignIn code in fr-CA arrives with the French template', async () => {
    const c = await logto();
    await c.sendMessage({ to: '+14155550123', type: 'SignIn', payload: { code: '123456', locale: 'fr-CA', uiLocales: 'fr-CA en' }, ip: '203.0.113.9' });
    await waitFor(() => accepted(proc).includes('[sandbox] Votre code de connexion est 123456.'), 'the French SMS');
  });

  it("Logto's test send (Generic, code 000000, a number without +) arrives", async () => {
    const c = await logto();
    await c.sendMessage({ to: '14155550124', type: 'Generic', payload: { code: '000000' } });
    await waitFor(() => accepted(proc).includes('[sandbox] Your Generic verification code is 000000.'), 'the test SMS');
  });

  it('an OrganizationInvitation with a link arrives',
    async () => {
      const c = await logto();
      const link = 'https://auth.example.com/invitation/abc123';
      await c.sendMessage({ to: '+14155550125', type: 'OrganizationInvitation', payload: { link, locale: 'en' } });
      await waitFor(() => accepted(proc).some((b) => b.includes(link)), 'the invitation SMS');
    });

  it('a rate-limited send surfaces in Logto as a ConnectorError naming RATE_LIMITED', async () => {
    const c = await logto();
    await c.sendMessage({ to: '+14155550126', type: 'SignIn', payload: { code: '111111' } });
    const err = await rejected(c.sendMessage({ to: '+14155550126', type: 'SignIn', payload: { code: '222222' } }));
    assert.equal(err.code, 'general');
    assert.match(err.message, /RATE_LIMITED/);
    const body = JSON.parse(err.data.message);
    assert.equal(body.code, 'RESOURCE_EXHAUSTED');
    assert.equal(body.reason, 'RATE_LIMITED');
    assert.equal(body.retryable, true);
    assert.ok(body.retryAfterSeconds > 0);
    assert.ok(!accepted(proc).some((b) => b.includes('222222')), 'the refused code reached Twilio');
  });

  it('a wrong Authorization is refused and nothing is sent', async () => {
    const before = accepted(proc).length;
    for (const authorization of [`Bearer ${TOKEN}x`, TOKEN, null]) {
      const c = await logto(authorization);
      const err = await rejected(c.sendMessage({ to: '+14155550127', type: 'SignIn', payload: { code: '333333' } }));
      const body = JSON.parse(err.data.message);
      assert.equal(body.reason, 'UNAUTHENTICATED');
      assert.ok(!err.message.includes(TOKEN), 'the error quotes the token');
    }
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(accepted(proc).length, before);
    assert.ok(!accepted(proc).some((b) => b.includes('333333')));
  });

  it('no log line holds the token or a full phone number', () => {
    for (const l of proc.lines) {
      const s = JSON.stringify(l);
      assert.ok(!s.includes(TOKEN), `a log line holds the token: ${s}`);
      assert.ok(!/14155550\d{3}/.test(s), `a log line holds a full phone number: ${s}`);
    }
  });
});
