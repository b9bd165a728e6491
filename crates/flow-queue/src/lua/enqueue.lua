-- ARGV: prefix, id, payload, max_attempts, run_at_ms ('' = now), delay_ms ('' = none)
local now = now_ms()
local run_at = now
if ARGV[5] ~= '' then run_at = tonumber(ARGV[5]) end
if ARGV[6] ~= '' then run_at = now + tonumber(ARGV[6]) end
return enqueue(ARGV[2], ARGV[3], ARGV[4], run_at, now)
