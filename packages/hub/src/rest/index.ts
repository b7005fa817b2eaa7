export { createHubRestServer } from './server';
export { authenticateService, type ServiceAuthContext } from './auth';
export { iotHubErrorBody, iotHubErrorCode } from './errors';
export { deviceEtag, deviceJson, twinEtag, twinJson } from './views';
