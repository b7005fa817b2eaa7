export { createDeviceApi, type DeviceApiOptions } from './device-api';
export { applyCors, type CorsOrigins } from './cors';
export { createWebSocketUpgrade, WEBSOCKET_PATH, type WebSocketHandler, type WebSocketUpgrade, type WebSocketUpgradeOptions } from './websocket';
export type { HttpRoute } from './route';
export { isDevicePath, parseDevicePath, type DevicePath } from './paths';
export { peerCertificateChain } from '@opendps/model';
export { DEFAULT_MAX_BODY_BYTES } from './device-api';
export { JSON_CONTENT_TYPE } from '@opendps/model';
