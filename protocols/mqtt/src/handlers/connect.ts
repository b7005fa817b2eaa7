import type { IConnectPacket } from 'mqtt-packet';
import { toDpsError } from '@opendps/model';
import type { MqttChannel } from '../channel';
import { decideConnect, NOT_AUTHORIZED } from '../connect';
import { connack } from '../frame-codec';
import type { DeviceIdentity } from '../session';

const ACCEPTED = connack(0);
const UNACCEPTABLE_PROTOCOL_VERSION = 1;
const SERVER_UNAVAILABLE = 3;
/** MQTT 3.1 limits client ids to 23 characters. */
const MQTT_31_MAX_CLIENT_ID = 23;

/**
 * CONNECT as a pipeline of small steps: protocol level, structure (decideConnect), then the X.509
 * chain. DPS has no persistent sessions and no will (docs/device-wire.md §2): the session is always
 * clean, and a will, which would come back to us as a request when the socket drops, is ignored.
 */
export function handleConnect(channel: MqttChannel, packet: IConnectPacket): void {
  const { logger, service, route } = channel.settings;
  // Hub devices share this listener: their CONNECT names the hub, not an ID scope.
  const elsewhere = route?.({ clientId: packet.clientId, ...(packet.username !== undefined ? { username: packet.username } : {}) });
  if (elsewhere) return channel.handOver(elsewhere);
  // [MQTT-3.1.2-2] MQTT 3.1 (MQIsdp, 3) and 3.1.1 (4) are served; 5 is refused.
  const level = packet.protocolVersion ?? 4;
  if (level !== 3 && level !== 4) return refuse(channel, UNACCEPTABLE_PROTOCOL_VERSION, `protocol level ${level}`);
  if (level === 3 && packet.clientId.length > MQTT_31_MAX_CLIENT_ID) return refuse(channel, 2, 'an MQTT 3.1 client id is at most 23 characters');

  const decision = decideConnect({ clientId: packet.clientId, username: packet.username, password: packet.password, context: channel.context });
  if (!decision.accepted) {
    logger.info({ clientId: packet.clientId, returnCode: decision.returnCode, reason: decision.reason }, 'CONNECT refused');
    return refuse(channel, decision.returnCode, decision.reason);
  }
  const device = decision.device;
  const keepalive = packet.keepalive ?? 0;
  // A SAS is judged on each request, as DPS answers a wrong key with 401 on the response topic.
  // An X.509 chain is judged here, as DPS does: a chain no enrollment accepts gets CONNACK 5.
  if (device.proof.kind !== 'x509') return accept(channel, device, keepalive);
  const proof = device.proof;
  channel.hold();
  service
    .authenticate({ idScope: device.idScope, registrationId: device.registrationId, proof, transport: channel.context.transport })
    .then(
      () => {
        if (!channel.closing) accept(channel, device, keepalive);
      },
      (thrown: unknown) => {
        if (channel.closing) return;
        const error = toDpsError(thrown);
        // Throttled or a store failure is no verdict on the chain: 3 (server unavailable) is retried.
        const returnCode = error.status === 429 || error.status >= 500 ? SERVER_UNAVAILABLE : NOT_AUTHORIZED;
        logger.info({ registrationId: device.registrationId, returnCode, errorCode: error.errorCode, reason: error.message }, 'CONNECT refused: X.509 chain');
        refuse(channel, returnCode, error.message);
      },
    );
}

/**
 * Connections are kept per socket, never by client id: a device's register() opens its own
 * connection, and a second CONNECT with the same client id takes nothing over ([MQTT-3.1.4-2] is
 * for brokers with sessions to hand on).
 */
function accept(channel: MqttChannel, device: DeviceIdentity, keepaliveSeconds: number): void {
  channel.device = device;
  channel.send(ACCEPTED);
  channel.connected(keepaliveSeconds);
}

function refuse(channel: MqttChannel, returnCode: number, reason: string): void {
  channel.settings.logger.debug({ returnCode, err: reason }, 'MQTT connection closed before CONNECT');
  channel.refuse(connack(returnCode));
}
