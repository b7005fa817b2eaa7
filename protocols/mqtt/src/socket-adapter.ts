import type { Duplex } from 'node:stream';
import type { Logger } from '@opendps/model';
import type { MqttChannel } from './channel';

/**
 * Socket adapter: feeds a byte stream (TLS socket, WebSocket stream) to its channel. Its listeners
 * are shared by every connection (`this` is the stream): a connection adds no closure to its socket.
 */
export class SocketAdapter {
  /** Every open connection, by its stream (a drain ends them). */
  readonly channels = new Map<Duplex, MqttChannel>();
  private readonly onData: (this: Duplex, chunk: Buffer | string) => void;
  private readonly onEnd: (this: Duplex) => void;
  private readonly onError: (this: Duplex, error: Error) => void;
  private readonly onClose: (this: Duplex) => void;

  constructor(logger: Logger) {
    const channels = this.channels;
    this.onData = function (chunk) {
      channels.get(this)?.receive(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    };
    // The peer's FIN: nothing more will come, and MQTT has nothing to send without a request.
    this.onEnd = function () {
      this.destroy();
    };
    this.onError = function (error) {
      logger.debug({ err: error.message }, 'MQTT connection closed on error');
    };
    this.onClose = function () {
      channels.get(this)?.closed();
      channels.delete(this);
    };
  }

  attach(stream: Duplex, channel: MqttChannel): void {
    this.channels.set(stream, channel);
    stream.on('error', this.onError);
    stream.on('close', this.onClose);
    stream.on('end', this.onEnd);
    stream.on('data', this.onData);
  }
}
