import type { ConnectionContext as BaseConnectionContext } from '@opendps/protocol-base';
import type { Proof } from '@opendps/registration';

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
}
