'use strict';
// A Node.js host reads a message's delivery status: bin/sms-connector in plugin mode, in
// sandbox mode (the built-in Twilio emulator), sends a message and asks GetMessageStatus for
// it, and for an id nobody sent and a request without an id.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawnConnector, errorInfo, grpc } = require('../client.js');
const { BIN, BASE_ENV, rejection } = require('./helpers.js');



describe('GetMessageStatus from a Node.js host', () => {
  let conn;

  before(async () => {
    conn = await spawnConnector(BIN, { baseEnv: BASE_ENV, env: { SMS_CONNECTOR_SANDBOX: 'true' } });
    await conn.waitForReady(10_000);
  });

  after(async () => {
    if (conn) await conn.shutdown();
  });

  it('reads the status of a message it sent: queued at the sandbox emulator', async () => {
    const sent = await conn.sendMessage({
      to: '+15005550006', usage_type: 'USAGE_TYPE_SIGN_IN', payload: { code: '123456' },
    });
    const st = await conn.getMessageStatus({ message_id: sent.message_id });
    assert.equal(st.message_id, sent.message_id);
    assert.equal(st.state, 'DELIVERY_STATE_QUEUED');
    assert.equal(st.vendor_status, sent.status);
    assert.equal(st.error_reason, 'ERROR_REASON_UNSPECIFIED');
    assert.equal(st.vendor_code, '');
    assert.ok(st.update_time && Number(st.update_time.seconds) > 0, `update_time is set: ${JSON.stringify(st.update_time)}`);
  });

  it('an id nobody sent is NOT_FOUND with reason MESSAGE_NOT_FOUND', async () => {
    const err = await rejection(conn.getMessageStatus({ message_id: 'SM00000000000000000000000000000000' }));
    assert.equal(err.code, grpc.status.NOT_FOUND);
    const d = errorInfo(err);
    assert.equal(d.errorInfo.reason, 'MESSAGE_NOT_FOUND');
    assert.equal(d.errorInfo.domain, 'sms-connector.dev');
  });

  it('a request without message_id is INVALID_ARGUMENT naming message_id', async () => {
    const err = await rejection(conn.getMessageStatus({}));
    assert.equal(err.code, grpc.status.INVALID_ARGUMENT);
    const d = errorInfo(err);
    assert.equal(d.errorInfo.reason, 'INVALID_REQUEST');
    assert.deepEqual(d.badRequest.fieldViolations.map((v) => v.field), ['message_id']);
  });
});
