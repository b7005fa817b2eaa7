export * from './sas';
