import type { Duplex } from 'node:stream';
import type { Logger } from '@opendps/model';
import type { ConnectionHandler, MqttChannel } from './channel';

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
    const handOver = (stream: Duplex, channel: MqttChannel, handler: ConnectionHandler): void => this.handOver(stream, channel, handler);
    this.onData = function (chunk) {
      const channel = channels.get(this);
      if (!channel) return;
      channel.receive(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
      if (channel.handler) handOver(this, channel, channel.handler);
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

  /**
   * The stream goes to another server with every byte it sent, CONNECT first, as if it had been
   * read by nobody: paused, its bytes put back, its listeners off.
   */
  private handOver(stream: Duplex, channel: MqttChannel, handler: ConnectionHandler): void {
    stream.pause();
    this.detach(stream);
    const input = channel.takeInput();
    if (input) stream.unshift(input);
    handler(stream, channel.context);
  }

  private detach(stream: Duplex): void {
    this.channels.delete(stream);
    stream.off('data', this.onData);
    stream.off('end', this.onEnd);
    stream.off('error', this.onError);
    stream.off('close', this.onClose);
  }

  attach(stream: Duplex, channel: MqttChannel): void {
    this.channels.set(stream, channel);
    stream.on('error', this.onError);
    stream.on('close', this.onClose);
    stream.on('end', this.onEnd);
    stream.on('data', this.onData);
  }
}
