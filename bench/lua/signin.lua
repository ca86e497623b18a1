-- A complete password sign-in per loop, as a browser and an app do it:
-- GET /authorize → GET /login → POST /login (argon2id) → POST /token (code exchange).
-- One connection per thread, so each thread's state machine sees its own answers in order.
dofile(os.getenv("LK_LUA") .. "/common.lua")
local app_basic = "Basic " .. os.getenv("LK_APP_BASIC")
local authorize = os.getenv("LK_AUTHORIZE_PATH")
local redirect = os.getenv("LK_REDIRECT_ENC")
local password = os.getenv("LK_PASSWORD_ENC")
local step, browser, request_id, csrf, code = 0, nil, nil, nil, nil

local function cookie()
  if browser then return { Cookie = "lk_browser=" .. browser } end
  return {}
end

function request()
  if step == 0 then
    return wrk.format("GET", authorize, cookie())
  elseif step == 1 then
    return wrk.format("GET", "/login?request=" .. request_id, cookie())
  elseif step == 2 then
    return wrk.format("POST", "/login", with(cookie()),
      "request=" .. request_id .. "&csrf=" .. csrf .. "&username=bench&password=" .. password)
  else
    return wrk.format("POST", "/token", with({ Authorization = app_basic }),
      "grant_type=authorization_code&code=" .. code .. "&redirect_uri=" .. redirect)
  end
end

local function fail()
  bad = bad + 1
  step = 0
end

function response(status, h, body)
  if step == 0 then
    local loc = h["location"] or h["Location"] or ""
    local sc = h["set-cookie"] or h["Set-Cookie"]
    if sc then browser = sc:match("lk_browser=([^;]+)") or browser end
    request_id = loc:match("request=([^&]+)")
    if status == 303 and request_id then step = 1 else fail() end
  elseif step == 1 then
    csrf = body:match('name="csrf" value="([^"]+)"')
    if status == 200 and csrf then step = 2 else fail() end
  elseif step == 2 then
    local loc = h["location"] or h["Location"] or ""
    code = loc:match("[?&]code=([^&]+)")
    if status == 303 and code then step = 3 else fail() end
  else
    if status == 200 then ok = ok + 1; step = 0 else fail() end
  end
end
