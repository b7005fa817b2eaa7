/*
 * Runs inside a private network and mount namespace (hub-addresses-netns.test.ts): OpenDPS (the built
 * CLI) on the standard ports 8883, 5671 and 443 with no hub port, a second hub linked as
 * `hub-2.localhost` (resolved by the namespace's own /etc/hosts), then the unmodified SDKs exactly
 * as an app uses them: names from the registration result and the connection strings, nothing
 * injected, the dev CA trusted through NODE_EXTRA_CA_CERTS. Prints one JSON line.
 *
 *   node hub-hosts-netns.js <cli.js>            the driver: gateway, hub link, then the device run
 *   node hub-hosts-netns.js --devices <json>    the device run (a child, for NODE_EXTRA_CA_CERTS)
 */
'use strict';
const { spawn, execFileSync } = require('node:child_process');
const { mkdtempSync, readFileSync, rmSync } = require('node:fs');
const { tmpdir } = require('node:os');
const path = require('node:path');
const { setTimeout, clearTimeout } = require('node:timers');

async function devices(input) {
  const { ProvisioningServiceClient } = require('azure-iot-provisioning-service');
  const { ProvisioningDeviceClient } = require('azure-iot-provisioning-device');
  const { Mqtt: ProvisioningMqtt } = require('azure-iot-provisioning-device-mqtt');
  const { SymmetricKeySecurityClient } = require('azure-iot-security-symmetric-key');
  const { Client, Message } = require('azure-iot-device');
  const { Mqtt, MqttWs } = require('azure-iot-device-mqtt');
  const { Registry } = require('azure-iothub');
  const { randomBytes } = require('node:crypto');
  const out = { registrations: {}, hubs: {}, registries: {} };

  const service = ProvisioningServiceClient.fromConnectionString(input.serviceConnectionString);
  const key = randomBytes(32).toString('base64');
  const enrollments = [
    { registrationId: 'netns-1', desired: { interval: 7 } },
    { registrationId: 'netns-2', desired: { interval: 8 }, iotHubs: ['hub-2.localhost'] },
  ];
  for (const { registrationId, desired, iotHubs } of enrollments) {
    await service.createOrUpdateIndividualEnrollment({
      registrationId,
      attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: key, secondaryKey: key } },
      initialTwin: { properties: { desired } },
      ...(iotHubs ? { iotHubs, allocationPolicy: 'static' } : {}),
    });
    const client = ProvisioningDeviceClient.create('localhost', input.idScope, new ProvisioningMqtt(), new SymmetricKeySecurityClient(registrationId, key));
    const result = await client.register();
    out.registrations[registrationId] = { assignedHub: result.assignedHub, deviceId: result.deviceId, status: result.status };
    for (const [name, transport] of [['mqtt', Mqtt], ['mqttws', MqttWs]]) {
      const hub = Client.fromConnectionString(`HostName=${result.assignedHub};DeviceId=${result.deviceId};SharedAccessKey=${key}`, transport);
      const cell = {};
      try {
        await hub.open();
        cell.desired = (await hub.getTwin()).properties.desired;
        const message = new Message(JSON.stringify({ from: name }));
        await hub.sendEvent(message);
        cell.sent = true;
      } catch (error) {
        cell.error = `${error.name}: ${error.message}`;
      } finally {
        await hub.close().catch(() => undefined);
      }
      out.hubs[`${registrationId}/${name}`] = cell;
    }
  }

  for (const [name, connectionString] of Object.entries(input.hubConnectionStrings)) {
    const registry = Registry.fromConnectionString(connectionString);
    const cell = { hostName: /HostName=([^;]+)/.exec(connectionString)[1] };
    try {
      await registry.create({ deviceId: `made-on-${name}`, status: 'enabled' });
      cell.devices = (await registry.list()).responseBody.map((device) => device.deviceId).sort();
      cell.twin = (await registry.getTwin(name === 'hub-2' ? 'netns-2' : 'netns-1')).responseBody.properties.desired;
    } catch (error) {
      cell.error = `${error.name}: ${error.message}`;
    }
    out.registries[name] = cell;
  }
  return out;
}

async function driver(cli) {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'opendps-netns-'));
  const gateway = spawn(process.execPath, [cli, 'start', '--data-dir', dataDir, '--https-port', '443', '--mqtt-port', '8883', '--amqp-port', '5671'], {
    env: { PATH: process.env.PATH },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  gateway.stderr.on('data', (chunk) => (log += chunk));
  try {
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ready line in 30 s:\n${log}`)), 30_000);
      gateway.once('exit', (code) => reject(new Error(`the gateway exited with ${code}:\n${log}`)));
      gateway.stdout.on('data', (chunk) => {
        log += chunk;
        if (log.includes(' ready on ')) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    const linked = JSON.parse(execFileSync(process.execPath, [cli, 'hub', 'link', 'hub-2', '--builtin', '--host-name', 'hub-2.localhost', '--data-dir', dataDir], { env: { PATH: process.env.PATH } }).toString());
    const connection = JSON.parse(readFileSync(path.join(dataDir, 'connection.json'), 'utf8'));
    const instance = connection.instances[0];
    const input = {
      idScope: connection.idScope,
      serviceConnectionString: connection.serviceConnectionString,
      hubConnectionStrings: Object.fromEntries(instance.linkedHubs.map((hub) => [hub.name, hub.connectionString])),
    };
    const run = execFileSync(process.execPath, [path.join(__dirname, 'hub-hosts-netns.js'), '--devices', JSON.stringify(input)], {
      cwd: path.join(__dirname, '..'),
      env: { PATH: process.env.PATH, NODE_EXTRA_CA_CERTS: connection.caFile },
      timeout: 60_000,
    }).toString();
    const result = JSON.parse(run.trim().split('\n').pop());
    return { connection: { endpoints: connection.endpoints, linkedHubs: instance.linkedHubs.map(({ name, hostName, connectionString }) => ({ name, hostName, connectionHost: /HostName=([^;]+)/.exec(connectionString)[1] })) }, linked: { hostName: linked.hostName, builtin: linked.builtin }, ...result };
  } finally {
    gateway.kill('SIGTERM');
    await new Promise((resolve) => (gateway.exitCode === null ? gateway.once('exit', resolve) : resolve()));
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const [mode, argument] = process.argv.slice(2);
(mode === '--devices' ? devices(JSON.parse(argument)) : driver(mode)).then(
  (result) => console.log(JSON.stringify(result)),
  (error) => console.log(JSON.stringify({ error: String(error && error.stack ? error.stack : error) })),
);
