-- Unleash feature-toggle evaluation, as the official server-side SDKs do it
-- (the Unleash client specification; where it is silent, the Node SDK).
-- Built into gcs: routing scripts reach it with require "unleash".
--
--   local unleash = require "unleash"
--   unleash.is_enabled(toggle, ctx)   --> true / false
--   unleash.get_variant(toggle, ctx)  --> { name=, enabled=, feature_enabled=, payload= }
--
-- toggle: a toggle prepared by the host (src/toggles.c): context.unleash in
-- a routing script, or unleash.prepare(feature) for one written by hand. Its
-- values are parsed once per Unleash state, never per call: value lists are
-- sets, regexes compiled, versions, dates and ranges parsed, segments
-- resolved and the parents it depends on attached.
-- ctx: { userId=, sessionId=, appName=, environment=, remoteAddress=,
--        currentTime= (ISO-8601 text, default now), properties = { ... } }

local cjson = require "cjson"
local gcs = require "gcs"

local normalized, js_number, decided = gcs.normalized, gcs.js_number, gcs.decided
local VARIANT_SEED = 86028157

local M = {}

----------------------------------------------------------------------------
-- Context
----------------------------------------------------------------------------

-- The SDKs read a context field at the top level first, then in properties,
-- and compare it as a string. nil when absent.
local function context_value(ctx, field)
  local value = ctx[field]
  if type(value) == "string" then
    return value
  end
  if value == nil then
    local properties = ctx.properties
    if type(properties) ~= "table" then
      return nil
    end
    value = properties[field]
  end
  if value == nil or value == cjson.null then
    return nil
  end
  return tostring(value)
end

local function random_id(range)
  return tostring(math.random(1, range))
end

-- The number 1..100 a sticky ID falls on; bit-exact with the SDKs.
function M.normalized(id, group_id)
  return normalized(id, group_id, 100)
end

----------------------------------------------------------------------------
-- Constraints (values prepared by the host)
----------------------------------------------------------------------------

local function op_in(c, ctx)
  local value = ctx[c.context]
  if type(value) ~= "string" then
    value = context_value(ctx, c.context)
  end
  local found = value ~= nil and c.set[value] == true
  if c.op == "IN" then
    return found
  end
  return not found
end

local string_tests = {
  STR_STARTS_WITH = function(value, v) return value:sub(1, #v) == v end,
  STR_ENDS_WITH = function(value, v) return v == "" or value:sub(-#v) == v end,
  STR_CONTAINS = function(value, v) return value:find(v, 1, true) ~= nil end,
}

local function op_string(c, ctx)
  local value = context_value(ctx, c.context)
  if value == nil then
    return false
  end
  if c.case_insensitive then
    value = value:lower() -- the values were lowered once, when prepared
  end
  local test = string_tests[c.op]
  for _, v in ipairs(c.values) do
    if test(value, v) then
      return true
    end
  end
  return false
end

local number_tests = {
  NUM_EQ = function(a, b) return a == b end,
  NUM_GT = function(a, b) return a > b end,
  NUM_GTE = function(a, b) return a >= b end,
  NUM_LT = function(a, b) return a < b end,
  NUM_LTE = function(a, b) return a <= b end,
}

local function op_number(c, ctx)
  local expected = c.number
  local value = js_number(context_value(ctx, c.context))
  if expected == nil or value == nil then
    return false
  end
  return number_tests[c.op](value, expected)
end

-- The SDKs compare currentTime whatever the constraint's contextName says.
local function op_date(c, ctx)
  local now
  if ctx.currentTime ~= nil then
    now = gcs.parse_time(ctx.currentTime)
  else
    now = os.time()
  end
  if c.date == nil or now == nil then
    return false
  end
  if c.op == "DATE_AFTER" then
    return now > c.date
  end
  return now < c.date
end

local semver_tests = {
  SEMVER_EQ = function(order) return order == 0 end,
  SEMVER_GT = function(order) return order > 0 end,
  SEMVER_GTE = function(order) return order >= 0 end,
  SEMVER_LT = function(order) return order < 0 end,
  SEMVER_LTE = function(order) return order <= 0 end,
}

local function op_semver(c, ctx)
  local value = context_value(ctx, c.context)
  if value == nil or c.semver == nil then
    return false
  end
  local order = gcs.semver_compare(value, c.semver)
  return order ~= nil and semver_tests[c.op](order)
end

local function op_cidr(c, ctx)
  local value = context_value(ctx, c.context)
  return value ~= nil and gcs.cidr_match(c.cidrs, value)
end

local function op_regex(c, ctx)
  local value = context_value(ctx, c.context)
  return value ~= nil and gcs.regex_match(c.regex, value)
end

local operators = {
  IN = op_in,
  NOT_IN = op_in,
  STR_STARTS_WITH = op_string,
  STR_ENDS_WITH = op_string,
  STR_CONTAINS = op_string,
  NUM_EQ = op_number,
  NUM_GT = op_number,
  NUM_GTE = op_number,
  NUM_LT = op_number,
  NUM_LTE = op_number,
  DATE_AFTER = op_date,
  DATE_BEFORE = op_date,
  SEMVER_EQ = op_semver,
  SEMVER_GT = op_semver,
  SEMVER_GTE = op_semver,
  SEMVER_LT = op_semver,
  SEMVER_LTE = op_semver,
  IN_CIDR = op_cidr,
  REGEX = op_regex,
}

----------------------------------------------------------------------------
-- Strategies
----------------------------------------------------------------------------

local function percentage_hit(id, group_id, pct)
  return pct ~= nil and pct > 0 and normalized(id, group_id, 100) <= pct
end

local function stickiness_id(stickiness, ctx)
  if stickiness == "default" then
    return context_value(ctx, "userId") or context_value(ctx, "sessionId") or random_id(10001)
  elseif stickiness == "random" then
    return random_id(10001)
  end
  return context_value(ctx, stickiness)
end

local strategies = {}

function strategies.default()
  return true
end

function strategies.userWithId(s, ctx)
  local user = context_value(ctx, "userId")
  return user ~= nil and s.ids ~= nil and s.ids[user] == true
end

function strategies.flexibleRollout(s, ctx)
  local id = ctx.userId -- the common case: default stickiness, a userId given
  if s.stickiness ~= "default" or type(id) ~= "string" or id == "" then
    id = stickiness_id(s.stickiness, ctx)
  end
  if id == nil or id == "" then
    return false
  end
  local pct = s.rollout
  return pct ~= nil and pct > 0 and normalized(id, s.group_id, 100) <= pct
end

-- The older gradual rollouts, sticky on one context field.
local function gradual_rollout(field, s, ctx)
  local id = context_value(ctx, field)
  if id == nil or id == "" then
    return false
  end
  return percentage_hit(id, s.group_id, s.rollout)
end

function strategies.gradualRolloutUserId(s, ctx)
  return gradual_rollout("userId", s, ctx)
end

function strategies.gradualRolloutSessionId(s, ctx)
  return gradual_rollout("sessionId", s, ctx)
end

function strategies.gradualRolloutRandom(s)
  return s.rollout ~= nil and s.rollout >= math.random(1, 100)
end

-- Exact addresses and IPv4 CIDR ranges; invalid entries are skipped.
function strategies.remoteAddress(s, ctx)
  local remote = context_value(ctx, "remoteAddress")
  if s.ids == nil or remote == nil then
    return false
  end
  return s.ids[remote] == true or gcs.cidr_match(s.cidrs, remote)
end

local function strategy_enabled(s, ctx)
  local evaluate = strategies[s.name]
  if not evaluate or s.segment_missing then
    return false
  end
  local constraints = s.constraints
  for i = 1, #constraints do
    local c = constraints[i]
    -- An unknown operator or an unusable pattern never holds, inverted or not.
    if c.unusable then
      return false
    end
    local result = operators[c.op](c, ctx)
    if c.inverted then
      result = not result
    end
    if not result then
      return false
    end
  end
  return evaluate(s, ctx) == true
end

----------------------------------------------------------------------------
-- Variants
----------------------------------------------------------------------------

local STICKY_FIELDS = { "userId", "sessionId", "remoteAddress" }

local function variant_seed(ctx, stickiness)
  if stickiness ~= nil and stickiness ~= "default" then
    return context_value(ctx, stickiness) or random_id(100000)
  end
  for _, field in ipairs(STICKY_FIELDS) do
    local value = ctx[field]
    if type(value) == "string" and value ~= "" then
      return value
    end
  end
  return random_id(100000)
end

local function override_matches(variant, ctx)
  for _, o in ipairs(variant.overrides) do
    local value = context_value(ctx, o.context)
    for _, v in ipairs(o.values) do
      if v == value then
        return true
      end
    end
  end
  return false
end

local function select_variant(group_id, stickiness, variants, ctx)
  local total = 0
  for _, v in ipairs(variants) do
    total = total + v.weight
  end
  if total <= 0 then
    return nil
  end
  for _, v in ipairs(variants) do
    if override_matches(v, ctx) then
      return v
    end
  end
  local target = normalized(variant_seed(ctx, stickiness), group_id, math.tointeger(total) or total,
    VARIANT_SEED)
  local counter = 0
  for _, v in ipairs(variants) do
    if v.weight ~= 0 then
      counter = counter + v.weight
      if counter >= target then
        return v
      end
    end
  end
  return nil
end

----------------------------------------------------------------------------
-- Toggles
----------------------------------------------------------------------------

local evaluate

local function contains(list, value)
  for _, v in ipairs(list) do
    if v == value then
      return true
    end
  end
  return false
end

-- Parents are evaluated with the child's context. A missing parent, or one
-- that has parents itself, makes the child off.
local function parents_satisfied(deps, ctx)
  for _, dep in ipairs(deps) do
    local parent = dep.parent
    if parent == nil or #parent.dependencies > 0 then
      return false
    end
    if dep.enabled then
      if dep.variants then
        local variant = M.get_variant(parent, ctx, true)
        if not (variant.feature_enabled and contains(dep.variants, variant.name)) then
          return false
        end
      elseif not evaluate(parent, ctx) then
        return false
      end
    elseif evaluate(parent, ctx) then
      return false
    end
  end
  return true
end

-- Returns whether the toggle is on, and the strategy that turned it on.
evaluate = function(toggle, ctx)
  if not toggle.enabled then
    return false
  end
  local deps = toggle.dependencies
  if deps[1] ~= nil and not parents_satisfied(deps, ctx) then
    return false
  end
  local list = toggle.strategies
  local n = #list
  if n == 0 then
    return true -- an enabled toggle without strategies is on for everyone
  end
  for i = 1, n do
    local s = list[i]
    if strategy_enabled(s, ctx) then
      return true, s
    end
  end
  return false
end

----------------------------------------------------------------------------
-- Public API
----------------------------------------------------------------------------

local NO_CONTEXT = {}

function M.is_enabled(toggle, ctx)
  if type(toggle) ~= "table" then
    return false
  end
  local on = evaluate(toggle, ctx or NO_CONTEXT)
  if toggle.counted then
    decided(on)
  end
  return on
end

local function disabled_variant(feature_enabled)
  return { name = "disabled", enabled = false, feature_enabled = feature_enabled }
end

local function found_variant(v)
  return { name = v.name, enabled = true, feature_enabled = true, payload = v.payload }
end

function M.get_variant(toggle, ctx)
  ctx = ctx or NO_CONTEXT
  if type(toggle) ~= "table" then
    return disabled_variant(false)
  end
  local on, strategy = evaluate(toggle, ctx)
  if not on then
    return disabled_variant(false)
  end
  if strategy and #strategy.variants > 0 then
    local v = select_variant(strategy.parameters.groupId or "undefined",
      strategy.variants[1].stickiness or strategy.parameters.stickiness, strategy.variants, ctx)
    if v then
      return found_variant(v)
    end
  end
  local variants = toggle.variants
  if #variants == 0 then
    return disabled_variant(true)
  end
  local v = select_variant(toggle.name, variants[1].stickiness, variants, ctx)
  if v == nil then
    return disabled_variant(true)
  end
  return found_variant(v)
end

-- A whole client API answer (its JSON text, or a table as decoded JSON)
-- prepared as the host prepares Unleash's: { [name] = toggle }, and the
-- constraints that cannot be used. Raises on an answer the host would refuse.
function M.prepare_answer(answer)
  local text = type(answer) == "string" and answer or cjson.encode(answer)
  local toggles, problems = gcs.features(text)
  if toggles == nil then
    error(problems, 2)
  end
  return toggles, problems
end

-- One feature, as the client API serves it (segments inlined), prepared:
-- for examples and tests that write a toggle by hand.
function M.prepare(feature)
  local toggles = M.prepare_answer({ features = { feature } })
  return toggles[feature.name]
end

return M
