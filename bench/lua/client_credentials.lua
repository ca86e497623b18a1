dofile(os.getenv("LK_LUA") .. "/common.lua")
local headers = with({ Authorization = "Basic " .. os.getenv("LK_CC_BASIC") })
function request()
  return wrk.format("POST", "/token", headers, "grant_type=client_credentials")
end
function response(status, h, body)
  if status == 200 then ok = ok + 1 else bad = bad + 1 end
end
