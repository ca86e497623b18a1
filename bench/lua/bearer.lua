-- userinfo (GET, bearer), introspection (POST, client auth) or the floor (GET /jwks: no database,
-- no signature, a cached document), chosen by LK_MODE.
dofile(os.getenv("LK_LUA") .. "/common.lua")
local token = os.getenv("LK_ACCESS_TOKEN")
local req
-- Built on first use: wrk sets the Host header only after the script has loaded.
function request()
  if not req then
    if os.getenv("LK_MODE") == "userinfo" then
      req = wrk.format("GET", "/userinfo", { Authorization = "Bearer " .. token })
    elseif os.getenv("LK_MODE") == "floor" then
      req = wrk.format("GET", "/jwks")
    else
      req = wrk.format("POST", "/introspect", with({ Authorization = "Basic " .. os.getenv("LK_APP_BASIC") }), "token=" .. token)
    end
  end
  return req
end
function response(status, h, body)
  if status == 200 and (body:find('"sub"') or body:find('"active":true') or body:find('"keys"')) then ok = ok + 1 else bad = bad + 1 end
end
