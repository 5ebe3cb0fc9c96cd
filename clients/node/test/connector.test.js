'use strict';
// The polyglot proof: a Node.js host starts bin/sms-connector as a go-plugin plugin, in sandbox
// mode (the built-in Twilio emulator; nothing leaves the machine), calls every RPC of
// connector.sms.v1.SmsConnector with @grpc/grpc-js, decodes the google.rpc error details of
// failures, checks health, and shuts the plugin down the way go-plugin's Go host does.
//
// It builds nothing: `make test-node` builds the binary and passes its path in
// SMS_CONNECTOR_BIN (default: ../../bin/sms-connector).
//
// It runs three ways: unix socket in plaintext (no PLUGIN_CLIENT_CERT), unix socket with
// AutoMTLS (a throwaway client certificate made with node:crypto), TCP with AutoMTLS.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnConnector, connect, errorInfo, toStruct, fromStruct, generateClientCert, grpc } = require('../client.js');
const { BIN, BASE_ENV, rejection } = require('./helpers.js');



const isAlive = (pid) => {
  try { process.kill(pid, 0); return true; } catch (e) { return e.code !== 'ESRCH'; }
};

const MODES = [
  { name: 'unix socket, plaintext (no PLUGIN_CLIENT_CERT)', network: 'unix', mtls: false },
  { name: 'unix socket, AutoMTLS', network: 'unix', mtls: true },
  // SMS_CONNECTOR_PLUGIN_NETWORK=tcp is this contract's addition to go-plugin (see smsplugin).
  { name: 'TCP inside PLUGIN_MIN_PORT..PLUGIN_MAX_PORT, AutoMTLS', network: 'tcp', mtls: true, minPort: 10000, maxPort: 25000 },
];

for (const mode of MODES) {
  describe(`plugin mode, ${mode.name}`, () => {
    let conn;
    let stderr = '';

    before(async () => {
      conn = await spawnConnector(BIN, {
        baseEnv: BASE_ENV,
        env: { SMS_CONNECTOR_SANDBOX: 'true', SMS_CONNECTOR_PLUGIN_NETWORK: mode.network },
        clientCert: mode.mtls ? generateClientCert() : undefined,
        minPort: mode.minPort,
        maxPort: mode.maxPort,
        onStderr: (chunk) => { stderr += chunk; },
      });
      await conn.waitForReady(10_000);
    });

    after(() => {
      // A safety net only: the last test shuts the plugin down and asserts it went.
      if (conn && conn.process.exitCode === null && conn.process.signalCode === null) conn.process.kill('SIGKILL');
    });

    it('handshakes: first stdout line, go-plugin core 1, app protocol 1, grpc', () => {
      const h = conn.handshake;
      assert.equal(h.core, 1);
      assert.equal(h.app, 1);
      assert.equal(h.protocol, 'grpc');
      assert.equal(h.network, mode.network);
      if (h.network === 'unix') {
        assert.ok(fs.statSync(h.address).isSocket(), `${h.address} is a unix socket`);
      } else {
        const [, host, port] = h.address.match(/^(.*):(\d+)$/);
        assert.equal(host, '127.0.0.1');
        assert.ok(Number(port) >= mode.minPort && Number(port) <= mode.maxPort, `port ${port} in range`);
      }
      if (mode.mtls) {
        assert.match(h.serverCertPem, /^-----BEGIN CERTIFICATE-----\n/, 'AutoMTLS: the 6th field is the plugin certificate');
      } else {
        assert.equal(h.serverCertPem, null, 'no PLUGIN_CLIENT_CERT: no certificate, plaintext');
      }
    });

    it('GetMetadata describes the Twilio connector, in English and French', async () => {
      const md = await conn.getMetadata({});
      assert.equal(md.id, 'twilio-short-message-service');
      assert.equal(md.target, 'twilio');
      assert.equal(md.name.en, 'Twilio SMS');
      assert.ok(md.name.fr, 'a French name');
      assert.ok(md.description.en && md.description.fr, 'English and French descriptions');
      assert.equal(md.contract_version, 'connector.sms.v1');
      assert.ok(md.supported_usage_types.includes('USAGE_TYPE_SIGN_IN'));
      assert.ok(md.form_items.some((f) => f.key === 'authToken' && f.confidential), 'authToken is confidential');
      const schema = fromStruct(md.config_schema);
      assert.equal(schema.type, 'object');
      assert.ok(schema.properties.accountSID, 'the JSON Schema has accountSID');
    });

    it('ValidateConfig reports every problem of an invalid config with its field', async () => {
      const res = await conn.validateConfig({
        config: toStruct({ accountSID: 'AC123', from: '+15005550006', templates: [] }),
      });
      assert.equal(res.valid, false);
      const fields = res.violations.map((v) => v.field);
      assert.ok(fields.includes('accountSID'), fields.join(','));
      assert.ok(fields.includes('templates'), fields.join(','));
      for (const v of res.violations) assert.ok(v.description.length > 0, `${v.field} has a description`);
    });

    it('SendMessage sends a sign-in code through the sandbox emulator', async () => {
      const res = await conn.sendMessage({
        to: '+15005550006', usage_type: 'USAGE_TYPE_SIGN_IN', payload: { code: '123456' },
      });
      assert.match(res.message_id, /^SM[0-9a-f]{32}$/);
      assert.equal(res.status, 'queued');
      assert.equal(res.to, '+15005550006');
      assert.equal(res.segments, 1);
      assert.equal(res.encoding, 'ENCODING_GSM7');
      assert.equal(res.connector_id, 'twilio-short-message-service');
      // Read the code back: the sandbox emulator logs each message it accepts, body included,
      // on the plugin's stderr (JSON lines).
      const deadline = Date.now() + 5000;
      let line;
      while (!(line = stderr.split('\n').find((l) => l.includes(res.message_id))) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.ok(line, `the sandbox logged message ${res.message_id}; stderr:\n${stderr}`);
      assert.match(JSON.parse(line).body, /verification code is 123456\./);
    });

    it('SendMessage takes the config as JSON text in config_json', async () => {
      // The sandbox emulator's fixed account (twiliotest.SandboxAccountSID / SandboxAuthToken).
      const config = {
        accountSID: 'AC00000000000000000000000000000000', authToken: '0123456789abcdef0123456789abcdef',
        from: '+15005550006', templates: [{ usageType: 'Generic', content: 'From JSON text: {{code}}' }],
      };
      const res = await conn.sendMessage({
        to: '+15005550006', usage_type: 'USAGE_TYPE_SIGN_IN', payload: { code: '654321' },
        config_json: JSON.stringify(config),
      });
      assert.match(res.message_id, /^SM[0-9a-f]{32}$/);
      const deadline = Date.now() + 5000;
      let line;
      while (!(line = stderr.split('\n').find((l) => l.includes(res.message_id))) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.ok(line, `the sandbox logged message ${res.message_id}`);
      assert.equal(JSON.parse(line).body, 'From JSON text: 654321');

      const err = await rejection(conn.sendMessage({
        to: '+15005550006', usage_type: 'USAGE_TYPE_SIGN_IN', payload: { code: '654321' },
        config_json: JSON.stringify({ ...config, accountSID: 'AC123' }),
      }));
      assert.equal(err.code, grpc.status.INVALID_ARGUMENT);
      const st = errorInfo(err);
      assert.equal(st.errorInfo.reason, 'INVALID_CONFIG');
      assert.deepEqual(st.badRequest.fieldViolations.map((v) => v.field), ['config_json.accountSID']);
    });

    it("SendMessage carries Logto's link and uiLocales: a link-only invitation in a later preference's language", async () => {
      const config = {
        accountSID: 'AC00000000000000000000000000000000', authToken: '0123456789abcdef0123456789abcdef',
        from: '+15005550006',
        templates: [
          { usageType: 'Generic', content: 'Your code is {{code}}' },
          { usageType: 'OrganizationInvitation', content: 'Join Acme: {{link}}' },
          { usageType: 'OrganizationInvitation', locale: 'fr', content: 'Rejoindre Acme : {{link}}' },
        ],
      };
      const link = 'https://example.com/invite?token=abc123';
      const res = await conn.sendMessage({
        to: '+15005550006', usage_type: 'USAGE_TYPE_ORGANIZATION_INVITATION',
        payload: { link, locale: 'ja', ui_locales: ['ko', 'fr-CA'] }, config_json: JSON.stringify(config),
      });
      assert.match(res.message_id, /^SM[0-9a-f]{32}$/);
      const deadline = Date.now() + 5000;
      let line;
      while (!(line = stderr.split('\n').find((l) => l.includes(res.message_id))) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.ok(line, `the sandbox logged message ${res.message_id}`);
      assert.equal(JSON.parse(line).body, `Rejoindre Acme : ${link}`);

      // A code-only send of the {{link}} template would carry nothing: refused, naming payload.link.
      let err = await rejection(conn.sendMessage({
        to: '+15005550006', usage_type: 'USAGE_TYPE_ORGANIZATION_INVITATION',
        payload: { code: '123456' }, config_json: JSON.stringify(config),
      }));
      assert.equal(err.code, grpc.status.INVALID_ARGUMENT);
      let st = errorInfo(err);
      assert.equal(st.errorInfo.reason, 'INVALID_REQUEST');
      assert.deepEqual(st.badRequest.fieldViolations.map((v) => v.field), ['payload.link']);

      // A link that is not an absolute https URL, and a bad preference, are refused by field.
      err = await rejection(conn.sendMessage({
        to: '+15005550006', usage_type: 'USAGE_TYPE_ORGANIZATION_INVITATION',
        payload: { link: 'http://example.com/invite', ui_locales: ['fr', '{{authToken}}'] }, config_json: JSON.stringify(config),
      }));
      assert.equal(err.code, grpc.status.INVALID_ARGUMENT);
      st = errorInfo(err);
      assert.equal(st.errorInfo.reason, 'INVALID_REQUEST');
      assert.deepEqual(st.badRequest.fieldViolations.map((v) => v.field), ['payload.link', 'payload.ui_locales[1]']);
    });

    it('a Twilio refusal comes back as FAILED_PRECONDITION with ErrorInfo COUNTRY_NOT_PERMITTED', async () => {
      const err = await rejection(conn.sendMessage({
        to: '+15005550003', usage_type: 'USAGE_TYPE_SIGN_IN', payload: { code: '123456' },
      }));
      assert.equal(err.code, grpc.status.FAILED_PRECONDITION);
      assert.equal(err.code, 9);
      const st = errorInfo(err);
      assert.ok(st, 'the error carries grpc-status-details-bin');
      assert.equal(st.code, 9);
      assert.equal(st.message, err.details);
      assert.equal(st.errorInfo.reason, 'COUNTRY_NOT_PERMITTED');
      assert.equal(st.errorInfo.domain, 'sms-connector.dev');
      assert.equal(st.errorInfo.metadata.provider, 'twilio');
      assert.equal(st.errorInfo.metadata.provider_code, '21408');
      assert.match(st.errorInfo.metadata.more_info, /21408/);
    });

    it('a bad request comes back as INVALID_ARGUMENT with BadRequest field violations', async () => {
      const err = await rejection(conn.sendMessage({
        to: '', usage_type: 'USAGE_TYPE_SIGN_IN', payload: { code: '123456' },
      }));
      assert.equal(err.code, grpc.status.INVALID_ARGUMENT);
      const st = errorInfo(err);
      assert.equal(st.errorInfo.domain, 'sms-connector.dev');
      assert.ok(st.errorInfo.reason, 'a reason');
      assert.ok(st.badRequest, 'a BadRequest detail');
      assert.deepEqual(st.badRequest.fieldViolations.map((v) => v.field), ['to']);
      assert.ok(st.badRequest.fieldViolations[0].description);
    });

    it('health: service "plugin" is SERVING', async () => {
      assert.deepEqual(await conn.healthCheck('plugin'), { status: 'SERVING' });
    });

    if (mode.mtls) {
      it('AutoMTLS is enforced: a client without the handshake certificate cannot call', async () => {
        const plain = connect(conn.handshake.target);
        try {
          const err = await rejection(plain.getMetadata({}, { deadlineMs: 2000 }));
          assert.ok([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED].includes(err.code), `${err.code} ${err.details}`);
        } finally {
          plain.close();
        }
      });
    }

    it('GRPCController.Shutdown stops the plugin: exit code 0, no kill needed, nothing left behind', async () => {
      const { pid } = conn;
      const res = await conn.shutdown();
      assert.deepEqual(res, { code: 0, signal: null, killed: false }, `plugin stderr:\n${stderr}`);
      assert.equal(isAlive(pid), false, `process ${pid} is gone`);
      if (conn.handshake.network === 'unix') {
        assert.equal(fs.existsSync(conn.handshake.address), false, 'the unix socket is removed');
      }
    });
  });
}

describe('a plugin that cannot start', () => {
  it('makes spawnConnector fail with the plugin\'s own one-line reason', async () => {
    // A host that speaks only app protocol version 2: the connector refuses before any
    // handshake and exits non-zero.
    await assert.rejects(
      spawnConnector(BIN, { baseEnv: BASE_ENV, env: { SMS_CONNECTOR_SANDBOX: 'true' }, appVersions: [2] }),
      (err) => {
        assert.match(err.message, /exited before its handshake line/);
        assert.match(err.message, /connector exited with code [1-9]/);
        assert.match(err.message, /PLUGIN_PROTOCOL_VERSIONS/);
        return true;
      },
    );
  });
});
