import { toDpsError, type Logger } from '@opendps/model';
import type { RegistrationService } from '@opendps/registration';
import { randomUUID } from 'node:crypto';
import type { AedesClient, AedesHooks, ConnectRefusal, PublishPacket } from './aedes';
import { decideConnect, NOT_AUTHORIZED } from './connect';
import { answer, type DpsResponse } from './exchange';
import { asciiJson } from './json';
import type { DeviceSession } from './session';
import { parseRequestTopic, RESPONSE_FILTER, responseTopic } from './topics';

export interface HookDependencies {
  service: RegistrationService;
  sessions: WeakMap<AedesClient, DeviceSession>;
  maxPayloadBytes: number;
  logger: Logger;
}

/**
 * The business decisions, injected into aedes as hooks (docs/architecture.md, Conventions): who may connect, what may be
 * subscribed, and what a PUBLISH means. Everything else (framing, keepalive, acks) is aedes.
 */
export function createHooks(deps: HookDependencies): AedesHooks {
  const { sessions, logger } = deps;

  return {
    preConnect(_client, packet, done) {
      // DPS has no persistent sessions and no will (docs/device-wire.md §2); a will would come back to us as a
      // request when the socket drops, so it is dropped here.
      packet.clean = true;
      packet.will = undefined;
      done(null, true);
    },

    authenticate(client, username, password, done) {
      const session = sessions.get(client);
      if (!session) return done(refusal(5, 'unknown connection'), false);
      const decision = decideConnect({ clientId: client.id, username, password, context: session.context });
      if (!decision.accepted) {
        logger.info({ clientId: client.id, returnCode: decision.returnCode, reason: decision.reason }, 'CONNECT refused');
        return done(refusal(decision.returnCode, decision.reason), false);
      }
      const device = decision.device;
      const accept = (): void => {
        session.device = device;
        // Connections are keyed per socket, not by client id: a device's register() opens its own
        // connection, and an unauthenticated CONNECT must not take over a registering device's
        // connection, as [MQTT-3.1.4-2] would have it.
        client.id = `${device.registrationId}#${randomUUID()}`;
        session.deadline.connected();
        done(null, true);
      };
      // A SAS is judged on each request, as DPS answers a wrong key with 401 on the response topic.
      // An X.509 chain is judged here, as DPS does: a chain no enrollment accepts gets CONNACK 5.
      if (device.proof.kind !== 'x509') return accept();
      const proof = device.proof;
      deps.service
        .authenticate({ idScope: device.idScope, registrationId: device.registrationId, proof, transport: session.context.transport })
        .then(accept, (thrown: unknown) => {
          const error = toDpsError(thrown);
          // Throttled or a store failure is no verdict on the chain: 3 (server unavailable) is retried.
          const returnCode = error.status === 429 || error.status >= 500 ? 3 : NOT_AUTHORIZED;
          logger.info({ registrationId: device.registrationId, returnCode, errorCode: error.errorCode, reason: error.message }, 'CONNECT refused: X.509 chain');
          done(refusal(returnCode, error.message), false);
        });
    },

    authorizeSubscribe(client, sub, done) {
      const session = sessions.get(client);
      if (!session || sub.topic !== RESPONSE_FILTER) {
        logger.info({ topic: sub.topic }, 'SUBSCRIBE refused');
        return done(null, null); // granted 0x80 [MQTT-3.9.3-2]
      }
      // capped at 1 as it was decoded (capSubscriptionQos): DPS has no QoS 2
      session.responseQos = sub.qos === 0 ? 0 : 1;
      done(null, sub);
    },

    authorizePublish(client, packet, done) {
      const session = client ? sessions.get(client) : undefined;
      const device = session?.device;
      const request = parseRequestTopic(packet.topic);
      if (!client || !session || !device || !request) {
        logger.info({ topic: packet.topic.slice(0, 200) }, 'PUBLISH outside the DPS topics: closing the connection');
        return done(new Error('not a DPS registration request'));
      }
      if (packet.qos === 2) {
        // As IoT Hub and DPS: no QoS 2; MQTT 3.1.1 can only refuse a PUBLISH by closing.
        return done(new Error('QoS 2 is not supported'));
      }
      if (session.closing) return done(new Error('the connection is closing'));
      if (session.deadline.refused) {
        // A device refused for good does not ask again: one that does is closed at once.
        session.close('a request after a refusal');
        return done(new Error('a request after a refusal'));
      }
      session.deadline.requestStarted();
      // Never stored for later subscribers.
      packet.retain = false;
      // Acknowledge now, answer when the service does (docs/device-wire.md, trap 14: PUBACK within 30 s however long
      // the registration takes). aedes writes the PUBACK when `done` returns.
      done(null);
      const exchange = { service: deps.service, device, context: session.context, maxPayloadBytes: deps.maxPayloadBytes, logger };
      answer(exchange, request, packet.payload)
        .then((response) => reply(client, session, request.rid, response))
        .catch((error: unknown) => {
          logger.error({ err: error }, 'response failed');
          session.close('the response could not be sent');
        });
    },
  };

  function reply(client: AedesClient, session: DeviceSession, rid: string, response: DpsResponse): void {
    if (client.closed) return;
    const packet: PublishPacket = {
      cmd: 'publish',
      topic: responseTopic(response.status, rid, response.retryAfterSeconds),
      payload: asciiJson(response.body),
      qos: session.responseQos,
      retain: false,
      dup: false,
    };
    // Only to the requesting connection: nothing is routed between devices.
    client.publish(packet, (error) => {
      if (error) logger.debug({ err: error }, 'response not delivered');
      // Armed once the response is written: a refusal (4xx but 429) leaves the device a short grace
      // to disconnect, anything else the time to its next request.
      session.deadline.requestAnswered(response.status, response.retryAfterSeconds);
    });
  }
}

function refusal(returnCode: 2 | 3 | 4 | 5, reason: string): ConnectRefusal {
  return Object.assign(new Error(reason), { returnCode });
}
