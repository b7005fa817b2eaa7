/** The tests' private redis-server: the same launcher the benchmark uses. */
export { startRedis, type RedisServer, type RedisServerOptions } from '@opendps/loadgen';
