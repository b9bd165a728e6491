-- ARGV: prefix, id, token, outcome ('succeeded' | 'retry' | 'failed'), result JSON or error,
-- retry delay in ms. Returns {'ok', new_state}; or as leased() when the lease is not valid
-- ({'done', state} when this completion was written already: a retried call).
local id = ARGV[2]
local h, reply = leased(id, ARGV[3], {'entry', 'attempts', 'max_attempts', 'started_at',
  'cancel_requested'})
if not h then return reply end
local key = job_key(id)
local now = now_ms()
ack(h[3])
observe('processing', now - tonumber(h[6]))
local outcome = ARGV[4]
if outcome == 'succeeded' then
  redis.call('HSET', key, 'result', ARGV[5])
  finish(id, 'running', 'succeeded', now)
  return {'ok', 'succeeded'}
end
redis.call('HSET', key, 'last_error', ARGV[5])
if h[7] == '1' then
  finish(id, 'running', 'cancelled', now)
  return {'ok', 'cancelled'}
end
if outcome == 'failed' then
  finish(id, 'running', 'failed', now)
  return {'ok', 'failed'}
end
local attempts = tonumber(h[4])
if attempts >= tonumber(h[5]) then
  dead_letter(id, 'running', attempts, ARGV[5], now)
  return {'ok', 'dead'}
end
local run_at = now + tonumber(ARGV[6])
redis.call('HSET', key, 'run_at', run_at)
redis.call('ZADD', DELAYED, run_at, id)
set_state(id, 'running', 'delayed', now)
redis.call('HINCRBY', METRICS, 'retried', 1)
return {'ok', 'delayed'}
