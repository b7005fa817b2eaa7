export * from './store';
export { SqliteStore, type SqliteStoreOptions } from './sqlite';
export * from './repositories';
