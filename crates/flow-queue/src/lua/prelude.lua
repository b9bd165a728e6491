-- Shared by every script. ARGV[1] is the key prefix; keys are derived from it here, so the
-- scripts run on a standalone Redis (or a single shard), not across a cluster.
local P = ARGV[1]
local STREAM = P .. 'stream'
local GROUP = 'workers'
local DELAYED = P .. 'delayed'
local DEAD = P .. 'dead'
local METRICS = P .. 'metrics'

local function job_key(id) return P .. 'job:' .. id end
local function index_key(state) return P .. 'state:' .. state end

-- Redis' clock, not the callers': every process then agrees on due times and durations.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Every state change goes through here so the per-state indexes (counts, listings) stay exact.
local function set_state(id, from, to, now)
  if from then redis.call('ZREM', index_key(from), id) end
  redis.call('ZADD', index_key(to), now, id)
  redis.call('HSET', job_key(id), 'state', to)
end

local function finish(id, from, to, now)
  redis.call('HSET', job_key(id), 'finished_at', now)
  set_state(id, from, to, now)
  redis.call('HINCRBY', METRICS, to, 1)
end

-- Histogram buckets in ms (upper bounds); stored per bucket, summed into cumulative counts by Rust.
local BUCKETS = {__BUCKETS__}
local function observe(name, ms)
  if ms < 0 then ms = 0 end
  local le = 'inf'
  for _, b in ipairs(BUCKETS) do
    if ms <= b then le = tostring(b) break end
  end
  redis.call('HINCRBY', METRICS, name .. '_ms_sum', ms)
  redis.call('HINCRBY', METRICS, name .. '_count', 1)
  redis.call('HINCRBY', METRICS, name .. '_le_' .. le, 1)
end

-- A handled entry leaves the pending list and the stream, which so holds only live entries.
local function ack(entry)
  if entry and entry ~= '' then
    redis.call('XACK', STREAM, GROUP, entry)
    redis.call('XDEL', STREAM, entry)
  end
end

local function push_ready(id, from, ready_at, now)
  local entry = redis.call('XADD', STREAM, '*', 'id', id)
  redis.call('HSET', job_key(id), 'entry', entry, 'ready_at', ready_at)
  set_state(id, from, 'waiting', now)
end

local function dead_letter(id, from, attempts, err, now)
  redis.call('HSET', job_key(id), 'last_error', err)
  finish(id, from, 'dead', now)
  redis.call('XADD', DEAD, 'MAXLEN', '~', __DEAD_MAXLEN__, '*',
    'id', id, 'attempts', attempts, 'error', err, 'at', now)
end

-- Returns 0 when a job with this id exists already.
local function enqueue(id, payload, max_attempts, run_at, now)
  local key = job_key(id)
  if redis.call('EXISTS', key) == 1 then return 0 end
  redis.call('HSET', key, 'id', id, 'payload', payload, 'max_attempts', max_attempts,
    'attempts', 0, 'token', 0, 'enqueued_at', now)
  redis.call('HINCRBY', METRICS, 'enqueued', 1)
  if run_at > now then
    redis.call('HSET', key, 'run_at', run_at)
    redis.call('ZADD', DELAYED, run_at, id)
    set_state(id, nil, 'delayed', now)
  else
    push_ready(id, nil, now, now)
  end
  return 1
end

-- Starts a delivery of stream entry `entry` (job `id`) to `consumer`: one more attempt and a
-- new fencing token. Returns {'run', id, token, attempt, max_attempts, payload} or
-- {'skip', id, reason} for entries that must not run (the entry is then acked).
local function begin(id, entry, consumer, now)
  local key = job_key(id)
  local h = redis.call('HMGET', key, 'state', 'entry', 'attempts', 'max_attempts', 'ready_at',
    'cancel_requested', 'payload')
  local state = h[1]
  if not state then
    ack(entry)
    return {'skip', id, 'gone'}
  end
  if h[2] ~= entry or (state ~= 'waiting' and state ~= 'running') then
    ack(entry)
    return {'skip', id, 'stale'}
  end
  if h[6] == '1' then
    ack(entry)
    finish(id, state, 'cancelled', now)
    return {'skip', id, 'cancelled'}
  end
  local attempts = tonumber(h[3])
  if attempts >= tonumber(h[4]) then
    -- Only a reclaim gets here: every earlier delivery lost its worker (a poison job).
    ack(entry)
    dead_letter(id, state, attempts,
      'no result after ' .. attempts .. ' deliveries: the worker was lost each time', now)
    return {'skip', id, 'dead'}
  end
  attempts = attempts + 1
  local token = redis.call('HINCRBY', key, 'token', 1)
  redis.call('HSET', key, 'attempts', attempts, 'worker', consumer, 'started_at', now)
  redis.call('HINCRBY', METRICS, 'deliveries', 1)
  if state == 'running' then
    redis.call('HINCRBY', METRICS, 'reclaimed', 1)
  else
    observe('wait', now - tonumber(h[5]))
  end
  set_state(id, state, 'running', now)
  return {'run', id, tostring(token), tostring(attempts), h[4], h[7]}
end

-- The caller's lease is valid when its token is the job's current one and the job still runs.
-- Returns the job's fields, or nil and the reply to give.
local function leased(id, token, fields)
  local h = redis.call('HMGET', job_key(id), 'state', 'token', unpack(fields))
  if not h[1] then return nil, {'gone'} end
  if h[2] ~= token then return nil, {'fenced', h[2]} end
  if h[1] ~= 'running' then return nil, {'done', h[1]} end
  return h, nil
end
