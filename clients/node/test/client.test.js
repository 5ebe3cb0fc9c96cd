'use strict';
// Unit tests of client.js that need no connector binary: handshake parsing, error-detail
// decoding, Struct conversion and the throwaway AutoMTLS certificate.

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const client = require('../client.js');

const { parseHandshake, errorInfo, toStruct, fromStruct, generateClientCert, grpc } = client;

// handshakeCertField encodes a certificate as go-plugin does: base64.RawStdEncoding of the DER.
const handshakeCertField = (pem) => new crypto.X509Certificate(pem).raw.toString('base64').replace(/=+$/, '');

describe('parseHandshake', () => {
  it('parses a unix line without AutoMTLS (go-plugin prints an empty 6th field)', () => {
    const h = parseHandshake('1|1|unix|/tmp/plugin123|grpc|\n');
    assert.equal(h.network, 'unix');
    assert.equal(h.address, '/tmp/plugin123');
    assert.equal(h.target, 'unix:///tmp/plugin123');
    assert.equal(h.protocol, 'grpc');
    assert.equal(h.serverCertPem, null);
    assert.equal(h.multiplex, null);
  });

  it('parses a five-field tcp line', () => {
    const h = parseHandshake('1|1|tcp|127.0.0.1:10001|grpc');
    assert.equal(h.target, '127.0.0.1:10001');
    assert.equal(h.serverCertPem, null);
  });

  it('turns the 6th field (base64 without padding of DER) into PEM, and reads a 7th', () => {
    const { cert } = generateClientCert();
    const field = handshakeCertField(cert);
    assert.doesNotMatch(field, /=/);
    const h = parseHandshake(`1|1|unix|/tmp/p|grpc|${field}|true\r\n`);
    assert.equal(h.serverCertPem, cert);
    assert.match(h.serverCertPem, /^-----BEGIN CERTIFICATE-----\n/);
    assert.equal(h.multiplex, true);
  });

  it('refuses what a host must not connect to', () => {
    const cases = {
      'not a handshake': /not a go-plugin handshake line/,
      '1|1|unix|/tmp/p': /not a go-plugin handshake line/,
      '2|1|unix|/tmp/p|grpc|': /core protocol version "2"/,
      '1|7|unix|/tmp/p|grpc|': /app protocol version "7", host offered 1/,
      '1|1|udp|/tmp/p|grpc|': /unknown network "udp"/,
      '1|1|unix||grpc|': /empty plugin address/,
      '1|1|unix|/tmp/p|netrpc|': /speaks "netrpc"/,
      '1|1|unix|/tmp/p|grpc|not*base64': /not base64/,
      '1|1|unix|/tmp/p|grpc|QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo': /not a DER X.509 certificate/,
    };
    for (const [line, want] of Object.entries(cases)) {
      assert.throws(() => parseHandshake(line), want, line);
    }
  });
});

describe('errorInfo', () => {
  // The google.rpc.Status that the Go server (server.Status) makes for
  //   connector.Error{Reason: RATE_LIMITED, Message: "too many codes for this number",
  //     RetryAfter: 90.25s, Violations: [{to, "rate limited"}]}
  // marshalled by Go's protobuf and base64-encoded: a golden from the other side of the wire.
  const GO_STATUS = 'CAgSHnRvbyBtYW55IGNvZGVzIGZvciB0aGlzIG51bWJlchpNCih0eXBlLmdvb2dsZWFwaXMuY29tL2dvb2dsZS5ycGMuRXJyb3JJbmZvEiEKDFJBVEVfTElNSVRFRBIRc21zLWNvbm5lY3Rvci5kZXYaQQopdHlwZS5nb29nbGVhcGlzLmNvbS9nb29nbGUucnBjLkJhZFJlcXVlc3QSFAoSCgJ0bxIMcmF0ZSBsaW1pdGVkGjUKKHR5cGUuZ29vZ2xlYXBpcy5jb20vZ29vZ2xlLnJwYy5SZXRyeUluZm8SCQoHCFoQgOWadw==';

  it('decodes ErrorInfo, BadRequest and RetryInfo from grpc-status-details-bin', () => {
    const md = new grpc.Metadata();
    md.set('grpc-status-details-bin', Buffer.from(GO_STATUS, 'base64'));
    const err = Object.assign(new Error('8 RESOURCE_EXHAUSTED: too many codes for this number'), { code: 8, metadata: md });
    assert.deepEqual(errorInfo(err), {
      code: 8,
      message: 'too many codes for this number',
      errorInfo: { reason: 'RATE_LIMITED', domain: 'sms-connector.dev', metadata: {} },
      badRequest: { fieldViolations: [{ field: 'to', description: 'rate limited' }] },
      retryInfo: { retryDelayMs: 90250 },
      other: [],
    });
  });

  it('returns null for an error without details', () => {
    assert.equal(errorInfo(new Error('boom')), null);
    assert.equal(errorInfo(Object.assign(new Error('x'), { metadata: new grpc.Metadata() })), null);
    assert.equal(errorInfo(undefined), null);
  });
});

describe('toStruct / fromStruct', () => {
  it('round-trips JSON through google.protobuf.Struct', () => {
    const obj = { a: 'x', n: 1.5, b: true, z: null, list: [1, 'two', { three: 3 }], nested: { deep: { k: 'v' } } };
    const s = toStruct(obj);
    assert.deepEqual(s.fields.a, { stringValue: 'x' });
    // proto-loader's output names the set oneof member in `kind`; emulate it for fromStruct.
    const withKind = (v) => {
      const [kind] = Object.keys(v);
      const inner = v[kind];
      if (kind === 'structValue') return { kind, structValue: { fields: Object.fromEntries(Object.entries(inner.fields).map(([k, x]) => [k, withKind(x)])) } };
      if (kind === 'listValue') return { kind, listValue: { values: inner.values.map(withKind) } };
      return { kind, [kind]: inner };
    };
    assert.deepEqual(fromStruct(withKind({ structValue: s }).structValue), obj);
  });
});

describe('generateClientCert', () => {
  it('makes a valid self-signed P-256 certificate go-plugin accepts as PLUGIN_CLIENT_CERT', () => {
    const { cert, key } = generateClientCert();
    const x = new crypto.X509Certificate(cert);
    assert.equal(x.subject, 'CN=localhost');
    assert.equal(x.subjectAltName, 'DNS:localhost');
    assert.equal(x.ca, true);
    assert.ok(x.checkIssued(x), 'self-issued');
    assert.ok(x.verify(x.publicKey), 'self-signed');
    assert.deepEqual(x.keyUsage, ['1.3.6.1.5.5.7.3.2', '1.3.6.1.5.5.7.3.1']);
    assert.ok(x.checkPrivateKey(crypto.createPrivateKey(key)), 'key matches');
    assert.ok(new Date(x.validFrom) <= new Date() && new Date() < new Date(x.validTo));
    assert.notEqual(generateClientCert().cert, cert, 'a fresh certificate every time');
  });
});

describe('handshake constants', () => {
  it('match the Go package smsplugin', () => {
    const fs = require('node:fs');
    const path = require('node:path');
    const src = fs.readFileSync(path.resolve(__dirname, '..', '..', '..', 'smsplugin', 'smsplugin.go'), 'utf8');
    const goConst = (name) => {
      const m = src.match(new RegExp(`\\b${name}\\s*=\\s*("([^"]*)"|(\\d+))`));
      assert.ok(m, `smsplugin.go declares ${name}`);
      return m[2] ?? Number(m[3]);
    };
    assert.equal(client.MAGIC_COOKIE_KEY, goConst('MagicCookieKey'));
    assert.equal(client.MAGIC_COOKIE_VALUE, goConst('MagicCookieValue'));
    assert.equal(client.APP_PROTOCOL_VERSION, goConst('ProtocolVersion'));
  });
});
