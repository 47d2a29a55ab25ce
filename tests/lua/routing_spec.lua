-- Policy tests for scripts/routing.lua, loaded from that very file with the
-- server's own `gcs` module (build/lua/gcs.so, through .busted's cpath).

local gcs = require "gcs"
local h = require "helpers"

describe("routing.lua", function()
  local routing

  before_each(function()
    routing = h.load_routing()
  end)

  local function route(cluster_id, toggle, overrides)
    return routing.route(h.request(cluster_id, overrides), h.context(toggle))
  end

  it("sends a request without a cluster ID to stable", function()
    assert.same({ "stable", "no cluster id" }, { route(nil, h.rollout(100)) })
    routing.force_canary[h.CLUSTER] = true
    assert.same({ "stable", "no cluster id" }, { route(nil, h.rollout(100), { api = "v1" }) })
  end)

  it("sends an allowlisted cluster to canary whatever Unleash says", function()
    routing.force_canary[h.CLUSTER] = true
    assert.same({ "canary", "force_canary list" }, { route(h.CLUSTER, nil) })
    assert.same({ "canary", "force_canary list" }, { route(h.CLUSTER, h.rollout(0)) })
    assert.same({ "stable", "unleash toggle unknown" }, { route("another-cluster", nil) })
  end)

  it("sends a denylisted cluster to stable whatever Unleash says", function()
    routing.force_stable[h.CLUSTER] = true
    assert.same({ "stable", "force_stable list" }, { route(h.CLUSTER, h.rollout(100)) })
    assert.same({ "canary", "unleash rollout" }, { route("another-cluster", h.rollout(100)) })
  end)

  it("lets the denylist win over the allowlist", function()
    routing.force_canary[h.CLUSTER] = true
    routing.force_stable[h.CLUSTER] = true
    assert.same({ "stable", "force_stable list" }, { route(h.CLUSTER, h.rollout(100)) })
  end)

  it("sends everyone else to stable while the toggle is unknown", function()
    assert.same({ "stable", "unleash toggle unknown" }, { route(h.CLUSTER, nil) })
    assert.same({ "stable", "unleash toggle unknown" }, { route(h.CLUSTER, nil, { api = "v1", ocp_version = nil }) })
  end)

  it("follows a 100% and a 0% flexible rollout", function()
    assert.same({ "canary", "unleash rollout" }, { route(h.CLUSTER, h.rollout(100)) })
    assert.same({ "stable", "unleash rollout" }, { route(h.CLUSTER, h.rollout(0)) })
  end)

  it("sends everyone to stable when the toggle is disabled", function()
    local toggle = h.rollout(100)
    toggle.enabled = false
    assert.same({ "stable", "unleash rollout" }, { route(h.CLUSTER, toggle) })
  end)

  it("puts a cluster in the canary exactly when its normalized hash is within the rollout", function()
    local toggle = h.rollout(30)
    local group = toggle.strategies[1].parameters.groupId
    local canaries = 0
    for _, id in ipairs(h.cluster_ids(2000, 42)) do
      local normalized = gcs.murmur3(group .. ":" .. id, 0) % 100 + 1
      local channel = route(id, toggle)
      assert.equal(normalized <= 30 and "canary" or "stable", channel)
      assert.equal(channel, route(id, toggle)) -- sticky
      if channel == "canary" then
        canaries = canaries + 1
      end
    end
    assert.is_true(canaries > 450 and canaries < 750, "canaries: " .. canaries)
  end)

  it("passes the requested OCP version to Unleash as ocpVersion", function()
    local toggle = h.rollout(100, {
      { contextName = "ocpVersion", operator = "SEMVER_GT", value = "4.16.0", inverted = false },
    })
    assert.equal("canary", (route(h.CLUSTER, toggle, { ocp_version = "4.17.0" })))
    assert.equal("stable", (route(h.CLUSTER, toggle, { ocp_version = "4.15.2" })))
  end)

  it("passes the cluster ID to Unleash as userId", function()
    local toggle = require("unleash").prepare {
      name = "insights-operator-gathering-conditions-service",
      enabled = true,
      strategies = { { name = "userWithId", parameters = { userIds = "a, " .. h.CLUSTER }, constraints = {} } },
    }
    assert.equal("canary", (route(h.CLUSTER, toggle)))
    assert.equal("stable", (route("another-cluster", toggle)))
  end)

  it("answers only the two channels, with a reason", function()
    for _, id in ipairs(h.cluster_ids(50, 7)) do
      for _, api in ipairs({ "v1", "v2" }) do
        for _, toggle in ipairs({ false, h.rollout(50) }) do
          local channel, reason = route(id, toggle or nil, { api = api })
          assert.is_true(channel == "stable" or channel == "canary")
          assert.equal("string", type(reason))
        end
      end
    end
  end)

  it("meets its own examples, as the server checks them before loading", function()
    assert.is_true(#routing.examples > 0)
    for i, example in ipairs(routing.examples) do
      local context = h.context(nil)
      for k, v in pairs(example.context or {}) do
        context[k] = v
      end
      local channel = routing.route(example.request, context)
      assert.equal(example.expect, channel, "examples[" .. i .. "]")
    end
  end)

  it("runs under the server's Lua version", function()
    assert.equal("Lua 5.4", _VERSION)
  end)
end)
