-- Canary routing: decides, for each request, whether a cluster receives the
-- stable or the canary version of the gathering conditions.
--
-- The rules, in order (the first that applies decides):
--   1. no cluster ID in the request          -> stable
--   2. cluster ID listed in force_stable     -> stable
--   3. cluster ID listed in force_canary     -> canary
--   4. the Unleash toggle is not known (yet) -> stable
--   5. otherwise the Unleash gradual rollout decides
--
-- The contract with the server (what request and context hold, what route
-- may return, the gcs module, limits, reloading) is in scripts/README.md.
-- The server reloads this file by itself a few seconds after it changes; a
-- version that fails its checks is rejected and the previous one keeps running.

-- Clusters that always get the canary version, whatever Unleash says.
-- One cluster ID per line, in quotes, followed by "= true,". For example:
--   ["8a7bf9b2-0b8e-4ad3-a0f6-0c4d2c8e9f31"] = true,
local force_canary = {
}

-- Clusters that never get the canary version, whatever Unleash says.
-- This list wins over force_canary.
local force_stable = {
}

local unleash = require "unleash"
-- Looked up once: a field read less per decision.
local is_enabled = unleash.is_enabled

local M = {}

-- The lists, so that tests and tools can read (or, in tests, extend) them.
M.force_canary = force_canary
M.force_stable = force_stable

-- One Unleash context per worker, refilled for each request instead of made
-- anew: unleash.is_enabled reads it only while it runs, and a table less per
-- request is an eighth of a decision's cost.
local unleash_context = {}

function M.route(request, context)
  local cluster_id = request.cluster_id

  if cluster_id == nil then
    return "stable", "no cluster id"
  end
  if force_stable[cluster_id] then
    return "stable", "force_stable list"
  end
  if force_canary[cluster_id] then
    return "canary", "force_canary list"
  end
  local toggle = context.unleash
  if toggle == nil then
    return "stable", "unleash toggle unknown"
  end

  -- The Unleash context: the SDKs look a field up at the top level, then in
  -- properties, so custom fields such as ocpVersion can stand at the top.
  -- Every field is set again for each request. appName and environment
  -- need not be: unleash.is_enabled takes them from the server's settings
  -- (GCS_UNLEASH_APP_NAME, GCS_UNLEASH_ENVIRONMENT) when ctx has none.
  local ctx = unleash_context
  ctx.userId = cluster_id
  ctx.remoteAddress = request.remote_addr
  ctx.ocpVersion = request.ocp_version
  if is_enabled(toggle, ctx) then
    return "canary", "unleash rollout"
  end
  return "stable", "unleash rollout"
end

-- A toggle as Unleash serves it, rolled out to the given percentage of
-- clusters, prepared as the server prepares the toggles it gets from Unleash.
local function rollout_example(percent)
  return unleash.prepare {
    name = "example",
    enabled = true,
    strategies = {
      {
        name = "flexibleRollout",
        constraints = {},
        parameters = { rollout = tostring(percent), stickiness = "default", groupId = "example" },
      },
    },
  }
end

-- Checked by the server before it accepts this file (and by the tests): each
-- request must get the expected channel. Without a context, the toggle is nil.
M.examples = {
  { request = { api = "v1" }, expect = "stable" },
  { request = { api = "v2", ocp_version = "4.17.0" }, expect = "stable" },
  {
    request = { api = "v2", cluster_id = "8a7bf9b2-0b8e-4ad3-a0f6-0c4d2c8e9f31", ocp_version = "4.17.0" },
    expect = "stable",
  },
  {
    request = { api = "v1", cluster_id = "8a7bf9b2-0b8e-4ad3-a0f6-0c4d2c8e9f31" },
    context = { unleash = rollout_example(100) },
    expect = "canary",
  },
  {
    request = { api = "v1", cluster_id = "8a7bf9b2-0b8e-4ad3-a0f6-0c4d2c8e9f31" },
    context = { unleash = rollout_example(0) },
    expect = "stable",
  },
}

return M
