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
end

-- WRK_DELAY_MS: each connection waits this long after an answer before its next request (a paced load)
local pause = tonumber(os.getenv("WRK_DELAY_MS") or "0")
if pause > 0 then
  function delay()
    return pause
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
