"""The Lua scripts behind ``asud.store.records``: each state change of a build, atomic on the server.

Kept apart from the Python so each script reads as one piece. The key layout and the reasons are in
``asud.store.records``. Lua sees a missing hash field as ``false``; times are decimal Unix seconds.
"""

from __future__ import annotations

from asud.store.redis import Script

__all__ = ["FIND", "FINISH", "FORGET", "PURGE", "REQUEUE", "STAGE", "STARTED", "SUBMIT", "VIEW"]

#: ``{echo, build fields, rank or -1}`` of a request whose build record exists, else ``false``.
_VIEW_FUNCTION = """
local function view(request_key, build_prefix, queued_key)
  local request = redis.call('HMGET', request_key, 'image_key', 'request')
  if not request[1] then return false end
  local build = redis.call('HGETALL', build_prefix .. request[1])
  if #build == 0 then return false end
  local rank = redis.call('ZRANK', queued_key, request[1])
  return {request[2], build, rank or -1}
end
"""

#: KEYS: view's request key, queued zset. ARGV: build key prefix.
VIEW = Script(_VIEW_FUNCTION + "return view(KEYS[1], ARGV[1], KEYS[2])")

#: KEYS: build, request, queued, clients, seq, bin_dirs, stream, request index.
#: ARGV: image_key, request_hash, client, now, job, echo, bin_dir, store_kind, result_ttl, failure_ttl,
#: max_pending_jobs, max_pending_per_client, request_keep_seconds.
#: Returns {'overloaded', queued} | {'limited', mine} | {'ok', created, view}.
SUBMIT = Script(_VIEW_FUNCTION + """
local build, request, queued, clients = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local image_key, request_hash, client, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local status = redis.call('HGET', build, 'status')
local renew = not status
if status == 'done' or status == 'failed' then
  local expires = tonumber(redis.call('HGET', build, 'expires_at'))
  renew = expires ~= nil and expires <= tonumber(now)
end
local created = 0
if renew then
  local waiting = redis.call('ZCARD', queued)
  if waiting >= tonumber(ARGV[11]) then return {'overloaded', waiting} end
  local mine = tonumber(redis.call('HGET', clients, client) or '0')
  if mine >= tonumber(ARGV[12]) then return {'limited', mine} end
  local number = redis.call('INCR', KEYS[5])
  local entry = redis.call('XADD', KEYS[7], '*', 'image_key', image_key)
  redis.call('DEL', build)
  redis.call('HSET', build, 'image_key', image_key, 'status', 'queued', 'stage', 'init', 'seq', number,
    'queued_at', now, 'attempts', 0, 'job', ARGV[5], 'client', client, 'bin_dir', ARGV[7],
    'store_kind', ARGV[8], 'result_ttl', ARGV[9], 'failure_ttl', ARGV[10], 'entry', entry,
    'request_hash', request_hash, 'request', ARGV[6])
  redis.call('ZADD', queued, number, image_key)
  redis.call('HINCRBY', clients, client, 1)
  redis.call('ZADD', KEYS[6], '+inf', ARGV[7])
  created = 1
end
if redis.call('EXISTS', request) == 0 then
  redis.call('HSET', request, 'request_hash', request_hash, 'image_key', image_key, 'request', ARGV[6],
    'client', client, 'enqueued_at', now)
else
  redis.call('HSET', request, 'image_key', image_key)
end
redis.call('EXPIRE', request, ARGV[13])
redis.call('ZADD', KEYS[8], 0, request_hash)
local prefix = string.sub(build, 1, #build - #image_key)
return {'ok', created, view(request, prefix, queued)}
""")

_UNQUEUE_FUNCTION = """
local function unqueue(queued, clients, image_key, client)
  if redis.call('ZREM', queued, image_key) == 1 then
    if redis.call('HINCRBY', clients, client, -1) <= 0 then redis.call('HDEL', clients, client) end
  end
end
"""

#: KEYS: build, queued, clients. ARGV: image_key, node, now, entry id ('' = any).
#: Returns the job (JSON) or false.
STARTED = Script(_UNQUEUE_FUNCTION + """
local b = redis.call('HMGET', KEYS[1], 'status', 'entry', 'client', 'job')
if b[1] ~= 'queued' and b[1] ~= 'started' then return false end
if ARGV[4] ~= '' and b[2] ~= ARGV[4] then return false end
unqueue(KEYS[2], KEYS[3], ARGV[1], b[3])
redis.call('HSET', KEYS[1], 'status', 'started', 'stage', 'init', 'started_at', ARGV[3], 'node', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
return b[4]
""")

#: KEYS: build. ARGV: node, stage. Returns 1 when written.
STAGE = Script("""
local b = redis.call('HMGET', KEYS[1], 'status', 'node')
if b[1] ~= 'started' or b[2] ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'stage', ARGV[2])
return 1
""")

#: KEYS: build, bin_dirs, queued, clients, image index. ARGV: image_key, node ('' = give up whoever holds
#: it), now, status, detail, error_kind, stdout, stderr, result, bin_dir ('' = keep), stale_keep.
#: Returns the finished record's fields, or false.
FINISH = Script(_UNQUEUE_FUNCTION + """
local b = redis.call('HMGET', KEYS[1], 'status', 'node', 'result_ttl', 'failure_ttl', 'bin_dir', 'client')
local node = ARGV[2]
if b[1] ~= 'started' and not (node == '' and b[1] == 'queued') then return false end
if node ~= '' and b[2] ~= node then return false end
if b[1] == 'queued' then unqueue(KEYS[3], KEYS[4], ARGV[1], b[6]) end
local status = ARGV[4]
local ttl = tonumber(status == 'done' and b[3] or b[4]) or 0
local expires = tonumber(ARGV[3]) + ttl
local bin_dir = ARGV[10]
if bin_dir == '' then bin_dir = b[5] or '' end
redis.call('HSET', KEYS[1], 'status', status, 'stage', status, 'finished_at', ARGV[3], 'detail', ARGV[5],
  'error_kind', ARGV[6], 'stdout', ARGV[7], 'stderr', ARGV[8], 'result', ARGV[9], 'bin_dir', bin_dir,
  'expires_at', string.format('%.6f', expires), 'entry', '')
redis.call('EXPIRE', KEYS[1], math.max(1, math.ceil(ttl + tonumber(ARGV[11]))))
if bin_dir ~= '' then redis.call('ZADD', KEYS[2], expires, bin_dir) end
if status == 'done' then redis.call('ZADD', KEYS[5], 0, ARGV[1]) end
return redis.call('HGETALL', KEYS[1])
""")

#: KEYS: build, queued, clients, stream. ARGV: image_key, node. Returns the new entry id, or false.
REQUEUE = Script("""
local b = redis.call('HMGET', KEYS[1], 'status', 'node', 'seq', 'client')
if b[1] ~= 'started' or b[2] ~= ARGV[2] then return false end
local entry = redis.call('XADD', KEYS[4], '*', 'image_key', ARGV[1])
redis.call('HSET', KEYS[1], 'status', 'queued', 'stage', 'init', 'node', '', 'started_at', '', 'entry', entry)
redis.call('ZADD', KEYS[2], tonumber(b[3]) or 0, ARGV[1])
redis.call('HINCRBY', KEYS[3], b[4] or '', 1)
return entry
""")

#: KEYS: request, bin_dirs. ARGV: build prefix, now, stale_keep. Returns 1 when a finished build expired.
PURGE = Script("""
local image_key = redis.call('HGET', KEYS[1], 'image_key')
if not image_key then return 0 end
local build = ARGV[1] .. image_key
local b = redis.call('HMGET', build, 'status', 'bin_dir')
if b[1] ~= 'done' and b[1] ~= 'failed' then return 0 end
local expired = tonumber(ARGV[2]) - 1
redis.call('HSET', build, 'expires_at', string.format('%.6f', expired))
redis.call('EXPIRE', build, ARGV[3])
if b[2] and b[2] ~= '' then redis.call('ZADD', KEYS[2], expired, b[2]) end
return 1
""")

#: KEYS: an index (zset of hashes, all scored 0). ARGV: hash prefix, record key prefix, limit.
#: Hashes starting with the prefix whose record still exists (at most ``limit``); the others are dropped
#: from the index on the way.
FIND = Script("""
local found = {}
local limit = tonumber(ARGV[3])
local members = redis.call('ZRANGEBYLEX', KEYS[1], '[' .. ARGV[1], '(' .. ARGV[1] .. '\\255', 'LIMIT', 0, 100)
for _, member in ipairs(members) do
  if redis.call('EXISTS', ARGV[2] .. member) == 1 then
    if #found < limit then table.insert(found, member) end
  else
    redis.call('ZREM', KEYS[1], member)
  end
end
return found
""")

#: KEYS: an index. ARGV: record key prefix, then hashes. Drops the hashes whose record is gone; how many.
FORGET = Script("""
local removed = 0
for index = 2, #ARGV do
  if redis.call('EXISTS', ARGV[1] .. ARGV[index]) == 0 then
    removed = removed + redis.call('ZREM', KEYS[1], ARGV[index])
  end
end
return removed
""")
