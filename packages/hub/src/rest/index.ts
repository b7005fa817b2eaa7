export { createHubRestServer } from './server';
export { authenticateService, type ServiceAuthContext } from './auth';
export { iotHubErrorBody, iotHubErrorCode, sendIotHubError } from './errors';
export { deviceEtag, deviceJson, twinEtag, twinJson } from './views';
export { getTwin, patchTwin } from './twins';
export { queryDevices } from './devices';
export type { RestRequest, RestResult } from './types';
