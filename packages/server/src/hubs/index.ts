export { HubManager, bareHost, type HubManagerOptions, type SyncResult } from './hub-manager';
export { hubConnectRouter, hubRestRoute } from './device-listener-routes';
