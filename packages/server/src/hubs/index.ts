export { HubManager, type HubManagerOptions, type SyncResult } from './hub-manager';
