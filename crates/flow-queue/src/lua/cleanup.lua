-- ARGV: prefix, older_than_ms, limit. Deletes succeeded, failed and cancelled jobs that
-- finished before now - older_than (up to `limit` per state); returns how many.
local cutoff = now_ms() - tonumber(ARGV[2])
local removed = 0
for _, state in ipairs({'succeeded', 'failed', 'cancelled'}) do
  local ids = redis.call('ZRANGEBYSCORE', index_key(state), '-inf', cutoff, 'LIMIT', 0, ARGV[3])
  for _, id in ipairs(ids) do
    redis.call('ZREM', index_key(state), id)
    redis.call('DEL', job_key(id))
  end
  removed = removed + #ids
end
return removed
