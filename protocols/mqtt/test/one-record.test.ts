import {
  median,
  mqttConnect,
  mqttPublish,
  mqttSubscribe,
  packetType,
  RecordCountingClient,
} from '../../../test/support/tls-records';
import { ID_SCOPE, ScriptedRegistration, startFrontEnd, testPki, usernameFor, type Running } from './helpers';

/**
 * Each MQTT packet leaves in one TLS record, and the socket sends without delay: a packet written
 * in pieces (mqtt-packet writes each field on its own) meets Nagle's algorithm and the client's
 * delayed ACK, and every round trip stalls ~40 ms.
 */
describe('DPS MQTT/TLS: one packet, one record, no stall', () => {
  const service = new ScriptedRegistration();
  let running: Running;

  beforeAll(async () => {
    running = await startFrontEnd({ registration: service });
  });
  afterAll(() => running.close());

  /** CONNECT, SUBSCRIBE, PUBLISH register; the record count of each answer and the time for all three. */
  async function register(registrationId: string): Promise<{ records: number[]; elapsedMs: number }> {
    const client = await RecordCountingClient.connect(running.port, testPki().ca.certificatePem);
    try {
      const started = performance.now();
      const connack = await client.exchange(
        mqttConnect({ clientId: registrationId, username: usernameFor(registrationId), password: `SharedAccessSignature sr=${ID_SCOPE}/registrations/${registrationId}&sig=abc%3D&skn=registration&se=1795684788` }),
      );
      expect(packetType(connack.packet)).toBe(2);
      expect(connack.packet[3]).toBe(0);
      const suback = await client.exchange(mqttSubscribe(1, '$dps/registrations/res/#'));
      expect(packetType(suback.packet)).toBe(9);
      const before = client.records;
      const puback = await client.exchange(
        mqttPublish(2, '$dps/registrations/PUT/iotdps-register/?$rid=1', JSON.stringify({ registrationId })),
      );
      expect(packetType(puback.packet)).toBe(4);
      const response = await client.nextPacket();
      expect(packetType(response)).toBe(3);
      const elapsedMs = performance.now() - started;
      return { records: [connack.records, suback.records, client.records - before], elapsedMs };
    } finally {
      client.close();
    }
  }

  test('CONNACK, SUBACK, PUBACK and the response each arrive in exactly one TLS record', async () => {
    const { records } = await register('one-record');
    // The last figure counts the PUBACK and the registration response: two packets, two records.
    expect(records).toEqual([1, 1, 2]);
  });

  test('a registration after the handshake takes no Nagle stall (each would be >= 40 ms)', async () => {
    const times: number[] = [];
    for (let i = 0; i < 5; i++) times.push((await register(`no-stall-${i}`)).elapsedMs);
    // Generous: three stalled round trips cost >= 120 ms; a loaded box still answers in a few ms.
    expect(median(times)).toBeLessThan(30);
  });
});
