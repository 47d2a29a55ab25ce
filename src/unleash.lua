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
local MEMO_MAX = 256

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
-- Constraints: the operators that generated toggles (below) do not write
-- inline become a function(ctx) -> boolean each, made once per toggle and
-- state, so that a call only runs the check, with its values in upvalues.
----------------------------------------------------------------------------

-- A context field as a string, the common case (a string at the top level)
-- first.
local function field_of(ctx, field)
  local value = ctx[field]
  if type(value) == "string" then
    return value
  end
  return context_value(ctx, field)
end

local string_tests = {
  STR_STARTS_WITH = function(value, v) return value:sub(1, #v) == v end,
  STR_ENDS_WITH = function(value, v) return v == "" or value:sub(-#v) == v end,
  STR_CONTAINS = function(value, v) return value:find(v, 1, true) ~= nil end,
}

local number_tests = {
  NUM_EQ = function(a, b) return a == b end,
  NUM_GT = function(a, b) return a > b end,
  NUM_GTE = function(a, b) return a >= b end,
  NUM_LT = function(a, b) return a < b end,
  NUM_LTE = function(a, b) return a <= b end,
}

local semver_tests = {
  SEMVER_EQ = function(order) return order == 0 end,
  SEMVER_GT = function(order) return order > 0 end,
  SEMVER_GTE = function(order) return order >= 0 end,
  SEMVER_LT = function(order) return order < 0 end,
  SEMVER_LTE = function(order) return order <= 0 end,
}

local function make_string(c)
  local field, values, lower, test = c.context, c.values, c.case_insensitive, string_tests[c.op]
  return function(ctx)
    local value = field_of(ctx, field)
    if value == nil then
      return false
    end
    if lower then
      value = value:lower() -- the values were lowered once, when prepared
    end
    for i = 1, #values do
      if test(value, values[i]) then
        return true
      end
    end
    return false
  end
end

local function make_number(c)
  local field, expected, test = c.context, c.number, number_tests[c.op]
  return function(ctx)
    local value = js_number(field_of(ctx, field))
    return expected ~= nil and value ~= nil and test(value, expected)
  end
end

-- The SDKs compare currentTime whatever the constraint's contextName says.
local function make_date(c)
  local limit, after = c.date, c.op == "DATE_AFTER"
  return function(ctx)
    local now
    if ctx.currentTime ~= nil then
      now = gcs.parse_time(ctx.currentTime)
    else
      now = os.time()
    end
    if limit == nil or now == nil then
      return false
    end
    if after then
      return now > limit
    end
    return now < limit
  end
end

-- The few versions clusters run repeat: results are kept, at most MEMO_MAX
-- of them (a client chooses the version it sends). Returns the check and
-- its memo, which generated strategies consult first; the memo is emptied
-- in place, never replaced.
local function make_semver(c)
  local field, version, test = c.context, c.semver, semver_tests[c.op]
  local compare = gcs.semver_compare
  local memo, kept = {}, 0
  local function holds(ctx)
    local held = memo[ctx[field]] -- only strings are kept: a hit needs no more checks
    if held ~= nil then
      return held
    end
    local value = field_of(ctx, field)
    if value == nil or version == nil then
      return false
    end
    held = memo[value]
    if held == nil then
      local order = compare(value, version)
      held = order ~= nil and test(order)
      if kept >= MEMO_MAX then
        for k in pairs(memo) do
          memo[k] = nil
        end
        kept = 0
      end
      memo[value], kept = held, kept + 1
    end
    return held
  end
  return holds, memo
end

-- IN_CIDR and REGEX: a host matcher on a value the host prepared.
local function host_match(match, key)
  return function(c)
    local field, prepared = c.context, c[key]
    return function(ctx)
      local value = field_of(ctx, field)
      return value ~= nil and match(prepared, value)
    end
  end
end

local make_cidr = host_match(gcs.cidr_match, "cidrs")
local make_regex = host_match(gcs.regex_match, "regex")

-- IN and NOT_IN have no closure: generated strategies check them inline.
local makers = {
  STR_STARTS_WITH = make_string,
  STR_ENDS_WITH = make_string,
  STR_CONTAINS = make_string,
  NUM_EQ = make_number,
  NUM_GT = make_number,
  NUM_GTE = make_number,
  NUM_LT = make_number,
  NUM_LTE = make_number,
  DATE_AFTER = make_date,
  DATE_BEFORE = make_date,
  SEMVER_EQ = make_semver,
  SEMVER_GT = make_semver,
  SEMVER_GTE = make_semver,
  SEMVER_LT = make_semver,
  SEMVER_LTE = make_semver,
  IN_CIDR = make_cidr,
  REGEX = make_regex,
}

local function never()
  return false
end

local function always()
  return true
end

-- An unknown operator or an unusable pattern never holds, inverted or not.
local function make_constraint(c)
  if c.unusable or not makers[c.op] then
    return never
  end
  local holds = (makers[c.op](c))
  if c.inverted == true then
    return function(ctx) return not holds(ctx) end
  end
  return holds
end

----------------------------------------------------------------------------
-- Strategies: each becomes a function(ctx) -> boolean, constraints included
----------------------------------------------------------------------------

local function stickiness_id(stickiness, ctx)
  if stickiness == "default" then
    return context_value(ctx, "userId") or context_value(ctx, "sessionId") or random_id(10001)
  elseif stickiness == "random" then
    return random_id(10001)
  end
  return context_value(ctx, stickiness)
end

local function hit(id, group_id, pct)
  return id ~= nil and id ~= "" and pct ~= nil and pct > 0 and normalized(id, group_id, 100) <= pct
end

local strategies = {}

function strategies.default()
  return always
end

function strategies.userWithId(s)
  local ids = s.ids
  if ids == nil then
    return never
  end
  return function(ctx)
    local user = context_value(ctx, "userId")
    return user ~= nil and ids[user] == true
  end
end

function strategies.flexibleRollout(s)
  local stickiness, group_id, pct = s.stickiness, s.group_id, s.rollout
  if pct == nil or pct <= 0 then
    return never
  end
  -- On the default stickiness, generated toggles inline this (Gen:strategy).
  return function(ctx) return hit(stickiness_id(stickiness, ctx), group_id, pct) end
end

-- The older gradual rollouts, sticky on one context field.
local function gradual_rollout(field, s)
  local group_id, pct = s.group_id, s.rollout
  return function(ctx) return hit(context_value(ctx, field), group_id, pct) end
end

function strategies.gradualRolloutUserId(s)
  return gradual_rollout("userId", s)
end

function strategies.gradualRolloutSessionId(s)
  return gradual_rollout("sessionId", s)
end

function strategies.gradualRolloutRandom(s)
  local pct = s.rollout
  return function() return pct ~= nil and pct >= math.random(1, 100) end
end

-- Exact addresses and IPv4 CIDR ranges; invalid entries are skipped.
function strategies.remoteAddress(s)
  local ids, ranges, match = s.ids, s.cidrs, gcs.cidr_match
  if ids == nil then
    return never
  end
  return function(ctx)
    local remote = context_value(ctx, "remoteAddress")
    return remote ~= nil and (ids[remote] == true or match(ranges, remote))
  end
end

----------------------------------------------------------------------------
-- Generated toggles: each prepared toggle compiles to one Lua function,
-- written as text and loaded once per toggle and state. Its strategies
-- follow one another, each a block left by `break` at the first constraint
-- that does not hold; each context field is read once per strategy, and
-- IN, NOT_IN, the SemVer memo and a flexibleRollout on the default
-- stickiness are written inline, costing no call. The other operators and
-- strategies, and the parents, are calls of their closures above. No value
-- from Unleash is ever part of the text: constants reach the chunk as
-- arguments, the first UPVALUES_MAX as upvalues, the rest through K.
----------------------------------------------------------------------------

local UPVALUES_MAX = 150 -- Lua allows 255 upvalues and 200 locals a function
local FIELDS_MAX = 100 -- context fields kept in locals; more are read each time

local Gen = {}
Gen.__index = Gen

local function new_gen()
  return setmetatable({ code = {}, consts = {}, n = 0, fields = {}, nfields = 0 }, Gen)
end

function Gen:emit(fmt, ...)
  self.code[#self.code + 1] = fmt:format(...)
end

-- The expression of a constant.
function Gen:const(v)
  self.n = self.n + 1
  self.consts[self.n] = v
  if self.n <= UPVALUES_MAX then
    return "k" .. self.n
  end
  return "K[" .. self.n .. "]"
end

-- The expression of a context field as the SDKs read it (a string or nil),
-- read into a local of the strategy's block at its first use.
function Gen:field(name)
  local var = self.fields[name]
  if var then
    return var
  end
  local key = self:const(name)
  if self.nfields >= FIELDS_MAX then
    return ("field_of(ctx, %s)"):format(key)
  end
  self.nfields = self.nfields + 1
  var = "f" .. self.nfields
  self:emit("local %s = ctx[%s]", var, key)
  self:emit('if type(%s) ~= "string" then %s = context_value(ctx, %s) end', var, var, key)
  self.fields[name] = var
  return var
end

-- One constraint: leaves the strategy's block unless it holds.
function Gen:constraint(c)
  local negate = c.inverted == true
  if not c.unusable and (c.op == "IN" or c.op == "NOT_IN") then
    local f, set = self:field(c.context), self:const(c.set)
    if negate ~= (c.op == "NOT_IN") then
      self:emit("if %s and %s[%s] then break end", f, set, f)
    else
      self:emit("if not (%s and %s[%s]) then break end", f, set, f)
    end
  elseif not c.unusable and semver_tests[c.op] then
    local holds, memo = make_semver(c)
    local value = self.fields[c.context] or ("ctx[%s]"):format(self:const(c.context))
    self:emit("do local h = %s[%s]; if h == nil then h = %s(ctx) end", self:const(memo), value,
      self:const(holds))
    self:emit("if %sh then break end end", negate and "" or "not ")
  else
    self:emit("if not %s(ctx) then break end", self:const(make_constraint(c)))
  end
end

-- One strategy: returns true and the strategy when it holds. A
-- flexibleRollout on the default stickiness is hit(stickiness_id("default",
-- ctx), group_id, pct), with the userId read as the constraints read it.
function Gen:strategy(s)
  local make = strategies[s.name]
  if not make or s.segment_missing then
    return -- never holds
  end
  self.fields, self.nfields = {}, 0
  self:emit("repeat")
  for _, c in ipairs(s.constraints) do
    self:constraint(c)
  end
  local strategy = self:const(s)
  if s.name == "flexibleRollout" and s.stickiness == "default" and s.rollout ~= nil
    and s.rollout > 0 then
    self:emit("local id = %s", self:field("userId"))
    self:emit('if not id or id == "" then id = stickiness_id("default", ctx) end')
    self:emit('if id and id ~= "" and normalized(id, %s, 100) <= %s then return true, %s end',
      self:const(s.group_id), self:const(s.rollout), strategy)
  else
    self:emit("if %s(ctx) then return true, %s end", self:const(make(s)), strategy)
  end
  self:emit("until true")
end

function Gen:load()
  local lines = { "local K, type, context_value, field_of, stickiness_id, normalized = ..." }
  for i = 1, math.min(self.n, UPVALUES_MAX) do
    lines[#lines + 1] = ("local k%d = K[%d]"):format(i, i)
  end
  lines[#lines + 1] = "return function(ctx)"
  lines[#lines + 1] = table.concat(self.code, "\n")
  lines[#lines + 1] = "end"
  local chunk = assert(load(table.concat(lines, "\n"), "=(unleash toggle)", "t", {}))
  return chunk(self.consts, type, context_value, field_of, stickiness_id, normalized)
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
-- Toggles: each prepared toggle becomes a function(ctx) -> on, strategy,
-- generated on its first evaluation and kept while the toggle lives (once
-- per Unleash state in each worker).
----------------------------------------------------------------------------

local compiled = setmetatable({}, { __mode = "k" })
local compile

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
local function parent_check(dep)
  local parent = dep.parent
  if parent == nil or #parent.dependencies > 0 then
    return never
  end
  if not dep.enabled then
    return function(ctx) return not compile(parent)(ctx) end
  end
  if dep.variants then
    local wanted = dep.variants
    return function(ctx)
      local variant = M.get_variant(parent, ctx)
      return variant.feature_enabled and contains(wanted, variant.name)
    end
  end
  return function(ctx) return (compile(parent)(ctx)) end
end

local function make_toggle(toggle)
  if not toggle.enabled then
    return never
  end
  local g = new_gen()
  for _, dep in ipairs(toggle.dependencies) do
    g:emit("if not %s(ctx) then return false end", g:const(parent_check(dep)))
  end
  if #toggle.strategies == 0 then
    g:emit("do return true end") -- an enabled toggle without strategies is on for everyone
  end
  for _, s in ipairs(toggle.strategies) do
    g:strategy(s)
  end
  g:emit("return false")
  return g:load()
end

compile = function(toggle)
  local fn = compiled[toggle]
  if fn == nil then
    fn = make_toggle(toggle)
    compiled[toggle] = fn
  end
  return fn
end

----------------------------------------------------------------------------
-- Public API
----------------------------------------------------------------------------

local NO_CONTEXT = {}

function M.is_enabled(toggle, ctx)
  local fn = compiled[toggle] -- nil for a toggle not yet compiled, and for any non-table
  if fn == nil then
    if type(toggle) ~= "table" then
      return false
    end
    fn = compile(toggle)
  end
  local on = fn(ctx or NO_CONTEXT)
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
  local on, strategy = compile(toggle)(ctx)
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
