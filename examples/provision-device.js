// Provision a device against a local OpenDPS with the unmodified Azure IoT SDK, then connect to its hub.
//   node examples/provision-device.js <registrationId> <symmetricKey>
// Reads the ID scope, endpoints and CA from .opendps/connection.json (written by `pnpm start`).
const fs = require('node:fs');
const { ProvisioningDeviceClient } = require('azure-iot-provisioning-device');
const { Mqtt: ProvisioningMqtt } = require('azure-iot-provisioning-device-mqtt');
const { MqttBase } = require('azure-iot-mqtt-base');
const { SymmetricKeySecurityClient } = require('azure-iot-security-symmetric-key');
const { Client } = require('azure-iot-device');
const { Mqtt } = require('azure-iot-device-mqtt');

const [registrationId, key] = process.argv.slice(2);
const connection = JSON.parse(fs.readFileSync(process.env.OPENDPS_CONNECTION ?? '.opendps/connection.json', 'utf8'));
const ca = fs.readFileSync(connection.caFile, 'utf8');

async function main() {
  // The provisioning MQTT transport takes host:port; the injected MqttBase carries our development CA.
  const mqttBase = new MqttBase();
  mqttBase.setOptions({ ca });
  const security = new SymmetricKeySecurityClient(registrationId, key);
  const provisioning = ProvisioningDeviceClient.create(connection.endpoints.mqtt, connection.idScope, new ProvisioningMqtt(mqttBase), security);
  const result = await provisioning.register();
  console.log(`assigned to ${result.assignedHub} as ${result.deviceId}`);

  const hub = Client.fromConnectionString(`HostName=${result.assignedHub};DeviceId=${result.deviceId};SharedAccessKey=${key}`, Mqtt);
  hub.setOptions({ ca });
  await hub.open();
  const twin = await hub.getTwin();
  console.log('desired properties:', JSON.stringify(twin.properties.desired));
  await hub.close();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
