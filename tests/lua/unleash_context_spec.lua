-- The Unleash context as the C evaluation reads it from Lua tables: many
-- constraints (each value read stays on the Lua stack until the call
-- returns), field names and values that look like Lua code, fields shared
-- by several constraints, top level before properties, several strategies
-- in a row, inversion. The client specification covers what features mean.

local unleash = require "unleash"

local function in_constraint(field, values, op, inverted)
  return { contextName = field, operator = op or "IN", values = values, inverted = inverted or false }
end

local function toggle(strategies)
  return unleash.prepare { name = "t", enabled = true, strategies = strategies }
end

local function rollout(percent, constraints)
  return {
    name = "flexibleRollout",
    constraints = constraints or {},
    parameters = { rollout = tostring(percent), stickiness = "default", groupId = "t" },
  }
end

describe("the context of an evaluation", function()
  it("hold with more constraints and fields than a Lua function has upvalues and locals", function()
    local constraints, ctx = {}, { userId = "u" }
    for i = 1, 300 do
      constraints[i] = in_constraint("f" .. i, { "v" .. i })
      ctx["f" .. i] = "v" .. i
    end
    local t = toggle { rollout(100, constraints) }
    assert.is_true(unleash.is_enabled(t, ctx))
    -- each constraint still decides: the first, one past the limits, the last
    for _, i in ipairs { 1, 101, 151, 300 } do
      local other = {}
      for k, v in pairs(ctx) do
        other[k] = v
      end
      other["f" .. i] = "not v" .. i
      assert.is_false(unleash.is_enabled(t, other), "constraint " .. i)
    end
  end)

  it("take field names and values that look like Lua as plain text", function()
    local field = 'x"] os.exit(1) --[['
    local value = "]] error('injected') --"
    local t = toggle { rollout(100, { in_constraint(field, { value }) }) }
    assert.is_true(unleash.is_enabled(t, { userId = "u", [field] = value }))
    assert.is_false(unleash.is_enabled(t, { userId = "u", [field] = "other" }))
  end)

  it("read a field shared by constraints once, as a string, from properties too", function()
    local t = toggle {
      rollout(100, {
        in_constraint("userId", { "a", "b" }),
        in_constraint("userId", { "b" }, "NOT_IN"),
        in_constraint("n", { "5" }),
      }),
    }
    assert.is_true(unleash.is_enabled(t, { userId = "a", n = 5 }))
    assert.is_false(unleash.is_enabled(t, { userId = "b", n = 5 }))
    assert.is_true(unleash.is_enabled(t, { properties = { userId = "a", n = "5" } }))
    assert.is_false(unleash.is_enabled(t, { userId = "a" }))
  end)

  it("try each strategy until one holds", function()
    local t = toggle {
      rollout(100, { in_constraint("userId", { "first" }) }),
      { name = "default", constraints = { in_constraint("userId", { "second" }) }, parameters = {} },
      rollout(0),
    }
    assert.is_true(unleash.is_enabled(t, { userId = "first" }))
    assert.is_true(unleash.is_enabled(t, { userId = "second" }))
    assert.is_false(unleash.is_enabled(t, { userId = "third" }))
  end)

  it("apply the inverted flag to IN and NOT_IN", function()
    local cases = {
      { "IN", false, "a", true }, { "IN", false, "z", false },
      { "IN", true, "a", false }, { "IN", true, "z", true },
      { "NOT_IN", false, "a", false }, { "NOT_IN", false, "z", true },
      { "NOT_IN", true, "a", true }, { "NOT_IN", true, "z", false },
    }
    for _, c in ipairs(cases) do
      local t = toggle { rollout(100, { in_constraint("userId", { "a" }, c[1], c[2]) }) }
      assert.are.equal(c[4], unleash.is_enabled(t, { userId = c[3] }),
        string.format("%s inverted=%s on %s", c[1], tostring(c[2]), c[3]))
    end
    -- an absent field: IN fails, NOT_IN holds
    local t = toggle { rollout(100, { in_constraint("missing", { "a" }, "NOT_IN") }) }
    assert.is_true(unleash.is_enabled(t, { userId = "u" }))
  end)
end)
