import type { ConnectionContext as BaseConnectionContext } from '@opendps/protocol-base';
import type { Proof } from '@opendps/registration';
import type { RequestDeadline } from './request-deadline';

/** How a connection reached us; the TLS or WebSocket adapter fills it in. */
export type ConnectionContext = BaseConnectionContext<'mqtt' | 'mqtt-ws'>;

/** Who the CONNECT says the device is; authenticated by the registration service on every request. */
export interface DeviceIdentity {
  idScope: string;
  registrationId: string;
  apiVersion?: string;
  proof: Proof;
}

/** One MQTT connection's state. DPS has no persistent sessions: it lives and dies with the socket. */
export interface DeviceSession {
  context: ConnectionContext;
  device?: DeviceIdentity;
  /** QoS granted on `$dps/registrations/res/#`; responses go out at it (0 until subscribed). */
  responseQos: 0 | 1;
  /** When this connection has had its chance (see RequestDeadline). */
  deadline: RequestDeadline;
  /** Ends the connection once what was written has gone out, and logs why. */
  close(reason: string): void;
  closing: boolean;
}
