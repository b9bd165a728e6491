-- ARGV: prefix, consumer, min_idle_ms, cursor, count.
-- Claims entries whose consumer stopped renewing (idle > lease) and starts a new delivery of
-- each in the same step, so no other worker can interleave. Returns {{next_cursor}, begin()...}.
local now = now_ms()
local res = redis.call('XAUTOCLAIM', STREAM, GROUP, ARGV[2], ARGV[3], ARGV[4], 'COUNT', ARGV[5])
local out = {{res[1]}}
for _, e in ipairs(res[2]) do
  if e then
    local id = ''
    local fields = e[2]
    for i = 1, #fields, 2 do
      if fields[i] == 'id' then id = fields[i + 1] end
    end
    out[#out + 1] = begin(id, e[1], ARGV[2], now)
  end
end
return out
