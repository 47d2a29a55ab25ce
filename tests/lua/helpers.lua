-- Shared by the routing specs: requests, contexts and Unleash toggles shaped
-- as the server builds them (see scripts/README.md).

local unleash = require "unleash"

local M = {}

M.CLUSTER = "8a7bf9b2-0b8e-4ad3-a0f6-0c4d2c8e9f31"

-- Loads scripts/routing.lua afresh, as the server does: exactly that file.
function M.load_routing()
  return assert(dofile("scripts/routing.lua"))
end

function M.request(cluster_id, overrides)
  local request = {
    cluster_id = cluster_id,
    api = "v2",
    ocp_version = "4.17.0",
    user_agent = "insights-operator/4.17.0" .. (cluster_id and (" cluster/" .. cluster_id) or ""),
    remote_addr = "127.0.0.1",
  }
  for k, v in pairs(overrides or {}) do
    request[k] = v
  end
  return request
end

function M.context(toggle)
  return {
    stable_version = "1.1.3",
    canary_version = "1.2.0",
    app_name = "gcs",
    environment = "production",
    unleash = toggle,
  }
end

-- A toggle as the Unleash client API serves it, with one flexibleRollout
-- strategy (constraints optional), prepared as the server prepares it;
-- disabled when enabled is false.
function M.rollout(percent, constraints, name, enabled)
  name = name or "insights-operator-gathering-conditions-service"
  return unleash.prepare {
    name = name,
    type = "release",
    enabled = enabled ~= false,
    project = "default",
    stale = false,
    impressionData = false,
    strategies = {
      {
        name = "flexibleRollout",
        constraints = constraints or {},
        parameters = { rollout = tostring(percent), stickiness = "default", groupId = name },
        variants = {},
      },
    },
    variants = {},
  }
end

-- Random version 4 UUIDs, as cluster IDs are.
function M.cluster_ids(n, seed)
  math.randomseed(seed)
  local ids = {}
  for i = 1, n do
    ids[i] = string.format("%08x-%04x-4%03x-%04x-%012x", math.random(0, 0xffffffff),
      math.random(0, 0xffff), math.random(0, 0xfff), math.random(0x8000, 0xbfff),
      math.random(0, 0xffffffffffff))
  end
  return ids
end

-- MurmurHash3 x86 32-bit (seed 0) of prefix .. id for each id, from Debian's
-- pure-Perl implementation: a reference that shares no code with gcs. An
-- empty list when Perl or the module is missing, which the caller reports.
function M.reference_murmur3(prefix, ids)
  local input = os.tmpname()
  local f = assert(io.open(input, "w"))
  for _, id in ipairs(ids) do
    f:write(prefix, id, "\n")
  end
  f:close()
  local perl = assert(io.popen("perl -MDigest::MurmurHash3::PurePerl=murmur32 "
    .. "-ne 'chomp; print murmur32($_, 0), \"\\n\"' < " .. input))
  local hashes = {}
  for line in perl:lines() do
    hashes[#hashes + 1] = math.tointeger(tonumber(line))
  end
  perl:close()
  os.remove(input)
  return hashes
end

return M
