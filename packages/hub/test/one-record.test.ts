import {
  median,
  mqttConnect,
  mqttPublish,
  mqttSubscribe,
  packetType,
  RecordCountingClient,
} from '../../../test/support/tls-records';
import { addSasDevice, deviceToken, deviceUsername, startHub, type HubFixture } from './helpers';

/** The hub's device MQTT: each packet in one TLS record, sent without Nagle's delay. */
describe('built-in hub MQTT/TLS: one packet, one record, no stall', () => {
  let fixture: HubFixture;

  beforeAll(async () => {
    fixture = await startHub();
  });
  afterAll(() => fixture.close());

  /** CONNECT, SUBSCRIBE, twin GET; the record count of each answer and the time for all three. */
  async function twinRead(deviceId: string, key: string): Promise<{ records: number[]; elapsedMs: number }> {
    const client = await RecordCountingClient.connect(fixture.hub.port, fixture.root.certificatePem);
    try {
      const started = performance.now();
      const connack = await client.exchange(
        mqttConnect({ clientId: deviceId, username: deviceUsername(fixture.hub, deviceId), password: deviceToken(fixture.hub, deviceId, key), clean: false }),
      );
      expect(packetType(connack.packet)).toBe(2);
      expect(connack.packet[3]).toBe(0);
      const suback = await client.exchange(mqttSubscribe(1, '$iothub/twin/res/#'));
      expect(packetType(suback.packet)).toBe(9);
      const before = client.records;
      // The hub may answer the twin GET before acknowledging it: either order.
      const first = await client.exchange(mqttPublish(2, '$iothub/twin/GET/?$rid=1', ''));
      const second = await client.nextPacket();
      expect([packetType(first.packet), packetType(second)].sort()).toEqual([3, 4]);
      return { records: [connack.records, suback.records, client.records - before], elapsedMs: performance.now() - started };
    } finally {
      client.close();
    }
  }

  test('CONNACK, SUBACK, PUBACK and the twin response each arrive in exactly one TLS record', async () => {
    const { primaryKey } = await addSasDevice(fixture.hub, 'one-record');
    const { records } = await twinRead('one-record', primaryKey);
    // The last figure counts the PUBACK and the twin response: two packets, two records.
    expect(records).toEqual([1, 1, 2]);
  });

  test('a twin read after the handshake takes no Nagle stall (each would be >= 40 ms)', async () => {
    const { primaryKey } = await addSasDevice(fixture.hub, 'no-stall');
    const times: number[] = [];
    for (let i = 0; i < 5; i++) times.push((await twinRead('no-stall', primaryKey)).elapsedMs);
    expect(median(times)).toBeLessThan(30);
  });
});
