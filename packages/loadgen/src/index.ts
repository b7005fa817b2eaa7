export * from './stats';
export * from './device';
export * from './fleet';
export * from './baseline';
export * from './tls';
export * from './redis';
