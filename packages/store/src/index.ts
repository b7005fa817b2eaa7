export * from './store';
export { SqliteStore, type SqliteStoreOptions } from './sqlite';
export { RedisStore, redactUrl, type RedisStoreOptions, type RedisConnectOptions } from './redis';
export { openStore, type OpenStoreOptions } from './open';
export * from './repositories';
export { etagMatches } from './etag';
export { openRedisChannel, type BroadcastChannel, type RedisChannelOptions } from './channel';
