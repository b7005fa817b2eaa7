import type { IPublishPacket } from 'mqtt-packet';
import type { MqttChannel } from '../channel';
import { answer, type DpsResponse } from '../exchange';
import { encode, puback } from '../frame-codec';
import { asciiJson } from '../json';
import { parseRequestTopic, responseTopic } from '../topics';

/**
 * A PUBLISH is a DPS request: acknowledged at once, answered on the response topic when the
 * registration service answers. Anything else closes the connection: MQTT 3.1.1 can refuse a
 * PUBLISH only by closing.
 */
export function handlePublish(channel: MqttChannel, packet: IPublishPacket): void {
  const { logger } = channel.settings;
  const topic = packet.topic;
  // [MQTT-3.3.2-2] no wildcards in a topic name; nothing is stored for later subscribers (retain is ignored)
  const request = topic.includes('#') || topic.includes('+') ? undefined : parseRequestTopic(topic);
  const device = channel.device;
  if (!request || !device) {
    logger.info({ topic: topic.slice(0, 200) }, 'PUBLISH outside the DPS topics: closing the connection');
    return channel.fail('not a DPS registration request');
  }
  // As IoT Hub and DPS: no QoS 2.
  if (packet.qos === 2) return channel.fail('QoS 2 is not supported');
  if (channel.deadline.refused) {
    // A device refused for good does not ask again: one that does is closed at once.
    channel.close('a request after a refusal');
    return channel.fail('a request after a refusal');
  }
  channel.deadline.requestStarted();
  // Acknowledged now, answered when the service does (docs/device-wire.md, trap 14: PUBACK within
  // 30 s however long the registration takes).
  if (packet.qos === 1) channel.send(puback(packet.messageId ?? 0));
  const { service, maxPayloadBytes } = channel.settings;
  answer({ service, device, context: channel.context, maxPayloadBytes, logger }, request, packet.payload as Buffer)
    .then((response) => reply(channel, request.rid, response))
    .catch((error: unknown) => {
      logger.error({ err: error }, 'response failed');
      channel.close('the response could not be sent');
    });
}

/** Only to the requesting connection, at the QoS its subscription was granted: nothing is routed between devices. */
function reply(channel: MqttChannel, rid: string, response: DpsResponse): void {
  if (channel.closing) return;
  const qos = channel.responseQos;
  channel.send(
    encode({
      cmd: 'publish',
      topic: responseTopic(response.status, rid, response.retryAfterSeconds),
      payload: asciiJson(response.body),
      qos,
      retain: false,
      dup: false,
      ...(qos > 0 ? { messageId: channel.nextMessageId() } : {}),
    }),
  );
  // Armed once the response is written: a refusal (4xx but 429) leaves the device a short grace to
  // disconnect, anything else the time to its next request.
  channel.deadline.requestAnswered(response.status, response.retryAfterSeconds);
}
