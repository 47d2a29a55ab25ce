-- wrk script: every request carries an Insights Operator User-Agent naming
-- one of 10,000 cluster IDs, rotating, so that per-cluster work (routing)
-- is exercised the way a fleet of clusters would.
--
-- Cluster ID i (0 <= i < 10000) is string.format(ID_FORMAT, i, i); the
-- benchmark script builds its allowlist with the same format.
--
--   wrk -t2 -c64 -d10s --latency -s tests/bench/rotate.lua URL

local ID_FORMAT = "%08x-0000-4000-8000-%012x"
local CLUSTERS = 10000

local requests = {}
local next_index = 1
local threads = 0

-- Runs in wrk's main state: threads start apart in the rotation.
function setup(thread)
  thread:set("offset", threads * 4999)
  threads = threads + 1
end

-- wrk calls init once per thread; each thread renders all requests up front
-- (no string work per request) and starts at its own offset.
function init(args)
  local _ = args
  for i = 0, CLUSTERS - 1 do
    local id = string.format(ID_FORMAT, i, i)
    requests[i + 1] = wrk.format("GET", wrk.path, {
      ["User-Agent"] = "insights-operator/4.17.0-bench cluster/" .. id,
    })
  end
  next_index = (offset or 0) % CLUSTERS + 1
end

function request()
  local r = requests[next_index]
  next_index = next_index % CLUSTERS + 1
  return r
end
