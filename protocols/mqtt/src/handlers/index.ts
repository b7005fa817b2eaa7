import type { Packet } from 'mqtt-packet';
import { Phase, type MqttChannel } from '../channel';
import { PINGRESP } from '../frame-codec';
import { handleConnect } from './connect';
import { handlePublish } from './publish';
import { handleSubscribe, handleUnsubscribe } from './subscribe';

/** Every packet a device sends is dispatched from here, one at a time. */
export function handle(channel: MqttChannel, packet: Packet): void {
  if (packet.cmd === 'connect') {
    // [MQTT-3.1.0-2] a second CONNECT is a protocol violation
    if (channel.phase !== Phase.AwaitingConnect) return channel.fail('a second CONNECT');
    return handleConnect(channel, packet);
  }
  // [MQTT-3.1.0-1] the first packet must be CONNECT
  if (channel.phase !== Phase.Connected) return channel.fail(`${packet.cmd} before CONNECT`);
  channel.refreshKeepalive();
  switch (packet.cmd) {
    case 'publish':
      return handlePublish(channel, packet);
    case 'subscribe':
      return handleSubscribe(channel, packet);
    case 'unsubscribe':
      return handleUnsubscribe(channel, packet);
    case 'puback':
      // The device acknowledges a QoS 1 response. Nothing is resent (no persistent sessions), so
      // there is nothing to release.
      return;
    case 'pingreq':
      return channel.send(PINGRESP);
    case 'disconnect':
      return channel.goodbye();
    default:
      // PUBREC, PUBREL, PUBCOMP (no QoS 2 exchange ever starts here) and server-to-client packets.
      return channel.fail(`unexpected ${packet.cmd}`);
  }
}
