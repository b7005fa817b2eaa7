export * from './connector';
export { BuiltInHub, type BuiltInHubOptions } from './builtin-hub';
export { DeviceRegistry, toHubDevice, validateIdentity, type DeviceDocument, type TwinSections } from './registry';
export type { AccessPolicy } from './access-policy';
export type { TelemetryMessage } from './telemetry';
export { mergePatch } from './twin';
