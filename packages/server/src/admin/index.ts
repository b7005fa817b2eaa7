export { createAdminApi, ADMIN_PREFIX, type AdminApiOptions } from './api';
export { ensureAdminPolicy, adminConnectionString, ADMIN_POLICY } from './admin-key';
export { MAX_LINKED_HUBS } from './validate';
