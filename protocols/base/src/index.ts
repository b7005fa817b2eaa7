export * from './context';
export * from './tls-listener';
