export * from './types';
export * from './errors';
export * from './time';
export * from './validation';
export * from './certificates';
export * from './instance';
export { readElement, certificateVersion } from './der';
export * from './logger';
export * from './tls';
