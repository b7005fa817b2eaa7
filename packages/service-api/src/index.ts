export { createServiceApi, type ServiceApi, type ServiceApiOptions } from './service-api';
export { MAX_BODY_BYTES } from './service-api';
export { MAX_BULK_ITEMS } from './bulk';
