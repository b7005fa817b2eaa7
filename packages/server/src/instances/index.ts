export { bootstrapInstances, instanceCollection, DEFAULT_INSTANCE } from './bootstrap';
export { createInstanceRegistry, type InstanceRegistry } from './registry';
export { toLinkedHub } from './linked-hubs';
