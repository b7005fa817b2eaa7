import type { ISubscribePacket, IUnsubscribePacket } from 'mqtt-packet';
import type { MqttChannel } from '../channel';
import { encode, unsuback } from '../frame-codec';
import { RESPONSE_FILTER } from '../topics';

/** 0x80 in a SUBACK: the subscription is refused [MQTT-3.9.3-2]. */
const FAILURE = 128;

/**
 * Only the response filter may be subscribed, at QoS 0 or 1: DPS has no QoS 2, and a server may
 * grant a lower QoS than asked [MQTT-3.8.4-5]. Responses go out at the granted QoS.
 */
export function handleSubscribe(channel: MqttChannel, packet: ISubscribePacket): void {
  if (packet.subscriptions.length === 0) return channel.fail('a SUBSCRIBE without subscriptions'); // [MQTT-3.8.3-3]
  const granted: number[] = [];
  for (const { topic, qos } of packet.subscriptions) {
    if (topic !== RESPONSE_FILTER) {
      channel.settings.logger.info({ topic: topic.slice(0, 200) }, 'SUBSCRIBE refused');
      granted.push(FAILURE);
      continue;
    }
    channel.responseQos = qos === 0 ? 0 : 1;
    granted.push(channel.responseQos);
  }
  channel.send(encode({ cmd: 'suback', messageId: packet.messageId, granted }));
}

/** Acknowledged; a response still goes to the connection that asked (nothing is routed by subscription). */
export function handleUnsubscribe(channel: MqttChannel, packet: IUnsubscribePacket): void {
  if (packet.unsubscriptions.length === 0) return channel.fail('an UNSUBSCRIBE without topics'); // [MQTT-3.10.3-2]
  channel.send(unsuback(packet.messageId ?? 0));
}
