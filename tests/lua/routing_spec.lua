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
    local toggle = h.rollout(100, nil, nil, false)
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

  it("agrees with an independent MurmurHash3 on who is in a rollout", function()
    -- The test above takes the expected side from gcs.murmur3, the hash the
    -- script itself uses. Here the reference is Debian's pure-Perl
    -- MurmurHash3 (libdigest-murmurhash3-pureperl-perl), which shares no
    -- code with gcs.
    local toggle = h.rollout(30)
    local group = toggle.strategies[1].parameters.groupId
    local ids = h.cluster_ids(500, 4242)
    local reference = h.reference_murmur3(group .. ":", ids)
    assert.equal(#ids, #reference, "reference hashes (is libdigest-murmurhash3-pureperl-perl installed?)")
    for i, id in ipairs(ids) do
      assert.equal(reference[i], gcs.murmur3(group .. ":" .. id, 0), id)
      local expected = reference[i] % 100 + 1 <= 30 and "canary" or "stable"
      assert.equal(expected, (route(id, toggle)), id)
    end
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

  it("meets answers to its examples worked out apart from the script", function()
    -- The test above holds the script to its own expectations, so an
    -- example edited to match a wrong answer would pass there. These answers
    -- follow from the rules in scripts/README.md, not from the script.
    local worked_out = {
      -- api, cluster id, ocp version, rollout ("none": no toggle) -> channel, reason
      { "v1", nil, nil, "none", "stable", "no cluster id" },
      { "v2", nil, "4.17.0", "none", "stable", "no cluster id" },
      { "v2", h.CLUSTER, "4.17.0", "none", "stable", "unleash toggle unknown" },
      { "v1", h.CLUSTER, nil, "100", "canary", "unleash rollout" },
      { "v1", h.CLUSTER, nil, "0", "stable", "unleash rollout" },
    }
    local function key(api, cluster_id, ocp_version, rollout)
      return table.concat({ api, cluster_id or "-", ocp_version or "-", rollout }, " ")
    end
    local answers = {}
    for _, w in ipairs(worked_out) do
      answers[key(w[1], w[2], w[3], w[4])] = { w[5], w[6] }
    end
    for i, example in ipairs(routing.examples) do
      local r, toggle = example.request, (example.context or {}).unleash
      local k = key(r.api, r.cluster_id, r.ocp_version, toggle and toggle.strategies[1].parameters.rollout or "none")
      local want = answers[k]
      assert.is_not_nil(want, "examples[" .. i .. "] (" .. k .. ") has no worked-out answer here: add one")
      assert.equal(want[1], example.expect, "examples[" .. i .. "] expects the wrong channel")
      local context = h.context(nil)
      for field, v in pairs(example.context or {}) do
        context[field] = v
      end
      assert.same(want, { routing.route(r, context) }, "examples[" .. i .. "]")
    end
  end)

  it("runs under the server's Lua version", function()
    assert.equal("Lua 5.4", _VERSION)
  end)
end)
