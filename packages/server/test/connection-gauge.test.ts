import { EventEmitter } from 'node:events';
import { ServerMetrics } from '../src/observability/metrics';

async function gauge(metrics: ServerMetrics, protocol: string): Promise<number | undefined> {
  const text = await metrics.registry.metrics();
  const line = text.split('\n').find((candidate) => candidate.startsWith(`opendps_connections{protocol="${protocol}"} `));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
}

describe('the connection gauge', () => {
  test('counts a socket until it closes, with one listener shared by every socket of a protocol', async () => {
    const metrics = new ServerMetrics();
    const sockets = [new EventEmitter(), new EventEmitter(), new EventEmitter()];
    for (const socket of sockets) metrics.connection('mqtt', socket);
    metrics.connection('amqp', new EventEmitter());
    expect(await gauge(metrics, 'mqtt')).toBe(3);
    expect(await gauge(metrics, 'amqp')).toBe(1);

    // No closure per socket: the sockets of one protocol hold the same function.
    const listeners = sockets.map((socket) => socket.listeners('close')[0]);
    expect(new Set(listeners).size).toBe(1);

    sockets[0]?.emit('close');
    sockets[1]?.emit('close');
    expect(await gauge(metrics, 'mqtt')).toBe(1);
    expect(await gauge(metrics, 'amqp')).toBe(1);
  });
});
