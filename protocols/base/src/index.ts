export * from './context';
export * from './tls-listener';
export * from './connection-limits';
export * from './end-gracefully';
export * from './deadline-queue';
