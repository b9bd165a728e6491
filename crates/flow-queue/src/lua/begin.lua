-- ARGV: prefix, consumer, then (entry, job id) pairs just read with XREADGROUP.
local now = now_ms()
local out = {}
for i = 3, #ARGV, 2 do
  out[#out + 1] = begin(ARGV[i + 1], ARGV[i], ARGV[2], now)
end
return out
