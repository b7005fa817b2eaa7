export * from './store';
export * from './repositories';
