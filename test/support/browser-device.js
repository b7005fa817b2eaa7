/* global window, WebSocket, URLSearchParams, crypto, TextEncoder, TextDecoder, atob, btoa, fetch, setTimeout, mqtt, rheaUmd */
/**
 * A browser device, as a page would write it: only what Chromium offers (WebCrypto, WebSocket,
 * fetch) plus the browser bundles of mqtt.js and rhea. test/browser.test.ts serves it and calls
 * the functions it puts on `window`. Each register function polls while the answer is 202 and
 * returns every answer's status and retry-after, and the last body.
 */
'use strict';

const DPS_API_VERSION = '2019-03-31';

async function hmacBase64(keyBase64, text) {
  const keyBytes = Uint8Array.from(atob(keyBase64), (c) => c.charCodeAt(0));
  const key = await crypto.subtle.importKey('raw', keyBytes, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const signature = new Uint8Array(await crypto.subtle.sign('HMAC', key, new TextEncoder().encode(text)));
  return btoa(String.fromCharCode(...signature));
}

/** The DPS symmetric-key token: `sr` not encoded, signed as sent (docs/device-wire.md §1). */
async function dpsSas(idScope, registrationId, key) {
  const sr = `${idScope}/registrations/${registrationId}`;
  const se = Math.floor(Date.now() / 1000) + 3600;
  const sig = encodeURIComponent(await hmacBase64(key, `${sr}\n${se}`));
  return `SharedAccessSignature sr=${sr}&sig=${sig}&se=${se}&skn=registration`;
}

/** The hub device token: `sr` URL-encoded (host, port and path), no `skn`. */
async function hubSas(hubHost, deviceId, key) {
  const sr = encodeURIComponent(`${hubHost}/devices/${deviceId}`);
  const se = Math.floor(Date.now() / 1000) + 3600;
  const sig = encodeURIComponent(await hmacBase64(key, `${sr}\n${se}`));
  return `SharedAccessSignature sr=${sr}&sig=${sig}&se=${se}`;
}

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function mqttConnect(url, options) {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(url, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 10000, ...options });
    client.once('connect', () => resolve(client));
    client.once('error', (error) => reject(new Error(`MQTT: ${error.message}`)));
    client.once('close', () => reject(new Error('MQTT: closed before CONNACK')));
  });
}

/** Publishes `body` on `topic` and resolves with the answer on the response topic for `rid`. */
function mqttRequest(client, topic, body, rid, answerPattern) {
  return new Promise((resolve, reject) => {
    const onMessage = (answerTopic, payload) => {
      const match = answerPattern.exec(answerTopic);
      if (!match || new URLSearchParams(match[2]).get('$rid') !== String(rid)) return;
      client.off('message', onMessage);
      resolve({ status: Number(match[1]), params: new URLSearchParams(match[2]), text: new TextDecoder().decode(payload) });
    };
    client.on('message', onMessage);
    client.publish(topic, body, { qos: 1 }, (error) => error && reject(error));
  });
}

const DPS_ANSWER = /^\$dps\/registrations\/res\/(\d+)\/\?(.*)$/;

window.registerOverMqtt = async ({ url, idScope, registrationId, key }) => {
  const client = await mqttConnect(url, {
    clientId: registrationId,
    clean: true,
    username: `${idScope}/registrations/${registrationId}/api-version=${DPS_API_VERSION}&ClientVersion=opendps-browser-test`,
    password: await dpsSas(idScope, registrationId, key),
  });
  try {
    await client.subscribeAsync('$dps/registrations/res/#', { qos: 1 });
    const answers = [];
    let rid = 1;
    let answer = await mqttRequest(client, `$dps/registrations/PUT/iotdps-register/?$rid=${rid}`, JSON.stringify({ registrationId }), rid, DPS_ANSWER);
    for (;;) {
      const body = JSON.parse(answer.text);
      answers.push({ status: answer.status, retryAfter: answer.params.get('retry-after') });
      if (answer.status !== 202) return { answers, body };
      await pause(50);
      rid += 1;
      const poll = `$dps/registrations/GET/iotdps-get-operationstatus/?$rid=${rid}&operationId=${encodeURIComponent(body.operationId)}`;
      answer = await mqttRequest(client, poll, ' ', rid, DPS_ANSWER);
    }
  } finally {
    await client.endAsync();
  }
};

window.registerOverAmqp = async ({ url, host, idScope, registrationId, key }) => {
  const rhea = rheaUmd;
  const address = `${idScope}/registrations/${registrationId}`;
  const container = rhea.create_container({ id: `browser-${registrationId}` });
  const connection = container.connect({
    connection_details: container.websocket_connect(WebSocket)(url, ['AMQPWSB10']),
    hostname: host,
    username: address,
    password: await dpsSas(idScope, registrationId, key),
    reconnect: false,
  });
  const receiver = connection.open_receiver({ source: { address } });
  const sender = connection.open_sender({ target: { address } });
  const failed = new Promise((_resolve, reject) => {
    connection.on('connection_error', (context) => reject(new Error(`AMQP: ${JSON.stringify(context.connection.error)}`)));
    connection.on('disconnected', (context) => reject(new Error(`AMQP: disconnected ${context.error ? context.error.message : ''}`)));
    sender.on('rejected', (context) => reject(new Error(`AMQP: request rejected ${JSON.stringify(context.delivery.remote_state)}`)));
  });
  await Promise.race([failed, Promise.all([once(receiver, 'receiver_open'), once(sender, 'sendable')])]);
  /** Sends one request and resolves with the answer of the same correlation id. */
  const exchange = (properties, body) =>
    new Promise((resolve) => {
      const correlationId = rhea.generate_uuid();
      const onMessage = (context) => {
        if (context.message.correlation_id !== correlationId) return;
        receiver.removeListener('message', onMessage);
        resolve(context.message);
      };
      receiver.on('message', onMessage);
      sender.send({ correlation_id: correlationId, application_properties: properties, body });
    });
  try {
    const answers = [];
    let message = await Promise.race([failed, exchange({ 'iotdps-operation-type': 'iotdps-register', 'iotdps-forceRegistration': false }, JSON.stringify({ registrationId }))]);
    for (;;) {
      const body = JSON.parse(new TextDecoder().decode(message.body.content));
      const retryAfter = message.application_properties && message.application_properties['retry-after'];
      answers.push({ status: body.status, retryAfter: retryAfter === undefined ? null : String(retryAfter) });
      if (body.status !== 'assigning') return { answers, body };
      await pause(50);
      message = await Promise.race([failed, exchange({ 'iotdps-operation-type': 'iotdps-get-operationstatus', 'iotdps-operation-id': body.operationId }, '')]);
    }
  } finally {
    connection.close();
  }
};

function once(emitter, event) {
  return new Promise((resolve) => emitter.once(event, resolve));
}

window.registerOverRest = async ({ base, idScope, registrationId, key }) => {
  const headers = { authorization: await dpsSas(idScope, registrationId, key), 'content-type': 'application/json', accept: 'application/json' };
  const resource = `${base}/${idScope}/registrations/${encodeURIComponent(registrationId)}`;
  const answers = [];
  let response = await fetch(`${resource}/register?api-version=2021-06-01`, { method: 'PUT', headers, body: JSON.stringify({ registrationId }) });
  for (;;) {
    const body = await response.json();
    answers.push({ status: response.status, retryAfter: response.headers.get('retry-after'), errorCode: response.headers.get('x-ms-error-code') });
    if (response.status !== 202) return { answers, body };
    await pause(50);
    response = await fetch(`${resource}/operations/${encodeURIComponent(body.operationId)}?api-version=2021-06-01`, { headers });
  }
};

/** Connects to the assigned hub over MQTT/WS, reads the twin's desired properties, sends one telemetry message. */
window.hubSession = async ({ url, hubHost, deviceId, key, telemetry }) => {
  const client = await mqttConnect(url, {
    clientId: deviceId,
    clean: false,
    username: `${hubHost}/${deviceId}/?api-version=2021-04-12`,
    password: await hubSas(hubHost, deviceId, key),
  });
  try {
    await client.subscribeAsync('$iothub/twin/res/#', { qos: 0 });
    const twin = await mqttRequest(client, '$iothub/twin/GET/?$rid=1', ' ', 1, /^\$iothub\/twin\/res\/(\d+)\/\?(.*)$/);
    await client.publishAsync(`devices/${deviceId}/messages/events/`, JSON.stringify(telemetry), { qos: 1 });
    return { twinStatus: twin.status, desired: JSON.parse(twin.text).desired };
  } finally {
    await client.endAsync();
  }
};

/** Opens a WebSocket and says how it went: `open`, or `error` (the console says why). */
window.tryWebSocket = (url, protocol = 'mqtt') =>
  new Promise((resolve) => {
    const ws = new WebSocket(url, protocol);
    ws.onopen = () => {
      ws.close();
      resolve('open');
    };
    ws.onerror = () => resolve('error');
  });
