/**
 * One start/ready/stop for everything the server runs. Listeners (HTTPS, MQTT, AMQP, built-in hubs)
 * register here; `start` brings them up in order and reports the ports they really took, `stop`
 * closes them in reverse order, then runs the cleanups (store, timers).
 */
export interface Listener {
  /** `https`, `mqtt`, `amqp`, `hub:<name>`: the key its port is reported under. */
  readonly name: string;
  /** Resolves with the port actually bound (the configured one, or a free one for 0). */
  start(): Promise<number>;
  stop(): Promise<void>;
}

export class Lifecycle {
  private readonly listeners: Listener[] = [];
  private readonly started: Listener[] = [];
  private readonly cleanups: Array<() => unknown> = [];
  private stopping: Promise<void> | undefined;

  add(listener: Listener): void {
    this.listeners.push(listener);
  }

  /** Runs on stop after the listeners closed, last registered first. */
  onStop(cleanup: () => unknown): void {
    this.cleanups.push(cleanup);
  }

  /** Starts every listener; if one fails, the ones already up are stopped and the error rethrown. */
  async start(): Promise<Record<string, number>> {
    const ports: Record<string, number> = {};
    try {
      for (const listener of this.listeners) {
        ports[listener.name] = await listener.start();
        this.started.push(listener);
      }
    } catch (error) {
      await this.stop();
      throw error;
    }
    return ports;
  }

  /** Idempotent; every step runs even if an earlier one fails, and the first failure is rethrown. */
  stop(): Promise<void> {
    this.stopping ??= this.stopAll();
    return this.stopping;
  }

  private async stopAll(): Promise<void> {
    let failure: unknown;
    const steps = [
      ...[...this.started].reverse().map((listener) => () => listener.stop()),
      ...[...this.cleanups].reverse(),
    ];
    for (const step of steps) {
      try {
        await step();
      } catch (error) {
        failure ??= error;
      }
    }
    if (failure !== undefined) throw failure;
  }
}
