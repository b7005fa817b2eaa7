'use strict';
/**
 * A TPM device built only from the unmodified SDK packages (`azure-iot-security-tpm` over tss.js,
 * `azure-iot-provisioning-device` Http, Amqp or AmqpWs, `azure-iot-device` Mqtt), in its own process:
 * NODE_EXTRA_CA_CERTS is read at start (docs/device-wire.md §7) and the TPM Amqp transport takes no CA,
 * and a bad activation blob throws an uncaught TypeError in the SDK (docs/service-rest.md §10.4),
 * which must fail this process, not the test runner.
 * argv[2]: JSON {mode: 'keys'|'register', tpmPort, transport?: 'http'|'amqp'|'amqpws', host?, port?, idScope?, registrationId?,
 *   timeoutMs?, tpmWebSocketAgent?}
 * AmqpWs hard-codes :443 and takes our port from its `webSocketAgent` option; the SDK (1.9.1) hands that agent to
 * the AMQP base only on its SAS/X.509 path (`connectingX509OrSymmetricKey`), never on the TPM one (`_getAuthChallenge`
 * builds {uri, saslMechanismName, saslMechanism, userAgentString}, no sslOptions). `tpmWebSocketAgent: true` fills in
 * exactly that one option, the same agent, through the AMQP base the transport's (private) constructor takes; without
 * it the SDK is untouched. Either way every config the transport gives its AMQP base is recorded (`connects`).
 * stdout: JSON. keys: {endorsementKey, storageRootKey, registrationId}. register: {result, hub: {connected, sent}, connects?}
 * or {error, connects?}.
 */
const https = require('node:https');
const { setTimeout, clearTimeout } = require('node:timers');
const { Tpm } = require('tss.js');
const { TpmSecurityClient, TpmAuthenticationProvider } = require('azure-iot-security-tpm');
const { ProvisioningDeviceClient } = require('azure-iot-provisioning-device');
const { Http } = require('azure-iot-provisioning-device-http');
const { Amqp, AmqpWs } = require('azure-iot-provisioning-device-amqp');
// The AMQP base the transport itself depends on (not a direct dependency of this package).
const { Amqp: AmqpBase } = require(require.resolve('azure-iot-amqp-base', { paths: [require('node:path').dirname(require.resolve('azure-iot-provisioning-device-amqp'))] }));
const { Http: HttpBase } = require('azure-iot-http-base');
const { Client, Message } = require('azure-iot-device');
const { Mqtt } = require('azure-iot-device-mqtt');

const options = JSON.parse(process.argv[2]);
const tpm = new Tpm(true, '127.0.0.1', options.tpmPort);
const security = new TpmSecurityClient(options.registrationId, tpm);

const timeoutMs = options.timeoutMs || 40000;
const timer = setTimeout(() => finish({ error: { name: 'Timeout', message: `the device did not finish in ${timeoutMs} ms` } }), timeoutMs);
/** What the transport asked its AMQP base for: URI, SASL mechanism, whether a WebSocket agent came, how it ended. */
const connects = [];
function finish(output) {
  clearTimeout(timer);
  process.stdout.write(JSON.stringify(connects.length ? { ...output, connects } : output));
  try {
    tpm.close();
  } catch {
    // already closed
  }
  process.exit(0);
}
const fail = (error) => finish({ error: { name: error && error.name, message: String(error && error.message), result: error && error.result } });
const call = (method, ...args) => new Promise((resolve, reject) => security[method](...args, (err, value) => (err ? reject(err) : resolve(value))));

async function keys() {
  const endorsementKey = await call('getEndorsementKey');
  const storageRootKey = await call('getStorageRootKey');
  const registrationId = await call('getRegistrationId');
  return { endorsementKey: endorsementKey.toString('base64'), storageRootKey: storageRootKey.toString('base64'), registrationId };
}

/** azure-iot-amqp-base's own Amqp, recording each connect config; `agent` fills in a missing WebSocket agent. */
class RecordingAmqpBase extends AmqpBase {
  constructor(agent) {
    super(true);
    this.agent = agent;
  }
  connect(config, done) {
    const record = { uri: config.uri, saslMechanismName: config.saslMechanismName, webSocketAgent: !!(config.sslOptions && config.sslOptions.agent) };
    connects.push(record);
    const filled = this.agent && !record.webSocketAgent ? { ...config, sslOptions: { ...config.sslOptions, agent: this.agent } } : config;
    super.connect(filled, (err, ...rest) => {
      record.error = err ? { name: err.name, message: String(err.message), code: err.code || (err.amqpError && err.amqpError.condition) } : null;
      done(err, ...rest);
    });
  }
}

function transport() {
  if (options.transport === 'amqpws') {
    // The transport option the SDK documents for AmqpWs: an agent naming our HTTPS port and trusting our CA.
    const agent = new https.Agent({ port: options.port, ca: process.env.OPENDPS_CA });
    const amqpWs = new AmqpWs(new RecordingAmqpBase(options.tpmWebSocketAgent ? agent : undefined));
    amqpWs.setTransportOptions({ pollingInterval: 200, webSocketAgent: agent });
    return { host: options.host, transport: amqpWs };
  }
  if (options.transport === 'amqp') {
    const amqp = new Amqp();
    amqp.setTransportOptions({ pollingInterval: 200 });
    return { host: `${options.host}:${options.port}`, transport: amqp };
  }
  // Http cannot take a port in the host (docs/device-wire.md, trap 13): an injected base with an agent naming our port.
  const ca = process.env.OPENDPS_CA;
  const base = new HttpBase();
  base.setOptions({ ca, http: { agent: new https.Agent({ port: options.port, ca }) } });
  const http = new Http(base);
  http.setTransportOptions({ pollingInterval: 200 });
  return { host: options.host, transport: http };
}

async function register() {
  const { host, transport: dpsTransport } = transport();
  const client = ProvisioningDeviceClient.create(host, options.idScope, dpsTransport, security);
  const result = await client.register();
  // For TPM register() resolves with the whole operation status (docs/device-wire.md, trap 16).
  const state = result.registrationState || result;
  // As the SDK's TPM sample does: the hub SAS is signed in the TPM with the key it just imported (K2).
  const provider = TpmAuthenticationProvider.fromTpmSecurityClient(state.deviceId, state.assignedHub, security);
  const hub = Client.fromAuthenticationProvider(provider, Mqtt);
  await hub.setOptions({ ca: process.env.OPENDPS_CA });
  await hub.open();
  const message = new Message(JSON.stringify({ tpm: options.transport, registrationId: state.registrationId }));
  message.contentType = 'application/json';
  message.contentEncoding = 'utf-8';
  await hub.sendEvent(message);
  await hub.close();
  return { result, hub: { connected: true, sent: true } };
}

(options.mode === 'keys' ? keys() : register()).then(finish, fail);
