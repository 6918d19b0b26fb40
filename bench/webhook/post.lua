-- wrk script: each request posts the next pre-signed body (one unique event each).
-- BODIES names a file of lines "signature<TAB>body"; thread i of n takes every n-th line.
local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

function init(args)
  local n = tonumber(os.getenv("WRK_THREADS") or "1")
  bodies, signatures = {}, {}
  local i = 0
  for line in io.lines(os.getenv("BODIES")) do
    if (i % n) + 1 == id then
      local tab = line:find("\t")
      table.insert(signatures, line:sub(1, tab - 1))
      table.insert(bodies, line:sub(tab + 1))
    end
    i = i + 1
  end
  next_index = 1
  math.randomseed(os.time() * 1000 + id)
end

-- WRK_DELAY_MS: a paced load. After each answer a connection waits a random time with this mean before its
-- next request (exponentially distributed): the connections together send as independent users would, a Poisson
-- stream at the same mean rate. A fixed pause kept them in step: all 64 sent within a few ms of each other once
-- per pause (at "200/s", a burst of 64 requests every 320 ms). A connection's first request goes at once, as
-- LINE's does (WRK_CONNECTIONS: the first calls of delay() are the connections' first requests); gunicorn's
-- gthread holds a thread for a new connection until its first bytes come, so a connection opened and left
-- silent would keep a thread from the others.
local pause = tonumber(os.getenv("WRK_DELAY_MS") or "0")
local first_requests = tonumber(os.getenv("WRK_CONNECTIONS") or "0")
if pause > 0 then
  function delay()
    if first_requests > 0 then
      first_requests = first_requests - 1
      return 0
    end
    -- at most 1.5 s: gunicorn closes a connection left idle for its keepalive (2 s), and a request sent as it
    -- closes is a read error at wrk (3 in 2,468 at 200/s); cut there, the mean moves by under 1% at 200/s and above
    return math.min(1500, math.floor(-math.log(1 - math.random()) * pause + 0.5))
  end
end

function request()
  local k = next_index
  if k > #bodies then
    k = ((k - 1) % #bodies) + 1  -- ran out: repeats are deduplicated by our bot (counted apart)
  end
  next_index = next_index + 1
  return wrk.format("POST", "/callback", {["Content-Type"] = "application/json", ["X-Line-Signature"] = signatures[k]}, bodies[k])
end

-- one machine-readable line for bench/webhook/run.py (latencies in microseconds)
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, "status": %d, ' ..
    '"timeout": %d, "p50": %d, "p90": %d, "p99": %d, "max": %d, "mean": %.1f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
