/**
 * The Lua side of the Redis backend. Every script touches one collection only, and every key of a
 * collection carries the same hash tag (`opendps:{scope/collection}:…`), so each script runs on one
 * Cluster slot. Scripts read the server clock (`TIME`), so expiry does not depend on node clocks.
 *
 * A collection checked atomically with another shares that one's hash tag and adds its own name:
 * a scope's CA certificates are under `opendps:{scope/enrollmentGroups}:caCertificates:`.
 *
 * Per collection, under the prefix P:
 *   P doc:<id>     hash  e = etag, v = JSON value; PEXPIREAT when the document has a TTL
 *   P ids          zset  every id, score 0: lexicographic order for paging (ZRANGEBYLEX)
 *   P exp          zset  id -> expiry (epoch ms) of documents with a TTL, for the sweep
 *   P ix:<id>      set   the index members of the document ("<index>:<key>"), to undo them
 *   P idx:<member> zset  the ids under one index key, score 0
 *   P version      string the version token of a versioned collection (store.ts VERSIONED_COLLECTIONS)
 */

const PRELUDE = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Removes every trace of one document: the hash, its place in ids and exp, its index entries.
local function drop(prefix, id)
  redis.call('DEL', prefix .. 'doc:' .. id)
  redis.call('ZREM', prefix .. 'ids', id)
  redis.call('ZREM', prefix .. 'exp', id)
  local ix = prefix .. 'ix:' .. id
  for _, member in ipairs(redis.call('SMEMBERS', ix)) do
    redis.call('ZREM', prefix .. 'idx:' .. member, id)
  end
  redis.call('DEL', ix)
end

-- Redis expires the hash itself; this removes the bookkeeping of up to 1000 expired documents.
local function sweep(prefix, now)
  local expired = redis.call('ZRANGEBYSCORE', prefix .. 'exp', '-inf', string.format('%d', now), 'LIMIT', 0, 1000)
  for _, id in ipairs(expired) do drop(prefix, id) end
end
`;

/**
 * KEYS[1] = P ids. ARGV: prefix, id, etag, value, ifMatch ('' none, '*', or a quoted etag),
 * ifNoneMatch ('' or '*'), ttl ms ('0' none), limit ('0' none), versioned ('1': the etag becomes
 * the collection's version, '' not), the number N of required documents, their N hash keys (same
 * slot), then the index members.
 * Returns 0 (written), 409, 412, 507 (limit reached by a new document) or 1000 + i (required
 * document i missing).
 */
export const PUT = `${PRELUDE}
local prefix, id = ARGV[1], ARGV[2]
local now = now_ms()
sweep(prefix, now)
local doc = prefix .. 'doc:' .. id
local current = redis.call('HGET', doc, 'e')
if ARGV[6] == '*' and current then return 409 end
if ARGV[5] ~= '' and (not current or (ARGV[5] ~= '*' and ARGV[5] ~= current)) then return 412 end
local required = tonumber(ARGV[10])
for i = 1, required do
  if redis.call('EXISTS', ARGV[10 + i]) == 0 then return 1000 + i end
end
local limit = tonumber(ARGV[8])
if limit > 0 and not current then
  local live = redis.call('ZCARD', KEYS[1]) - redis.call('ZCOUNT', prefix .. 'exp', '-inf', string.format('%d', now))
  if live >= limit then return 507 end
end
drop(prefix, id)
redis.call('HSET', doc, 'e', ARGV[3], 'v', ARGV[4])
redis.call('ZADD', KEYS[1], 0, id)
local ttl = tonumber(ARGV[7])
if ttl > 0 then
  local at = string.format('%d', now + ttl)
  redis.call('PEXPIREAT', doc, at)
  redis.call('ZADD', prefix .. 'exp', at, id)
end
local ix = prefix .. 'ix:' .. id
for i = 11 + required, #ARGV do
  redis.call('ZADD', prefix .. 'idx:' .. ARGV[i], 0, id)
  redis.call('SADD', ix, ARGV[i])
end
if ARGV[9] == '1' then redis.call('SET', prefix .. 'version', ARGV[3]) end
return 0
`;

/**
 * KEYS[1] = P ids. ARGV: prefix, id, ifMatch, the collection's next version ('' when it keeps
 * none), then optionally a guard: the index zset of another collection (same slot) and that
 * collection's prefix. Returns 1 (deleted), 0 (nothing there),
 * 412, or 409 when a live document of the other collection is under the guard's index key.
 */
export const DELETE = `${PRELUDE}
local prefix, id = ARGV[1], ARGV[2]
sweep(prefix, now_ms())
local current = redis.call('HGET', prefix .. 'doc:' .. id, 'e')
if not current then return 0 end
if ARGV[3] ~= '' and ARGV[3] ~= '*' and ARGV[3] ~= current then return 412 end
if ARGV[5] then
  for _, other in ipairs(redis.call('ZRANGEBYLEX', ARGV[5], '-', '+')) do
    if redis.call('EXISTS', ARGV[6] .. 'doc:' .. other) == 1 then return 409 end
  end
end
drop(prefix, id)
if ARGV[4] ~= '' then redis.call('SET', prefix .. 'version', ARGV[4]) end
return 1
`;

/**
 * KEYS[1] = P ids. ARGV: prefix, source (the zset under the prefix: 'ids' or 'idx:<member>'),
 * after ('' from the start), limit ('0' no limit). Returns [id, etag, value, id, etag, value, …]
 * of live documents in id order; ids whose hash has expired are skipped.
 */
export const RANGE = `${PRELUDE}
local prefix = ARGV[1]
sweep(prefix, now_ms())
local source = prefix .. ARGV[2]
local from = '-'
if ARGV[3] ~= '' then from = '(' .. ARGV[3] end
local limit = tonumber(ARGV[4])
local out, found = {}, 0
while limit == 0 or found < limit do
  local want = 1000
  if limit > 0 then want = limit - found end
  local batch = redis.call('ZRANGEBYLEX', source, from, '+', 'LIMIT', 0, want)
  for _, id in ipairs(batch) do
    local d = redis.call('HMGET', prefix .. 'doc:' .. id, 'e', 'v')
    if d[1] then
      out[#out + 1] = id
      out[#out + 1] = d[1]
      out[#out + 1] = d[2]
      found = found + 1
    end
    from = '(' .. id
  end
  if #batch < want then break end
end
return out
`;

/** KEYS[1] = P ids. ARGV: prefix. The number of live documents. */
export const COUNT = `${PRELUDE}
local prefix = ARGV[1]
local now = now_ms()
sweep(prefix, now)
return redis.call('ZCARD', KEYS[1]) - redis.call('ZCOUNT', prefix .. 'exp', '-inf', string.format('%d', now))
`;

/** KEYS[1] = the counter. ARGV: window seconds. INCR, and the window starts with the first one. */
export const INCREMENT = `
local n = redis.call('INCR', KEYS[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
`;
