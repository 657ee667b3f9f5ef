#!lua name=fraised
-- fraised's Redis functions: the one ordering authority of a fraised
-- cluster. Loaded by every node at start (FUNCTION LOAD REPLACE); any
-- Redis client may call them directly (see the README, "Scaling out").
--
-- Keys of a topic T: fraised:m:T (hash: e = epoch, o = last offset) and
-- fraised:s:T (stream: entry id <offset>-1, field p = payload). Channel:
-- fraised:c:T. A message on the channel is "F1 <offset> <epoch>\n" and
-- the payload.

local digits = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'

local function base62(n, width)
  local s = ''
  for _ = 1, width do
    local d = n % 62
    s = string.sub(digits, d + 1, d + 1) .. s
    n = math.floor(n / 62)
  end
  return s
end

-- newEpoch names a new run of a topic's stream: the server's clock in
-- microseconds, 10 characters of [0-9A-Za-z]. Calls are serialised, so a
-- topic never gets the same epoch twice unless the clock goes back.
local function newEpoch()
  local t = redis.call('TIME')
  return base62(tonumber(t[1]), 6) .. base62(tonumber(t[2]), 4)
end

-- fraised_publish KEYS: meta stream; ARGV: channel payload size ttl_ms meta_ttl_ms
-- Creates the epoch if absent (dropping any stream left from an older
-- one), takes the next offset, appends to the stream when size > 0
-- (MAXLEN ~ size, both keys expiring ttl_ms after the last publish), and
-- publishes. Returns {receivers, offset, epoch}.
local function publish(keys, args)
  local meta, stream = keys[1], keys[2]
  local channel, payload = args[1], args[2]
  local size, ttl, metaTTL = tonumber(args[3]) or 0, tonumber(args[4]) or 0, tonumber(args[5]) or 0
  local epoch = redis.call('HGET', meta, 'e')
  if not epoch then
    epoch = newEpoch()
    redis.call('DEL', stream)
    redis.call('HSET', meta, 'e', epoch, 'o', 0)
  end
  local offset = redis.call('HINCRBY', meta, 'o', 1)
  if size > 0 then
    local added = redis.pcall('XADD', stream, 'MAXLEN', '~', size, offset .. '-1', 'p', payload)
    if type(added) == 'table' and added.err then
      -- The stream is ahead of the offset: the offset lost writes the
      -- stream kept. Never reuse an offset: start a new epoch.
      epoch = newEpoch()
      redis.call('DEL', stream)
      redis.call('HSET', meta, 'e', epoch, 'o', 1)
      offset = 1
      redis.call('XADD', stream, 'MAXLEN', '~', size, '1-1', 'p', payload)
    end
    if ttl > 0 then
      redis.call('PEXPIRE', stream, ttl)
    end
  end
  if metaTTL > 0 then
    redis.call('PEXPIRE', meta, metaTTL)
  end
  local n = redis.call('PUBLISH', channel, 'F1 ' .. offset .. ' ' .. epoch .. '\n' .. payload)
  return {n, offset, epoch}
end

-- fraised_read KEYS: meta stream; ARGV: from count
-- Returns {epoch, last offset, offset1, payload1, offset2, payload2, ...}:
-- the topic's epoch ('' when it has none) and last offset, and up to count
-- entries of its stream from offset from on, in order (count 0: the
-- position only). One atomic read, so the entries belong to the epoch
-- returned.
local function read(keys, args)
  local m = redis.call('HMGET', keys[1], 'e', 'o')
  local out = {m[1] or '', tonumber(m[2] or '0')}
  if (tonumber(args[2]) or 0) <= 0 then
    return out -- the position only
  end
  local entries = redis.call('XRANGE', keys[2], args[1] .. '-0', '+', 'COUNT', args[2])
  for _, e in ipairs(entries) do
    out[#out + 1] = tonumber(string.match(e[1], '^(%d+)-'))
    out[#out + 1] = e[2][2]
  end
  return out
end

-- fraised_rotate KEYS: meta stream; ARGV: epoch
-- Starts a new epoch (offsets from 1, an empty stream) if the topic's
-- epoch is still the one given: a node that saw offsets go backwards (a
-- replica promoted after losing writes) calls it so the lost run is never
-- reused. Returns the topic's epoch afterwards.
local function rotate(keys, args)
  local cur = redis.call('HGET', keys[1], 'e')
  if cur ~= args[1] then
    return cur or ''
  end
  local epoch = newEpoch()
  redis.call('DEL', keys[2])
  redis.call('HSET', keys[1], 'e', epoch, 'o', 0)
  return epoch
end

-- fraised_publish_once KEYS: meta stream marks; ARGV: as fraised_publish,
-- then part seq
-- Publishes like fraised_publish unless the hash marks (one per event
-- source: fraised:src:<lineage>:<name>) already holds, for part (an outbox
-- shard), a seq at or above this one: the event was published before (a
-- source's new forwarder re-reading rows the old one had published but not
-- yet marked read in its database). The mark is written in the same call,
-- so an event is numbered at most once, and after the publish, so a
-- publish that errors (nothing sent on the channel) leaves no mark to
-- drop its retry. seq is a decimal string without
-- leading zeros (compared by length, then bytes: no float rounding).
-- Returns {receivers, offset, epoch, 1} when published, {0, 0, '', 0}
-- for a duplicate.
local function publish_once(keys, args)
  local marks, part, seq = keys[3], args[6], args[7]
  local last = redis.call('HGET', marks, part)
  if last and (#last > #seq or (#last == #seq and last >= seq)) then
    return {0, 0, '', 0}
  end
  local r = publish(keys, args)
  redis.call('HSET', marks, part, seq)
  r[4] = 1
  return r
end

redis.register_function('fraised_publish', publish)
redis.register_function('fraised_publish_once', publish_once)
redis.register_function{function_name = 'fraised_read', callback = read, flags = {'no-writes'}}
redis.register_function('fraised_rotate', rotate)
