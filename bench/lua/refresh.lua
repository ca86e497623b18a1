-- Every refresh rotates the token, so each answer feeds the next request. One thread, a pool
-- of tokens larger than the number of connections, so no token is ever in flight twice.
dofile(os.getenv("LK_LUA") .. "/common.lua")
local headers = with({ Authorization = "Basic " .. os.getenv("LK_APP_BASIC") })
local queue, head, tail = {}, 1, 0
function init(args)
  for line in io.lines(os.getenv("LK_REFRESH_TOKENS")) do
    tail = tail + 1
    queue[tail] = line
  end
end
function request()
  local t = queue[head]
  queue[head] = nil
  head = head + 1
  return wrk.format("POST", "/token", headers, "grant_type=refresh_token&refresh_token=" .. t)
end
function response(status, h, body)
  local t = status == 200 and body:match('"refresh_token":"([^"]+)"')
  if t then
    ok = ok + 1
    tail = tail + 1
    queue[tail] = t
  else
    bad = bad + 1
  end
end
