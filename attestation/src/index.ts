export * from './sas';
export * from './x509Chain';
export { basicConstraints, type BasicConstraints } from './x509Extensions';
export * from './x509Enrollment';
export * from './caCertificate';
export * as tpm from './tpm';
export { GroupKeySearch, type SymmetricKeyGroupKeys } from './groupKeySearch';
