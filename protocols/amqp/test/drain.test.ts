import { connectClient, plain, ScriptedRegistration, startFrontEnd } from './helpers';

describe('AMQP front-end drain', () => {
  it('endConnections closes an open connection with an AMQP close (amqp:connection:forced), not a dropped socket', async () => {
    const running = await startFrontEnd({ registration: new ScriptedRegistration() });
    try {
      const { connection, error, gone } = await connectClient(running.port, plain('drained-dev'));
      expect(error).toBeUndefined();
      const closedBy = new Promise<unknown>((resolve) => connection.once('connection_close', () => resolve(connection.error)));
      await running.frontEnd.endConnections(1_000);
      expect(await closedBy).toMatchObject({ condition: 'amqp:connection:forced' });
      await gone;
    } finally {
      await running.close();
    }
  });
});
