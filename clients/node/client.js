'use strict';
// A Node.js host for sms-connector (or any connector.sms.v1 connector binary).
//
// spawnConnector() starts the connector as a child process with HashiCorp go-plugin's
// handshake, reads the handshake line from its stdout, connects with @grpc/grpc-js and returns a
// client; shutdown() stops it the way go-plugin's own host does. errorInfo() decodes the
// google.rpc error details (ErrorInfo, BadRequest, RetryInfo) of a failed call.
//
// Dependencies: @grpc/grpc-js, @grpc/proto-loader and protobufjs (which proto-loader brings
// anyway). The only file it reads is the contract, connector/sms/v1/connector.proto (by default
// from this repository's proto/ directory: pass protoDir to use a copy). The handful of other
// messages it needs (grpc.health.v1, go-plugin's controller, google.rpc.Status and its details)
// are declared below, by field number, with protobufjs's reflection API. Copy this file freely.

const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const protobuf = require('protobufjs');

// The magic cookie: the connector refuses to start in plugin mode without it. The same values
// are exported in Go (package smsplugin: MagicCookieKey, MagicCookieValue, Handshake()) and
// written in docs/plugin.md. Not a secret: it only tells a binary it was started by a host.
const MAGIC_COOKIE_KEY = 'SMS_CONNECTOR_PLUGIN';
const MAGIC_COOKIE_VALUE = 'LcKKOnQsDcapWO4JN6CIqkdKiHuxjvyG';
// go-plugin's core protocol version (first handshake field) and our app protocol version
// (second field; offered in PLUGIN_PROTOCOL_VERSIONS).
const CORE_PROTOCOL_VERSION = 1;
const APP_PROTOCOL_VERSION = 1;

// How long the host waits for the handshake line (go-plugin's default StartTimeout) and for the
// process to exit after GRPCController.Shutdown before killing it (go-plugin's Kill).
const DEFAULT_START_TIMEOUT_MS = 60_000;
const DEFAULT_SHUTDOWN_GRACE_MS = 2_000;

const DEFAULT_PROTO_DIR = path.resolve(__dirname, '..', '..', 'proto');
const CONNECTOR_PROTO = 'connector/sms/v1/connector.proto';

// Options for proto-loader: field names as in the .proto (snake_case), enums as their names
// ("USAGE_TYPE_SIGN_IN"), int64 as strings, default values present, oneof names set (Value.kind).
const LOADER_OPTIONS = { keepCase: true, enums: String, longs: String, defaults: true, oneofs: true };

// The non-contract services a host calls: grpc.health.v1.Health (service "plugin") and
// go-plugin's plugin.GRPCController (Shutdown). Same names and field numbers as their owners'
// .proto files; only what a host needs.
const HOST_SERVICES = {
  nested: {
    grpc: { nested: { health: { nested: { v1: { nested: {
      HealthCheckRequest: { fields: { service: { type: 'string', id: 1 } } },
      HealthCheckResponse: {
        fields: { status: { type: 'ServingStatus', id: 1 } },
        nested: { ServingStatus: { values: { UNKNOWN: 0, SERVING: 1, NOT_SERVING: 2, SERVICE_UNKNOWN: 3 } } },
      },
      Health: { methods: { Check: { requestType: 'HealthCheckRequest', responseType: 'HealthCheckResponse' } } },
    } } } } } },
    plugin: { nested: {
      Empty: { fields: {} },
      GRPCController: { methods: { Shutdown: { requestType: 'Empty', responseType: 'Empty' } } },
    } },
  },
};

// google.rpc.Status and the error details the connector sends (AIP-193), declared by field
// number: Status{code=1, message=2, details=3 (Any)}, ErrorInfo{reason=1, domain=2,
// metadata=3}, BadRequest{field_violations=1 {field=1, description=2}}, RetryInfo{retry_delay=1
// (Duration)}.
const rpcRoot = protobuf.Root.fromJSON({
  nested: {
    google: { nested: {
      protobuf: { nested: {
        Any: { fields: { type_url: { type: 'string', id: 1 }, value: { type: 'bytes', id: 2 } } },
        Duration: { fields: { seconds: { type: 'int64', id: 1 }, nanos: { type: 'int32', id: 2 } } },
      } },
      rpc: { nested: {
        Status: { fields: {
          code: { type: 'int32', id: 1 },
          message: { type: 'string', id: 2 },
          details: { rule: 'repeated', type: 'google.protobuf.Any', id: 3 },
        } },
        ErrorInfo: { fields: {
          reason: { type: 'string', id: 1 },
          domain: { type: 'string', id: 2 },
          metadata: { keyType: 'string', type: 'string', id: 3 },
        } },
        BadRequest: {
          fields: { field_violations: { rule: 'repeated', type: 'FieldViolation', id: 1 } },
          nested: { FieldViolation: { fields: {
            field: { type: 'string', id: 1 },
            description: { type: 'string', id: 2 },
          } } },
        },
        RetryInfo: { fields: { retry_delay: { type: 'google.protobuf.Duration', id: 1 } } },
      } },
    } },
  },
});
const StatusType = rpcRoot.lookupType('google.rpc.Status');
const DETAIL_TYPES = {
  'google.rpc.ErrorInfo': rpcRoot.lookupType('google.rpc.ErrorInfo'),
  'google.rpc.BadRequest': rpcRoot.lookupType('google.rpc.BadRequest'),
  'google.rpc.RetryInfo': rpcRoot.lookupType('google.rpc.RetryInfo'),
};
const TO_OBJECT = { longs: Number, defaults: true, arrays: true, objects: true };

/**
 * Parses go-plugin's handshake line, `CORE|APP|NETWORK|ADDR|PROTOCOL[|SERVER-CERT[|MUX]]`,
 * e.g. "1|1|unix|/tmp/plugin123|grpc". Without AutoMTLS the 6th field is absent (sms-connector)
 * or empty (plugins built on go-plugin's plugin.Serve end the line with "grpc|"); with AutoMTLS
 * it is the plugin's certificate: standard base64 WITHOUT padding of the DER bytes (RFC 4648
 * section 3.2; Go's base64.RawStdEncoding). A 7th field ("true") appears only when the host set
 * PLUGIN_MULTIPLEX_GRPC, which this host never does.
 *
 * @param {string} line the first line of the plugin's stdout
 * @param {{appVersions?: number[]}} [opts] the app protocol versions the host offered
 * @returns {{core: number, app: number, network: 'unix'|'tcp', address: string,
 *   protocol: string, serverCertPem: string|null, multiplex: boolean|null, target: string}}
 */
function parseHandshake(line, { appVersions = [APP_PROTOCOL_VERSION] } = {}) {
  const text = String(line).trim();
  const parts = text.split('|');
  if (parts.length < 5) {
    throw new Error(`not a go-plugin handshake line (want CORE|APP|NETWORK|ADDR|grpc[|CERT]): ${JSON.stringify(text)}`);
  }
  const [coreText, appText, network, address, protocol, certField = '', muxField] = parts;
  const core = Number(coreText);
  if (!Number.isInteger(core) || core !== CORE_PROTOCOL_VERSION) {
    throw new Error(`incompatible core protocol version ${JSON.stringify(coreText)} (want ${CORE_PROTOCOL_VERSION})`);
  }
  const app = Number(appText);
  if (!Number.isInteger(app) || !appVersions.includes(app)) {
    throw new Error(`plugin chose app protocol version ${JSON.stringify(appText)}, host offered ${appVersions.join(',')}`);
  }
  if (network !== 'unix' && network !== 'tcp') {
    throw new Error(`unknown network ${JSON.stringify(network)} (want unix or tcp)`);
  }
  if (address === '') {
    throw new Error('empty plugin address');
  }
  if (protocol !== 'grpc') {
    throw new Error(`plugin speaks ${JSON.stringify(protocol)}, this host only grpc`);
  }
  const serverCertPem = certField === '' ? null : certFieldToPem(certField);
  let target;
  if (network === 'unix') {
    target = address.startsWith('/') ? `unix://${address}` : `unix:${address}`;
  } else {
    target = address; // host:port (go-plugin binds 127.0.0.1)
  }
  return {
    core, app, network, address, protocol, serverCertPem,
    multiplex: muxField === undefined ? null : muxField === 'true',
    target,
  };
}

/**
 * Turns the handshake's certificate field (base64 without padding of DER) into PEM. Padded
 * base64 is accepted too. Throws when the bytes are not an X.509 certificate.
 */
function certFieldToPem(field) {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(field)) {
    throw new Error('handshake certificate field is not base64');
  }
  const der = Buffer.from(field, 'base64'); // Node decodes with or without padding
  let cert;
  try {
    cert = new crypto.X509Certificate(der);
  } catch (e) {
    throw new Error(`handshake certificate field is not a DER X.509 certificate: ${e.message}`);
  }
  return cert.toString(); // PEM, "-----BEGIN CERTIFICATE-----\n..."
}

/**
 * Loads the contract and the host services and returns the grpc-js constructors.
 * @param {string} [protoDir] directory holding connector/sms/v1/connector.proto
 */
function loadServices(protoDir = DEFAULT_PROTO_DIR) {
  const contract = grpc.loadPackageDefinition(
    protoLoader.loadSync(CONNECTOR_PROTO, { ...LOADER_OPTIONS, includeDirs: [protoDir] }));
  const host = grpc.loadPackageDefinition(protoLoader.fromJSON(HOST_SERVICES, LOADER_OPTIONS));
  return {
    SmsConnector: contract.connector.sms.v1.SmsConnector,
    Health: host.grpc.health.v1.Health,
    GRPCController: host.plugin.GRPCController,
  };
}

/** Calls a unary method of a grpc-js client and returns a promise of the response. */
function unary(client, method, request, { deadlineMs = 10_000, metadata = new grpc.Metadata() } = {}) {
  return new Promise((resolve, reject) => {
    client[method](request, metadata, { deadline: Date.now() + deadlineMs }, (err, res) => {
      if (err) reject(err); else resolve(res);
    });
  });
}

/**
 * Connects to a served connector (a handshake's target, or a standalone service's host:port).
 * @param {string} target "unix:///path" or "host:port"
 * @param {{serverCertPem?: string|null, clientCert?: {cert: string, key: string}, protoDir?: string}} [opts]
 *   With serverCertPem (AutoMTLS) the connection is TLS: the plugin's certificate is the only
 *   trusted root, the server name is "localhost" (the name in go-plugin's certificate) and
 *   clientCert is presented. Without it, plaintext.
 */
function connect(target, { serverCertPem = null, clientCert, protoDir } = {}) {
  const services = loadServices(protoDir);
  let creds;
  const channelOptions = {};
  if (serverCertPem) {
    if (!clientCert) throw new Error('the plugin sent a certificate (AutoMTLS) but the host has no client certificate');
    creds = grpc.credentials.createSsl(Buffer.from(serverCertPem), Buffer.from(clientCert.key), Buffer.from(clientCert.cert));
    channelOptions['grpc.ssl_target_name_override'] = 'localhost';
    channelOptions['grpc.default_authority'] = 'localhost';
  } else {
    creds = grpc.credentials.createInsecure();
  }
  // One channel (one connection to the plugin) shared by the three clients.
  const channel = new grpc.Channel(target, creds, channelOptions);
  const sms = new services.SmsConnector(target, creds, { channelOverride: channel });
  const health = new services.Health(target, creds, { channelOverride: channel });
  const controller = new services.GRPCController(target, creds, { channelOverride: channel });
  return {
    target,
    raw: { sms, health, controller },
    /** connector.sms.v1.SmsConnector/SendMessage */
    sendMessage: (req, o) => unary(sms, 'SendMessage', req, o),
    /** connector.sms.v1.SmsConnector/ValidateConfig */
    validateConfig: (req, o) => unary(sms, 'ValidateConfig', req, o),
    /** connector.sms.v1.SmsConnector/GetMetadata */
    getMetadata: (req = {}, o) => unary(sms, 'GetMetadata', req, o),
    /** connector.sms.v1.SmsConnector/GetMessageStatus */
    getMessageStatus: (req, o) => unary(sms, 'GetMessageStatus', req, o),
    /** grpc.health.v1.Health/Check; the plugin's own health is service "plugin" */
    healthCheck: (service = 'plugin', o) => unary(health, 'Check', { service }, o),
    /** Resolves once the channel is connected (rejects after deadlineMs). */
    waitForReady: (deadlineMs = 10_000) => new Promise((resolve, reject) => {
      sms.waitForReady(Date.now() + deadlineMs, (err) => (err ? reject(err) : resolve()));
    }),
    close() {
      channel.close();
    },
  };
}

/**
 * Starts a connector binary in plugin mode and connects to it.
 *
 * The child gets opts.baseEnv (default: the host's environment, as go-plugin's host does), then
 * opts.env, the magic cookie, PLUGIN_PROTOCOL_VERSIONS
 * (opts.appVersions, default [APP_PROTOCOL_VERSION]) and, when given, PLUGIN_MIN_PORT and
 * PLUGIN_MAX_PORT and PLUGIN_CLIENT_CERT (AutoMTLS: pass clientCert = {cert, key} in PEM, e.g.
 * from generateClientCert(); the plugin must then answer with its certificate, and the
 * connection is mutual TLS; without clientCert it is plaintext). The first line of its
 * stdout is the handshake; the rest of stdout and all of stderr are drained (a full pipe would
 * block the child) and kept, the last 64 KiB of each, for error messages.
 *
 * @param {string} binPath the connector binary
 * @param {{baseEnv?: Record<string,string>, env?: Record<string,string>, args?: string[], clientCert?: {cert: string, key: string},
 *   minPort?: number, maxPort?: number, appVersions?: number[], startTimeoutMs?: number, protoDir?: string,
 *   onStderr?: (chunk: Buffer) => void}} [opts]
 * @returns {Promise<object>} the connect() client plus process, pid, handshake, output(),
 *   exited (a promise of {code, signal}) and shutdown()
 */
async function spawnConnector(binPath, opts = {}) {
  const {
    baseEnv = process.env, env = {}, args = [], clientCert, minPort, maxPort, appVersions = [APP_PROTOCOL_VERSION],
    startTimeoutMs = DEFAULT_START_TIMEOUT_MS, protoDir, onStderr,
  } = opts;
  const childEnv = {
    ...baseEnv,
    ...env,
    [MAGIC_COOKIE_KEY]: MAGIC_COOKIE_VALUE,
    PLUGIN_PROTOCOL_VERSIONS: appVersions.join(','),
  };
  if (minPort !== undefined) childEnv.PLUGIN_MIN_PORT = String(minPort);
  if (maxPort !== undefined) childEnv.PLUGIN_MAX_PORT = String(maxPort);
  if (clientCert) childEnv.PLUGIN_CLIENT_CERT = clientCert.cert;
  else delete childEnv.PLUGIN_CLIENT_CERT;

  const child = spawn(binPath, args, { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { stdout: '', stderr: '' };
  child.on('error', (e) => { out.error = e; }); // kept for output(); 'error' must have a listener
  const keep = (k, chunk) => { out[k] = (out[k] + chunk.toString('utf8')).slice(-65536); };
  child.stderr.on('data', (chunk) => { keep('stderr', chunk); if (onStderr) onStderr(chunk); });
  // exited: the process is gone. closed: and its stdout/stderr are read to the end. A binary
  // that cannot be started at all (ENOENT, EACCES) emits 'error' instead of 'exit'.
  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', (error) => { if (child.pid === undefined) resolve({ code: null, signal: null, error }); });
  });
  const closed = new Promise((resolve) => { child.once('close', resolve); child.once('error', resolve); });

  let handshake;
  try {
    const line = await firstLine(child, startTimeoutMs, out);
    handshake = parseHandshake(line, { appVersions });
    if (clientCert && !handshake.serverCertPem) {
      // Never fall back to plaintext when the host asked for mutual TLS.
      throw new Error('the host set PLUGIN_CLIENT_CERT but the plugin answered without a certificate (no AutoMTLS support)');
    }
  } catch (err) {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    const { code, signal, error } = await exited;
    // Its last words explain most failures (wrong cookie, version, port range): wait for them.
    await Promise.race([closed, new Promise((r) => { setTimeout(r, 1000).unref(); })]);
    const stderr = out.stderr.trim();
    const how = error ? `could not be started: ${error.message}` : `exited with ${signal ?? `code ${code}`}`;
    err.message += ` (connector ${how}${stderr ? `; stderr: ${stderr}` : ''})`;
    throw err;
  }
  child.stdout.on('data', (chunk) => keep('stdout', chunk));

  let client;
  try {
    client = connect(handshake.target, { serverCertPem: handshake.serverCertPem, clientCert, protoDir });
  } catch (err) {
    child.kill('SIGKILL');
    await exited;
    throw err;
  }
  const conn = {
    ...client,
    process: child,
    pid: child.pid,
    handshake,
    exited,
    /** What the child wrote after the handshake line, and to stderr (the last 64 KiB each). */
    output: () => ({ ...out }),
    /**
     * Stops the connector as go-plugin's host does: plugin.GRPCController/Shutdown (bounded by
     * graceMs; a failure is not an error: a plugin may stop its server before the answer is
     * out), close the connection, wait up to graceMs for the process to exit, then SIGKILL.
     * Calling it again returns the same status.
     * @returns {Promise<{code: number|null, signal: string|null, killed: boolean}>}
     */
    async shutdown({ graceMs = DEFAULT_SHUTDOWN_GRACE_MS } = {}) {
      if (child.exitCode === null && child.signalCode === null) {
        await unary(client.raw.controller, 'Shutdown', {}, { deadlineMs: graceMs }).catch(() => {});
      }
      client.close();
      let timer;
      const timedOut = new Promise((resolve) => { timer = setTimeout(() => resolve(null), graceMs); });
      let status = await Promise.race([exited, timedOut]);
      clearTimeout(timer);
      let killed = false;
      if (status === null) {
        killed = true;
        child.kill('SIGKILL');
        status = await exited;
      }
      return { ...status, killed };
    },
  };
  return conn;
}

/** Resolves with the first line of the child's stdout; rejects on exit or timeout first. */
function firstLine(child, timeoutMs, out) {
  return new Promise((resolve, reject) => {
    let buf = '';
    const finish = (err, line) => {
      clearTimeout(timer);
      child.stdout.off('data', onData);
      child.off('exit', onExit);
      child.off('error', onError);
      if (err) reject(err); else resolve(line);
    };
    const onData = (chunk) => {
      buf += chunk.toString('utf8');
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        out.stdout = buf.slice(nl + 1);
        finish(null, buf.slice(0, nl));
      }
    };
    const onExit = () => finish(new Error(`connector exited before its handshake line${buf ? ` (stdout: ${JSON.stringify(buf)})` : ''}`));
    const onError = () => finish(new Error('connector did not start'));
    const timer = setTimeout(() => finish(new Error(`no handshake line within ${timeoutMs} ms`)), timeoutMs);
    child.stdout.on('data', onData);
    child.once('exit', onExit);
    child.once('error', onError);
  });
}

/**
 * Decodes the google.rpc.Status a failed call carries in its `grpc-status-details-bin`
 * trailer (binary protobuf; grpc-js has already base64-decoded it) and the details the
 * connector sends. Returns null when the error has no such trailer.
 * @returns {null | {code: number, message: string,
 *   errorInfo: {reason: string, domain: string, metadata: Record<string,string>} | null,
 *   badRequest: {fieldViolations: {field: string, description: string}[]} | null,
 *   retryInfo: {retryDelayMs: number} | null,
 *   other: {typeUrl: string, value: Buffer}[]}}
 */
function errorInfo(err) {
  const raw = err && err.metadata && typeof err.metadata.get === 'function'
    ? err.metadata.get('grpc-status-details-bin')[0] : undefined;
  if (!raw) return null;
  const st = StatusType.toObject(StatusType.decode(Buffer.from(raw)), TO_OBJECT);
  const result = { code: st.code, message: st.message, errorInfo: null, badRequest: null, retryInfo: null, other: [] };
  for (const any of st.details) {
    const name = any.type_url.slice(any.type_url.lastIndexOf('/') + 1);
    const type = DETAIL_TYPES[name];
    if (!type) { result.other.push({ typeUrl: any.type_url, value: Buffer.from(any.value) }); continue; }
    const d = type.toObject(type.decode(any.value), TO_OBJECT);
    if (name === 'google.rpc.ErrorInfo') {
      result.errorInfo = { reason: d.reason, domain: d.domain, metadata: d.metadata };
    } else if (name === 'google.rpc.BadRequest') {
      result.badRequest = { fieldViolations: d.field_violations.map((v) => ({ field: v.field, description: v.description })) };
    } else {
      const delay = d.retry_delay || { seconds: 0, nanos: 0 };
      result.retryInfo = { retryDelayMs: Number(delay.seconds) * 1000 + Math.round(delay.nanos / 1e6) };
    }
  }
  return result;
}

/** Converts a plain JSON value to a google.protobuf.Value as proto-loader takes it. */
function toValue(v) {
  if (v === null || v === undefined) return { nullValue: 'NULL_VALUE' };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(toValue) } };
  if (typeof v === 'object') return { structValue: toStruct(v) };
  throw new TypeError(`cannot convert ${typeof v} to google.protobuf.Value`);
}

/** Converts a plain JSON object to a google.protobuf.Struct (request `config`, `variables`). */
function toStruct(obj) {
  const fields = {};
  for (const [k, v] of Object.entries(obj)) fields[k] = toValue(v);
  return { fields };
}

/** Converts a google.protobuf.Value (as proto-loader returns it, oneofs: true) to plain JSON. */
function fromValue(v) {
  switch (v && v.kind) {
    case 'nullValue': return null;
    case 'numberValue': return v.numberValue;
    case 'stringValue': return v.stringValue;
    case 'boolValue': return v.boolValue;
    case 'structValue': return fromStruct(v.structValue);
    case 'listValue': return (v.listValue.values || []).map(fromValue);
    default: return undefined;
  }
}

/** Converts a google.protobuf.Struct (e.g. GetMetadata's config_schema) to a plain object. */
function fromStruct(s) {
  if (!s) return null;
  const obj = {};
  for (const [k, v] of Object.entries(s.fields || {})) obj[k] = fromValue(v);
  return obj;
}

// ---- AutoMTLS: a throwaway self-signed client certificate, with node:crypto only ----------
//
// Node 20 can make keys and check certificates but not write one, so this DER-encodes a small
// X.509 v3 certificate by hand: ECDSA P-256 / SHA-256, subject CN=localhost, SAN DNS:localhost,
// CA:true, key usage digitalSignature+keyCertSign, extended key usage clientAuth+serverAuth,
// valid from 30 s ago for 24 h. That is the shape of the certificate go-plugin's Go host makes.

function derLength(n) {
  if (n < 0x80) return Buffer.from([n]);
  const bytes = [];
  for (let x = n; x > 0; x >>= 8) bytes.unshift(x & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}
function der(tag, ...contents) {
  const body = Buffer.concat(contents);
  return Buffer.concat([Buffer.from([tag]), derLength(body.length), body]);
}
const derSeq = (...c) => der(0x30, ...c);
function derOid(oid) {
  const [a, b, ...rest] = oid.split('.').map(Number);
  const bytes = [40 * a + b];
  for (const n of rest) {
    const enc = [n & 0x7f];
    for (let x = Math.floor(n / 128); x > 0; x = Math.floor(x / 128)) enc.unshift(0x80 | (x & 0x7f));
    bytes.push(...enc);
  }
  return der(0x06, Buffer.from(bytes));
}
function derUtcTime(date) {
  const s = date.toISOString(); // 2026-01-02T03:04:05.678Z -> 260102030405Z
  return der(0x17, Buffer.from(`${s.slice(2, 4)}${s.slice(5, 7)}${s.slice(8, 10)}${s.slice(11, 13)}${s.slice(14, 16)}${s.slice(17, 19)}Z`, 'ascii'));
}
function derExtension(oid, critical, value) {
  return derSeq(derOid(oid), ...(critical ? [der(0x01, Buffer.from([0xff]))] : []), der(0x04, value));
}

/**
 * Makes a throwaway self-signed client certificate for AutoMTLS.
 * @returns {{cert: string, key: string}} PEM certificate and PKCS#8 PEM private key
 */
function generateClientCert({ commonName = 'localhost', validForMs = 24 * 3600 * 1000 } = {}) {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const serial = crypto.randomBytes(16);
  serial[0] &= 0x7f; // positive
  serial[0] |= 0x01; // and minimal (no leading zero byte)
  const ecdsaWithSha256 = derSeq(derOid('1.2.840.10045.4.3.2'));
  const name = derSeq(der(0x31, derSeq(derOid('2.5.4.3'), der(0x0c, Buffer.from(commonName, 'utf8')))));
  const now = Date.now();
  const tbs = derSeq(
    der(0xa0, der(0x02, Buffer.from([2]))), // version v3
    der(0x02, serial),
    ecdsaWithSha256,
    name, // issuer
    derSeq(derUtcTime(new Date(now - 30_000)), derUtcTime(new Date(now + validForMs))),
    name, // subject
    publicKey.export({ type: 'spki', format: 'der' }),
    der(0xa3, derSeq(
      derExtension('2.5.29.15', true, der(0x03, Buffer.from([0x02, 0x84]))), // keyUsage: digitalSignature, keyCertSign
      derExtension('2.5.29.19', true, derSeq(der(0x01, Buffer.from([0xff])))), // basicConstraints: CA
      derExtension('2.5.29.37', false, derSeq(derOid('1.3.6.1.5.5.7.3.2'), derOid('1.3.6.1.5.5.7.3.1'))), // clientAuth, serverAuth
      derExtension('2.5.29.17', false, derSeq(der(0x82, Buffer.from(commonName, 'ascii')))), // SAN dNSName
    )),
  );
  const signature = crypto.sign('sha256', tbs, privateKey); // DER ECDSA-Sig-Value
  const certDer = derSeq(tbs, ecdsaWithSha256, der(0x03, Buffer.from([0]), signature));
  return {
    cert: new crypto.X509Certificate(certDer).toString(),
    key: privateKey.export({ type: 'pkcs8', format: 'pem' }),
  };
}

module.exports = {
  MAGIC_COOKIE_KEY,
  MAGIC_COOKIE_VALUE,
  CORE_PROTOCOL_VERSION,
  APP_PROTOCOL_VERSION,
  spawnConnector,
  connect,
  parseHandshake,
  errorInfo,
  toStruct,
  fromStruct,
  generateClientCert,
  grpc,
};
