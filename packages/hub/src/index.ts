export * from './connector';
export { BuiltInHub, type BuiltInHubOptions } from './builtin-hub';
export { DeviceRegistry, toHubDevice, validateIdentity, type DeviceDocument, type TwinSections } from './registry';
export type { AccessPolicy } from './access-policy';
export type { TelemetryMessage } from './telemetry';
export { mergePatch } from './twin';
export type { DevicePrecondition } from './registry';
export { dispatchByFirstByte, MQTT_CONNECT_FIRST_BYTE, type FirstByteRoutes } from './dispatch';
export { createHubRestServer, authenticateService, iotHubErrorBody, iotHubErrorCode } from './rest';
// The admin API's view of built-in hub devices reuses the REST handlers (packages/server/src/admin/hub-devices.ts).
export { getTwin, patchTwin, queryDevices, type RestRequest, type RestResult } from './rest';
export {
  AzureIotHubConnector,
  IotHubRestClient,
  IOT_HUB_API_VERSION,
  parseHubConnectionString,
  type AzureIotHubConnectorOptions,
  type HubConnectionString,
  type IotHubRestClientOptions,
} from './azure';
export { isHubEvent, type HubEvent, type HubEventBus } from './events';
