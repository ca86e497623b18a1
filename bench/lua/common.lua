-- Shared by the scenario scripts: count good and bad answers per thread, report them at the end.
ok, bad = 0, 0
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function done(summary, latency, requests)
  local good, failed = 0, 0
  for _, t in ipairs(threads) do
    good = good + (t:get("ok") or 0)
    failed = failed + (t:get("bad") or 0)
  end
  io.write(string.format("LK_RESULT ok=%d bad=%d secs=%.3f p99_ms=%.2f\n",
    good, failed, summary.duration / 1e6, latency:percentile(99) / 1000))
end

form = { ["Content-Type"] = "application/x-www-form-urlencoded" }
function with(extra)
  local h = {}
  for k, v in pairs(form) do h[k] = v end
  for k, v in pairs(extra) do h[k] = v end
  return h
end
