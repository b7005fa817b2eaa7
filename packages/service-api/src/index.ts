export { createServiceApi, type ServiceApi, type ServiceApiOptions } from './service-api';
export { MAX_BODY_BYTES } from './service-api';
export { MAX_BULK_ITEMS } from './bulk';
export { JSON_CONTENT_TYPE } from './respond';
