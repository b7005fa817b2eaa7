import type { Duplex } from 'node:stream';
import type { Logger } from '@opendps/model';
import type { DeadlineQueue, Timers } from '@opendps/protocol-base';
import { CLOSE_GRACE_MS } from './options';
import { RequestDeadline } from './request-deadline';
import type { ConnectionContext, DeviceIdentity, DeviceSession } from './session';

/** What every connection of one front-end shares. */
export interface ConnectionSettings {
  logger: Logger;
  timers: Timers;
  deadlines: DeadlineQueue;
  requestTimeoutMs: number;
  refusalGraceMs: number;
}

/**
 * One DPS MQTT connection: its session state, with its behaviour on the prototype, so that an idle
 * connection holds this object and its deadline and no closures of its own (docs/scale.md).
 */
export class DpsConnection implements DeviceSession {
  device?: DeviceIdentity;
  responseQos: 0 | 1 = 0;
  closing = false;
  readonly deadline: RequestDeadline;

  constructor(
    readonly stream: Duplex,
    readonly context: ConnectionContext,
    private readonly settings: ConnectionSettings,
  ) {
    this.deadline = new RequestDeadline(settings.requestTimeoutMs, settings.refusalGraceMs, settings.deadlines, this);
  }

  /** Ends the connection once what was written has gone out, and logs why. */
  close(reason: string): void {
    const stream = this.stream;
    if (this.closing || stream.destroyed) return;
    this.closing = true;
    this.deadline.stop();
    this.settings.logger.info(
      { registrationId: this.device?.registrationId, remoteAddress: this.context.remoteAddress, transport: this.context.transport, reason },
      'closing the MQTT connection',
    );
    // end, not destroy: what was written (the refusal's response) goes out before the FIN
    stream.end();
    const cancel = this.settings.timers.schedule(CLOSE_GRACE_MS, () => stream.destroy());
    stream.once('close', cancel);
  }
}
