-- ARGV: prefix, limit. Moves delayed jobs whose time has come into the stream.
local now = now_ms()
local due = redis.call('ZRANGEBYSCORE', DELAYED, '-inf', now, 'WITHSCORES', 'LIMIT', 0, ARGV[2])
for i = 1, #due, 2 do
  local id = due[i]
  redis.call('ZREM', DELAYED, id)
  if redis.call('HGET', job_key(id), 'state') == 'delayed' then
    push_ready(id, 'delayed', tonumber(due[i + 1]), now)
  end
end
return #due / 2
