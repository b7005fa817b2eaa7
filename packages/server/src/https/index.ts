export { createHttpsListener, type HttpsListenerOptions } from './listener';
export { sendDpsError } from './dps-error-response';
export type { Route, UpgradeListener } from './route';
