-- ARGV: prefix, id, token, consumer. Resets the idle time of the job's pending entry (its lease).
-- Returns {'ok', cancel_requested}, {'fenced', current_token}, {'gone'} or {'done', state}.
local h, reply = leased(ARGV[2], ARGV[3], {'entry', 'cancel_requested'})
if not h then return reply end
redis.call('XCLAIM', STREAM, GROUP, ARGV[4], 0, h[3], 'JUSTID')
return {'ok', h[4] or ''}
