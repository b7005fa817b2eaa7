/** The part of rhea's browser bundle the fleet uses (rhea ships typings for its node entry only). */
declare module 'rhea/dist/rhea-umd.js' {
  interface Emitter {
    on(event: string, listener: (context: RheaContext) => void): void;
    once(event: string, listener: (context: RheaContext) => void): void;
    removeListener(event: string, listener: (context: RheaContext) => void): void;
  }
  export interface RheaMessage {
    correlation_id?: unknown;
    application_properties?: Record<string, unknown>;
    body?: unknown;
  }
  export interface RheaContext {
    message?: RheaMessage;
    delivery?: { remote_state?: { error?: { condition?: string; description?: string } } };
    connection: { error?: { condition?: string; description?: string } };
    error?: Error | { condition?: string; description?: string };
  }
  export interface RheaSender extends Emitter {
    send(message: RheaMessage): unknown;
  }
  export type RheaReceiver = Emitter;
  export interface RheaConnection extends Emitter {
    open_receiver(options: unknown): RheaReceiver;
    open_sender(options: unknown): RheaSender;
    close(): void;
  }
  export interface RheaContainer {
    create_container(options: { id: string }): RheaContainer;
    connect(options: unknown): RheaConnection;
    websocket_connect(ws: typeof WebSocket): (url: string, protocols: string[]) => unknown;
    generate_uuid(): string;
  }
  const rhea: RheaContainer;
  export default rhea;
}
