import type { HubConnector } from '@opendps/hub';
import type { LinkedHub } from '@opendps/model';

/**
 * Where the registration service finds the connector of a linked hub. The server implements it over
 * its running built-in hubs (and, later, Azure IoT Hub connectors built from connection strings).
 */
export interface HubDirectory {
  /** Throws `Errors.hubNotFound` / `Errors.hubUnavailable` when the hub cannot be reached. */
  connector(hub: LinkedHub): HubConnector;
}
