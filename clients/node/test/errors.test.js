'use strict';
// Error replies reach a grpc-js client at its default options: grpc-js, like gRPC's C core and
// grpc-java, accepts at most 8 KiB of response metadata, and a larger error (status message +
// grpc-status-details-bin) makes the server reset the stream, so the caller would see INTERNAL
// and no ErrorInfo. The connector bounds every error; these are the largest answers a config
// can provoke.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawnConnector, errorInfo, toStruct, grpc } = require('../client.js');
const { BIN, BASE_ENV, rejection } = require('./helpers.js');



// The sandbox emulator's fixed account (twiliotest.SandboxAccountSID / SandboxAuthToken).
const SANDBOX = {
  accountSID: 'AC00000000000000000000000000000000', authToken: '0123456789abcdef0123456789abcdef', from: '+15005550006',
};

const USAGES = ['Register', 'SignIn', 'ForgotPassword', 'Generic', 'OrganizationInvitation',
  'UserPermissionValidation', 'BindNewIdentifier', 'MfaVerification', 'BindMfa'];
const LOCALES = ['en', 'fr', 'de', 'es', 'ja', 'pt-BR'];

describe('error replies fit grpc-js default metadata limits', () => {
  let conn;

  before(async () => {
    conn = await spawnConnector(BIN, { baseEnv: BASE_ENV, env: { SMS_CONNECTOR_SANDBOX: 'true' } });
    await conn.waitForReady(10_000);
  });

  after(async () => {
    if (conn) await conn.shutdown();
  });

  const send = (config) => conn.sendMessage({
    to: '+15005550006', usage_type: 'USAGE_TYPE_SIGN_IN', payload: { code: '123456' }, config: toStruct(config),
  });

  it('54 templates with neither {{code}} nor {{link}}: INVALID_CONFIG with the first problems and how many more', async () => {
    const templates = USAGES.flatMap((usageType) => LOCALES.map((locale) => ({ usageType, locale, content: `Welcome (${locale})` })));
    assert.equal(templates.length, 54);
    // ValidateConfig lists every problem: each template's content, and each usage type left
    // without a template to fall back to (every template carries a locale).
    const res = await conn.validateConfig({ config: toStruct({ ...SANDBOX, templates }) });
    assert.equal(res.violations.filter((v) => /^templates\[\d+\]\.content$/.test(v.field)).length, 54);
    assert.equal(res.violations.filter((v) => v.field === 'templates').length, USAGES.length);
    const total = res.violations.length;

    const err = await rejection(send({ ...SANDBOX, templates }));
    assert.equal(err.code, grpc.status.INVALID_ARGUMENT, `${err.code} ${err.details}`);
    const st = errorInfo(err);
    assert.ok(st, 'the error carries grpc-status-details-bin');
    assert.equal(st.errorInfo.reason, 'INVALID_CONFIG');
    assert.equal(st.errorInfo.domain, 'sms-connector.dev');
    const listed = st.badRequest.fieldViolations.length;
    assert.ok(listed > 0 && listed < total, `${listed} violations listed`);
    assert.equal(st.badRequest.fieldViolations[0].field, 'config.templates[0].content');
    assert.match(err.details, new RegExp(`has ${total} problems; .* and ${total - listed} more; ValidateConfig lists every problem`));
  });

  it('an unknown key of 5,000 characters: INVALID_CONFIG with ErrorInfo and BadRequest', async () => {
    const err = await rejection(send({
      ...SANDBOX, templates: [{ usageType: 'Generic', content: 'Code {{code}}' }], ['k'.repeat(5000)]: 'x',
    }));
    assert.equal(err.code, grpc.status.INVALID_ARGUMENT, `${err.code} ${err.details}`);
    const st = errorInfo(err);
    assert.ok(st, 'the error carries grpc-status-details-bin');
    assert.equal(st.errorInfo.reason, 'INVALID_CONFIG');
    assert.equal(st.badRequest.fieldViolations.length, 1);
    assert.match(st.badRequest.fieldViolations[0].field, /^config\.kkk+…$/);
    assert.ok(Buffer.byteLength(err.details) <= 512, `a message of ${Buffer.byteLength(err.details)} bytes`);
  });
});
