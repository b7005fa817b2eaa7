export * from './types';
export { ConfigError } from './config-error';
export { readConfigFile } from './config-file';
export { validateConfigFile } from './file-schema';
export { resolveConfig, withDefaults } from './resolve';
export { START_SETTINGS, settingsFromEnv, type RawSettings, type StartFlag } from './settings';
export { webhookPolicy } from './webhooks';
export { browserHostOf, parseOrigins, type OriginList } from './browser';
