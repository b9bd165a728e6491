-- ARGV: prefix, schedule id, tick ms, job id, payload, max_attempts.
-- Enqueues the tick unless this schedule already fired it or a later one: the compare-and-set
-- of last_tick makes each tick fire once however many schedulers call this.
local key = P .. 'cron:' .. ARGV[2]
local tick = tonumber(ARGV[3])
local last = redis.call('HGET', key, 'last_tick')
if last and tonumber(last) >= tick then return 0 end
redis.call('HSET', key, 'last_tick', ARGV[3])
local now = now_ms()
return enqueue(ARGV[4], ARGV[5], ARGV[6], now, now)
