-- ARGV: prefix, id, token, progress JSON.
local h, reply = leased(ARGV[2], ARGV[3], {})
if not h then return reply end
redis.call('HSET', job_key(ARGV[2]), 'progress', ARGV[4])
return {'ok'}
