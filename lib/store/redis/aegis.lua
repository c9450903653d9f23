#!lua name=aegis
-- The gateway's state in Redis (man aegis-gateway(1), CLUSTER; store/redis/redis_gateway_store.h).
-- Every gateway loads this library at start (FUNCTION LOAD REPLACE); each function runs
-- atomically, so a commit is all or nothing and survives a failover as one unit.
--
-- Per identity K (the hex of its public key, a hash tag for Redis Cluster):
--   aegis:{K}:s  hash: id, token, used (token last used, ms), last (highest sequence), acked,
--                pending (messages in the inbox), node (the gateway holding its session), epoch
--   aegis:{K}:q  stream: the inbox, entry ID SEQ-0, fields c (channel), b (batch), m (messages),
--                t (stored, ms)
-- Shared: aegis:subs (hash K -> "id\npattern\n..."), aegis:subs:v (its version),
--   aegis:subs:log (zset K by the version that last changed it), aegis:oldest (zset K by the
--   store time of its oldest entry, for expiry), aegis:ids (set of every K).
-- Pub/sub (PREFIX is per database): PREFIX.."node:"..NODE gets "w K..." (inboxes grew) and
-- "r K EPOCH" (a newer session of K opened elsewhere); PREFIX.."subs" gets each new version.

local LIBRARY_VERSION = '1'

local SUBS = 'aegis:subs'
local SUBS_VERSION = 'aegis:subs:v'
local SUBS_LOG = 'aegis:subs:log'
local OLDEST = 'aegis:oldest'
local IDS = 'aegis:ids'

local function num(value)
  if not value then return 0 end
  return tonumber(value) or 0
end

-- Sequences reach 2^50: never through tostring (it would write 1.7e+15).
local function str(n)
  return string.format('%.0f', n)
end

local function state_key(k) return 'aegis:{' .. k .. '}:s' end
local function inbox_key(k) return 'aegis:{' .. k .. '}:q' end

local function field(fields, name)
  for i = 1, #fields, 2 do
    if fields[i] == name then return fields[i + 1] end
  end
  return nil
end

-- aegis:oldest follows the inbox's first entry; an empty inbox is not in it.
local function note_oldest(k)
  local first = redis.call('XRANGE', inbox_key(k), '-', '+', 'COUNT', 1)
  if #first == 0 then
    redis.call('ZREM', OLDEST, k)
  else
    redis.call('ZADD', OLDEST, num(field(first[1][2], 't')), k)
  end
end

-- Everything up to SEQ (never past what was handed out) leaves the inbox.
local function acknowledge(k, seq)
  local s = state_key(k)
  local row = redis.call('HMGET', s, 'last', 'acked')
  local last, acked = num(row[1]), num(row[2])
  if seq > last then seq = last end
  if seq <= acked then return end
  local q = inbox_key(k)
  local gone = redis.call('XRANGE', q, '-', str(seq) .. '-0')
  local messages = 0
  for _, entry in ipairs(gone) do messages = messages + num(field(entry[2], 'm')) end
  if #gone > 0 then redis.call('XTRIM', q, 'MINID', str(seq + 1) .. '-0') end
  redis.call('HSET', s, 'acked', str(seq))
  if messages > 0 then redis.call('HINCRBY', s, 'pending', -messages) end
  note_oldest(k)
end

-- aegis_open(K, ID, PRESENTED, FRESH, NOW_MS, MAX_AGE_MS, NODE, PREFIX)
--   -> {resumed, token, acked, epoch, "id\npatterns..." or ""}
local function open(_, args)
  local k, id, presented, fresh, now, max_age, node, prefix =
    args[1], args[2], args[3], args[4], num(args[5]), num(args[6]), args[7], args[8]
  local s = state_key(k)
  local row = redis.call('HMGET', s, 'token', 'used', 'acked', 'node')
  local resumed = presented ~= '' and row[1] == presented and now <= num(row[2]) + max_age
  local token = fresh
  if resumed then token = presented end
  local epoch = redis.call('HINCRBY', s, 'epoch', 1)
  redis.call('HSET', s, 'id', id, 'token', token, 'used', str(now), 'node', node)
  redis.call('SADD', IDS, k)
  local older = row[4]
  if older and older ~= '' and older ~= node then
    redis.call('PUBLISH', prefix .. 'node:' .. older, 'r ' .. k .. ' ' .. epoch)
  end
  return {resumed and 1 or 0, token, str(num(row[3])), epoch, redis.call('HGET', SUBS, k) or ''}
end

-- aegis_close(K, TOKEN, NOW_MS, EPOCH): the session of EPOCH ended (token expiry counts from now).
local function close(_, args)
  local k, token, now, epoch = args[1], args[2], args[3], num(args[4])
  local s = state_key(k)
  local row = redis.call('HMGET', s, 'token', 'epoch')
  if row[1] == token then redis.call('HSET', s, 'used', now) end
  if num(row[2]) == epoch then redis.call('HSET', s, 'node', '') end
  return 1
end

-- aegis_subscribe(K, ID, PATTERNS, PREFIX): the identity's set becomes PATTERNS (one a line; empty:
-- none). Returns the new version of the sets.
local function subscribe(_, args)
  local k, id, patterns, prefix = args[1], args[2], args[3], args[4]
  if patterns == '' then
    redis.call('HDEL', SUBS, k)
  else
    redis.call('HSET', SUBS, k, id .. '\n' .. patterns)
  end
  local version = redis.call('INCR', SUBS_VERSION)
  redis.call('ZADD', SUBS_LOG, version, k)
  redis.call('SADD', IDS, k)
  redis.call('HSET', state_key(k), 'id', id)
  redis.call('PUBLISH', prefix .. 'subs', version)
  return version
end

-- aegis_subs_since(VERSION) -> {current, K, set, K, set, ...}: the sets changed after VERSION
-- ("" for a set removed), all of them when VERSION is 0.
local function subs_since(_, args)
  local since = num(args[1])
  local current = num(redis.call('GET', SUBS_VERSION))
  local out = {str(current)}
  if since >= current then return out end
  for _, k in ipairs(redis.call('ZRANGEBYSCORE', SUBS_LOG, '(' .. str(since), '+inf')) do
    out[#out + 1] = k
    out[#out + 1] = redis.call('HGET', SUBS, k) or ''
  end
  return out
end

-- aegis_commit(VERSION, NODE, PREFIX, NOW_MS, MAX_MESSAGES, N_ACKS, [K, SEQ]..., N_APPENDS,
--              [CHANNEL, BATCH, MESSAGES, N_RECIPIENTS, K...]...)
--   -> {"stale", current}: routed against another version of the sets, nothing stored;
--      {"ok", ID, DROPPED, ...}: stored, with the oldest messages dropped per identity id.
-- Sequences are max(last + 1, Redis's clock in microseconds): after a failover that lost a tail
-- they still never repeat.
local function commit(_, args)
  local version, node, prefix, now, max_messages = args[1], args[2], args[3], num(args[4]), num(args[5])
  local i = 6
  local n_acks = num(args[i])
  local acks_at = i + 1
  i = acks_at + 2 * n_acks
  local n_appends = num(args[i])
  i = i + 1
  if n_appends > 0 then
    local current = redis.call('GET', SUBS_VERSION) or '0'
    if current ~= version then return {'stale', current} end
  end
  for j = 0, n_acks - 1 do acknowledge(args[acks_at + 2 * j], num(args[acks_at + 2 * j + 1])) end
  local time = redis.call('TIME')
  local now_us = num(time[1]) * 1000000 + num(time[2])
  local dropped, wake, wake_order = {}, {}, {}
  for _ = 1, n_appends do
    local channel, batch, messages, n = args[i], args[i + 1], num(args[i + 2]), num(args[i + 3])
    i = i + 4
    for _ = 1, n do
      local k = args[i]
      i = i + 1
      local s, q = state_key(k), inbox_key(k)
      local row = redis.call('HMGET', s, 'last', 'node', 'id')
      local seq = math.max(num(row[1]) + 1, now_us)
      redis.call('XADD', q, str(seq) .. '-0', 'c', channel, 'b', batch, 'm', str(messages), 't', str(now))
      redis.call('HSET', s, 'last', str(seq))
      local pending = redis.call('HINCRBY', s, 'pending', messages)
      redis.call('ZADD', OLDEST, 'NX', str(now), k)
      redis.call('SADD', IDS, k)
      local lost = 0
      while pending > max_messages do
        local first = redis.call('XRANGE', q, '-', '+', 'COUNT', 1)
        if #first == 0 then break end
        local m = num(field(first[1][2], 'm'))
        redis.call('XDEL', q, first[1][1])
        pending = redis.call('HINCRBY', s, 'pending', -m)
        lost = lost + m
      end
      if lost > 0 then
        note_oldest(k)
        local id = row[3] or k
        dropped[id] = (dropped[id] or 0) + lost
      end
      local holder = row[2]
      if holder and holder ~= '' and holder ~= node then
        if not wake[holder] then
          wake[holder] = {}
          wake_order[#wake_order + 1] = holder
        end
        wake[holder][#wake[holder] + 1] = k
      end
    end
  end
  for _, holder in ipairs(wake_order) do
    redis.call('PUBLISH', prefix .. 'node:' .. holder, 'w ' .. table.concat(wake[holder], ' '))
  end
  local out = {'ok'}
  for id, lost in pairs(dropped) do
    out[#out + 1] = id
    out[#out + 1] = str(lost)
  end
  return out
end

-- aegis_expire(NOW_MS, MAX_AGE_MS) -> {ID, EXPIRED, ...}: entries stored before NOW - MAX_AGE go.
local function expire(_, args)
  local cutoff = num(args[1]) - num(args[2])
  local out = {}
  if cutoff <= 0 then return out end
  for _, k in ipairs(redis.call('ZRANGEBYSCORE', OLDEST, '-inf', '(' .. str(cutoff), 'LIMIT', 0, 1000)) do
    local s, q = state_key(k), inbox_key(k)
    local lost, done = 0, false
    while not done do
      local entries = redis.call('XRANGE', q, '-', '+', 'COUNT', 100)
      if #entries == 0 then break end
      for _, entry in ipairs(entries) do
        if num(field(entry[2], 't')) >= cutoff then
          done = true
          break
        end
        redis.call('XDEL', q, entry[1])
        lost = lost + num(field(entry[2], 'm'))
      end
    end
    if lost > 0 then
      redis.call('HINCRBY', s, 'pending', -lost)
      out[#out + 1] = redis.call('HGET', s, 'id') or k
      out[#out + 1] = str(lost)
    end
    note_oldest(k)
  end
  return out
end

-- aegis_summary() -> {K, ID, PENDING, LAST_SEEN_MS, ...} for every identity.
local function summary(_, _)
  local out = {}
  for _, k in ipairs(redis.call('SMEMBERS', IDS)) do
    local row = redis.call('HMGET', state_key(k), 'id', 'pending', 'used')
    out[#out + 1] = k
    out[#out + 1] = row[1] or ''
    out[#out + 1] = str(num(row[2]))
    out[#out + 1] = str(num(row[3]))
  end
  return out
end

local function library_version(_, _)
  return LIBRARY_VERSION
end

redis.register_function('aegis_open', open)
redis.register_function('aegis_close', close)
redis.register_function('aegis_subscribe', subscribe)
redis.register_function{function_name = 'aegis_subs_since', callback = subs_since, flags = {'no-writes'}}
redis.register_function('aegis_commit', commit)
redis.register_function('aegis_expire', expire)
redis.register_function{function_name = 'aegis_summary', callback = summary, flags = {'no-writes'}}
redis.register_function{function_name = 'aegis_version', callback = library_version, flags = {'no-writes'}}
