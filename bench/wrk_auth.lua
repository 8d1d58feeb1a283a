-- wrk script of bench/run.sh: GET /users/me with a session cookie, or POST /login with a JSON
-- body, counting every response's status per thread, and one machine-readable BENCH line at the
-- end (the same fields as ../shared/bench/wrk_bench.lua, plus statuses=CODE:N,...).
-- Env: BENCH_COOKIE (the whole "name=value" pair, optional), BENCH_UA (User-Agent: the session's
--      fingerprint includes it), BENCH_METHOD (GET), BENCH_BODY (optional; sent as JSON).
local cookie = os.getenv("BENCH_COOKIE")
local body = os.getenv("BENCH_BODY")

wrk.method = os.getenv("BENCH_METHOD") or "GET"
wrk.headers["User-Agent"] = os.getenv("BENCH_UA") or "tessera-bench/1.0"
if cookie and cookie ~= "" then
  wrk.headers["Cookie"] = cookie
end
if body and body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

-- per thread (each wrk thread has its own Lua state); read back with thread:get in done()
ok2xx = 0
other = 0
first_other = 0
statuses = {}

function response(status, headers, body)
  if status >= 200 and status < 300 then
    ok2xx = ok2xx + 1
  else
    other = other + 1
    if first_other == 0 then first_other = status end
  end
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local n2, no, fo, merged = 0, 0, 0, {}
  for _, t in ipairs(threads) do
    n2 = n2 + t:get("ok2xx")
    no = no + t:get("other")
    local f = t:get("first_other")
    if fo == 0 and f ~= 0 then fo = f end
    for code, n in pairs(t:get("statuses")) do
      merged[code] = (merged[code] or 0) + n
    end
  end
  local codes = {}
  for code, _ in pairs(merged) do table.insert(codes, code) end
  table.sort(codes)
  local parts = {}
  for _, code in ipairs(codes) do table.insert(parts, code .. ":" .. merged[code]) end
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    "BENCH requests=%d secs=%.3f rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d " ..
    "ok2xx=%d non2xx=%d first_non2xx=%d status_ge400=%d connect=%d read=%d write=%d timeout=%d " ..
    "statuses=%s\n",
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    n2, no, fo, e.status, e.connect, e.read, e.write, e.timeout,
    #parts > 0 and table.concat(parts, ",") or "none"))
end
