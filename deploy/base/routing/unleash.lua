-- Unleash feature-toggle evaluation, as the official client SDKs do it.
--
-- Follows the Unleash client specification (the conformance suite in
-- tests/lua/unleash_spec.lua runs it) and, where the specification is silent,
-- the Node SDK. Variants, dependent features and the delta API are not needed
-- by gcs and are not implemented.
--
--   local unleash = require "unleash"
--   unleash.is_enabled(toggle, ctx)             --> true / false
--
-- toggle: one feature as the client API serves it (name, enabled, strategies;
-- each strategy has name, parameters, constraints and perhaps segments).
-- ctx: { userId=, sessionId=, appName=, environment=, remoteAddress=,
--        currentTime= (ISO-8601 text, default now), properties = { ... } }
--
-- Segments: the gcs host has already copied each referenced segment's
-- constraints into the strategy's constraints and dropped the reference. A
-- reference it could not resolve stays in strategy.segments, and such a
-- strategy is off, as in the SDKs. M.evaluate resolves segments itself from
-- the top-level list of a full client API answer.

local cjson = require "cjson"
local gcs = require "gcs"

local M = {}

----------------------------------------------------------------------------
-- Small helpers
----------------------------------------------------------------------------

local function trim(s)
  return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

-- Splits "a, b ,c" on commas, trimming each part (the SDKs split on /\s*,\s*/).
local function split_list(text)
  local parts = {}
  for part in (text .. ","):gmatch("([^,]*),") do
    parts[#parts + 1] = trim(part)
  end
  return parts
end

-- The SDKs read a context field at the top level first, then in properties,
-- and compare it as a string. nil when absent.
local function context_value(ctx, field)
  local value = ctx[field]
  if type(value) == "string" then
    return value
  end
  if value == nil and type(ctx.properties) == "table" then
    value = ctx.properties[field]
  end
  if value == nil or value == cjson.null then
    return nil
  end
  return tostring(value)
end

-- JavaScript's Number(text): blank is 0, anything not numeric is NaN (nil here).
local function js_number(text)
  if text == nil then
    return nil
  end
  if type(text) == "number" then
    return text
  end
  -- the common case, a rollout such as "30": no trimming or pattern work
  if text:find("^%d+$") then
    return tonumber(text)
  end
  local t = trim(tostring(text))
  if t == "" then
    return 0
  end
  return tonumber(t)
end

-- The number 1..100 a sticky ID falls on; bit-exact with the SDKs.
function M.normalized(id, group_id)
  return gcs.murmur3(group_id .. ":" .. id, 0) % 100 + 1
end

----------------------------------------------------------------------------
-- Dates: ISO-8601 to seconds since the epoch (os.date is not available)
----------------------------------------------------------------------------

-- Days since 1970-01-01 of a proleptic Gregorian date.
local function days_from_civil(y, m, d)
  if m <= 2 then
    y = y - 1
  end
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = (153 * mp + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

-- "2022-01-29", "2022-01-29T13:00:00.000Z", "2022-01-22T13:00:00+02:00".
-- A time without an offset is taken as UTC. nil when not a date.
function M.parse_time(text)
  if type(text) ~= "string" then
    return nil
  end
  local y, mo, d, rest = text:match("^(%d%d%d%d)-(%d%d)-(%d%d)(.*)$")
  if not y then
    return nil
  end
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  if mo < 1 or mo > 12 or d < 1 or d > 31 then
    return nil
  end
  local h, mi, s, frac, zone = 0, 0, 0, 0, ""
  if rest ~= "" then
    local hh, mm, tail = rest:match("^[T ](%d%d):(%d%d)(.*)$")
    if not hh then
      return nil
    end
    h, mi, rest = tonumber(hh), tonumber(mm), tail
    local ss, tail2 = rest:match("^:(%d%d)(.*)$")
    if ss then
      s, rest = tonumber(ss), tail2
      local digits, tail3 = rest:match("^%.(%d+)(.*)$")
      if digits then
        frac, rest = tonumber("0." .. digits), tail3
      end
    end
    zone = rest
    if h > 24 or mi > 59 or s > 59 then
      return nil
    end
  end
  local offset = 0
  if zone ~= "" and zone ~= "Z" and zone ~= "z" then
    local sign, oh, om = zone:match("^([+-])(%d%d):?(%d%d)$")
    if not sign then
      return nil
    end
    offset = (tonumber(oh) * 60 + tonumber(om)) * 60
    if sign == "-" then
      offset = -offset
    end
  end
  return days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s + frac - offset
end

----------------------------------------------------------------------------
-- Semantic versions (strict SemVer 2.0.0, as the SDKs validate it)
----------------------------------------------------------------------------

local function parse_number_id(text)
  if text:match("^0%d") then
    return nil
  end
  return tonumber(text)
end

-- Returns {major, minor, patch, pre = {identifiers}} or nil.
function M.parse_semver(text)
  if type(text) ~= "string" then
    return nil
  end
  local core, pre, build = text:match("^(%d+%.%d+%.%d+)(%-?[0-9A-Za-z.-]*)(%+?[0-9A-Za-z.-]*)$")
  if not core then
    return nil
  end
  local version = { pre = {} }
  for part in core:gmatch("%d+") do
    local n = parse_number_id(part)
    if n == nil then
      return nil
    end
    version[#version + 1] = n
  end
  if pre ~= "" then
    if pre:sub(1, 1) ~= "-" then
      return nil
    end
    for id in (pre:sub(2) .. "."):gmatch("([^.]*)%.") do
      if id == "" or (id:match("^%d+$") and id:match("^0%d")) then
        return nil
      end
      version.pre[#version.pre + 1] = id
    end
  end
  if build ~= "" then
    for id in (build:sub(2) .. "."):gmatch("([^.]*)%.") do
      if id == "" then
        return nil
      end
    end
  end
  return version
end

local function compare_pre_ids(a, b)
  local na, nb = a:match("^%d+$") and tonumber(a), b:match("^%d+$") and tonumber(b)
  if na and nb then
    return na < nb and -1 or (na > nb and 1 or 0)
  elseif na then
    return -1 -- numeric identifiers sort before alphanumeric ones
  elseif nb then
    return 1
  end
  return a < b and -1 or (a > b and 1 or 0)
end

-- <0, 0, >0 by SemVer precedence.
function M.compare_semver(a, b)
  for i = 1, 3 do
    if a[i] ~= b[i] then
      return a[i] < b[i] and -1 or 1
    end
  end
  -- A release sorts after its pre-releases.
  if #a.pre == 0 or #b.pre == 0 then
    return (#a.pre == 0 and 1 or 0) - (#b.pre == 0 and 1 or 0)
  end
  for i = 1, math.max(#a.pre, #b.pre) do
    if a.pre[i] == nil then
      return -1
    elseif b.pre[i] == nil then
      return 1
    end
    local c = compare_pre_ids(a.pre[i], b.pre[i])
    if c ~= 0 then
      return c
    end
  end
  return 0
end

----------------------------------------------------------------------------
-- IP addresses and CIDR ranges
----------------------------------------------------------------------------

-- Returns the address as a list of bytes (4 or 16), or nil.
local function parse_ipv4(text)
  local a, b, c, d = text:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if not a then
    return nil
  end
  local bytes = { tonumber(a), tonumber(b), tonumber(c), tonumber(d) }
  for _, byte in ipairs(bytes) do
    if byte > 255 then
      return nil
    end
  end
  return bytes
end

local function parse_ipv6_groups(text, groups)
  if text == "" then
    return true
  end
  for group in (text .. ":"):gmatch("([^:]*):") do
    if not group:match("^%x%x?%x?%x?$") then
      return false
    end
    groups[#groups + 1] = tonumber(group, 16)
  end
  return true
end

local function parse_ipv6(text)
  -- An embedded IPv4 tail ("::ffff:1.2.3.4") becomes two groups.
  local head, v4 = text:match("^(.*:)(%d+%.%d+%.%d+%.%d+)$")
  local tail_groups = {}
  if head then
    local b = parse_ipv4(v4)
    if not b then
      return nil
    end
    text = head .. "0:0"
    tail_groups = { b[1] * 256 + b[2], b[3] * 256 + b[4] }
  end
  local left, right = text, nil
  local gap = text:find("::", 1, true)
  if gap then
    left, right = text:sub(1, gap - 1), text:sub(gap + 2)
    if right:find("::", 1, true) then
      return nil
    end
  end
  local lg, rg = {}, {}
  if not parse_ipv6_groups(left, lg) or (right and not parse_ipv6_groups(right, rg)) then
    return nil
  end
  local count = #lg + #rg
  if (gap and count > 7) or (not gap and count ~= 8) then
    return nil
  end
  local groups = lg
  for _ = 1, 8 - count do
    groups[#groups + 1] = 0
  end
  for _, g in ipairs(rg) do
    groups[#groups + 1] = g
  end
  if #tail_groups > 0 then
    groups[7], groups[8] = tail_groups[1], tail_groups[2]
  end
  local bytes = {}
  for _, g in ipairs(groups) do
    bytes[#bytes + 1] = g // 256
    bytes[#bytes + 1] = g % 256
  end
  return bytes
end

local function parse_ip(text)
  if text:find(":", 1, true) then
    return parse_ipv6(text)
  end
  return parse_ipv4(text)
end

-- "10.0.0.0/8", "2001:db8::/32" or a single address. nil when invalid.
local function parse_cidr(text)
  local addr, bits = text:match("^([^/]+)/(%d+)$")
  local bytes = parse_ip(addr or text)
  if not bytes then
    return nil
  end
  local prefix = bits and tonumber(bits) or #bytes * 8
  if prefix > #bytes * 8 then
    return nil
  end
  return { bytes = bytes, prefix = prefix }
end

local function cidr_contains(range, bytes)
  if #range.bytes ~= #bytes then
    return false
  end
  local remaining = range.prefix
  for i = 1, #bytes do
    if remaining <= 0 then
      return true
    end
    local keep = math.min(remaining, 8)
    local shift = 8 - keep
    if (range.bytes[i] >> shift) ~= (bytes[i] >> shift) then
      return false
    end
    remaining = remaining - keep
  end
  return true
end

----------------------------------------------------------------------------
-- Regular expressions for the REGEX operator
--
-- The specification asks for RE2 syntax (what Go and Rust SDKs use): no
-- look-around, no backreferences; inline flags i, m, s. Lua patterns are not
-- regular expressions, so this is a small backtracking matcher over bytes.
-- A pattern it cannot parse never matches, as the specification requires.
----------------------------------------------------------------------------

local regex = {}

local function is_word_byte(b)
  return b ~= nil
    and ((b >= 48 and b <= 57) or (b >= 65 and b <= 90) or (b >= 97 and b <= 122) or b == 95)
end

local function lower_byte(b)
  if b >= 65 and b <= 90 then
    return b + 32
  end
  return b
end

local perl_classes = {
  d = function(b) return b >= 48 and b <= 57 end,
  w = is_word_byte,
  s = function(b) return b == 32 or (b >= 9 and b <= 13) end,
}

local posix_classes = {
  alpha = "%a", digit = "%d", alnum = "%w", upper = "%u", lower = "%l", space = "%s",
  punct = "%p", xdigit = "%x", cntrl = "%c", print = "[\32-\126]", graph = "[\33-\126]",
  blank = "[ \t]", word = "[%w_]", ascii = "[\0-\127]",
}

local function posix_class(name)
  local lua_class = posix_classes[name]
  if not lua_class then
    return nil
  end
  return function(b)
    return string.char(b):find("^" .. lua_class) ~= nil
  end
end

local simple_escapes = { n = 10, t = 9, r = 13, f = 12, v = 11 }

-- Parser state: p = { src, pos, flags = { i, m, s } }
local function peek(p, offset)
  local at = p.pos + (offset or 0)
  return p.src:sub(at, at)
end

local function copy_flags(flags)
  return { i = flags.i, m = flags.m, s = flags.s }
end

-- One escape outside or inside a class. Returns a byte, or a predicate, or
-- an assertion node ("b", "B", "A", "z") when allowed.
local function parse_escape(p, in_class)
  local c = peek(p)
  p.pos = p.pos + 1
  if c == "" then
    error("trailing backslash")
  end
  local negated = c:match("^[DWS]$")
  local perl = perl_classes[c:lower()]
  if perl then
    if negated then
      return function(b) return not perl(b) end
    end
    return perl
  end
  if simple_escapes[c] then
    return simple_escapes[c]
  end
  if c == "x" then
    local hex = p.src:match("^%x%x", p.pos)
    if not hex then
      hex = p.src:match("^{(%x+)}", p.pos)
      if not hex or tonumber(hex, 16) > 255 then
        error("unsupported \\x escape")
      end
      p.pos = p.pos + #hex + 2
    else
      p.pos = p.pos + 2
    end
    return tonumber(hex, 16)
  end
  if not in_class and (c == "b" or c == "B" or c == "A" or c == "z") then
    return { assertion = c }
  end
  if c:match("^%p$") then
    return c:byte()
  end
  error("unsupported escape \\" .. c) -- backreferences, \p{...}, \Q...\E
end

local function parse_class(p)
  local negate = false
  if peek(p) == "^" then
    negate = true
    p.pos = p.pos + 1
  end
  local items = {}
  local first = true
  while true do
    local c = peek(p)
    if c == "" then
      error("missing ]")
    end
    if c == "]" and not first then
      p.pos = p.pos + 1
      break
    end
    first = false
    local name_neg, name = p.src:match("^%[:(%^?)(%a+):%]", p.pos)
    local item
    if name then
      local pred = posix_class(name)
      if not pred then
        error("unknown class [:" .. name .. ":]")
      end
      p.pos = p.pos + #name + #name_neg + 4
      item = name_neg == "^" and function(b) return not pred(b) end or pred
    else
      local lo
      if c == "\\" then
        p.pos = p.pos + 1
        lo = parse_escape(p, true)
      else
        lo = c:byte()
        p.pos = p.pos + 1
      end
      if type(lo) == "number" and peek(p) == "-" and peek(p, 1) ~= "]" and peek(p, 1) ~= "" then
        p.pos = p.pos + 1
        local hi
        if peek(p) == "\\" then
          p.pos = p.pos + 1
          hi = parse_escape(p, true)
        else
          hi = peek(p):byte()
          p.pos = p.pos + 1
        end
        if type(hi) ~= "number" or hi < lo then
          error("bad class range")
        end
        item = { lo, hi }
      elseif type(lo) == "number" then
        item = { lo, lo }
      else
        item = lo
      end
    end
    items[#items + 1] = item
  end
  return { kind = "set", items = items, negate = negate }
end

local parse_alternation

local function parse_group(p)
  -- p.pos is just past "("
  if peek(p) ~= "?" then
    local inner = parse_alternation(p, copy_flags(p.flags))
    return { kind = "group", inner = inner }
  end
  p.pos = p.pos + 1
  local c = peek(p)
  if c == "P" or (c == "<" and peek(p, 1) ~= "=" and peek(p, 1) ~= "!") then
    local name_end = p.src:find(">", p.pos, true)
    if not name_end then
      error("bad group name")
    end
    p.pos = name_end + 1
    return { kind = "group", inner = parse_alternation(p, copy_flags(p.flags)) }
  end
  -- Flags: (?i) changes the rest of the enclosing group, (?i:...) only its body.
  local flags_text, closer = p.src:match("^([imsU-]*)([:)])", p.pos)
  if not flags_text then
    error("unsupported group (?" .. c) -- look-ahead and look-behind
  end
  p.pos = p.pos + #flags_text + 1
  local flags = copy_flags(p.flags)
  local on = true
  for f in flags_text:gmatch(".") do
    if f == "-" then
      on = false
    elseif f == "U" then
      error("flag U not supported")
    else
      flags[f] = on
    end
  end
  if closer == ")" then
    p.flags = flags
    return nil
  end
  return { kind = "group", inner = parse_alternation(p, flags) }
end

local function parse_repeat_bounds(p)
  local min, comma, max = p.src:match("^{(%d+)(,?)(%d*)}", p.pos)
  if not min then
    return nil
  end
  p.pos = p.pos + #min + #comma + #max + 2
  min = tonumber(min)
  if comma == "" then
    max = min
  elseif max == "" then
    max = math.huge
  else
    max = tonumber(max)
  end
  if max < min or min > 1000 or (max ~= math.huge and max > 1000) then
    error("bad repeat bounds")
  end
  return min, max
end

local function parse_atom(p)
  local c = peek(p)
  local flags = p.flags
  p.pos = p.pos + 1
  if c == "(" then
    return parse_group(p)
  elseif c == "[" then
    local node = parse_class(p)
    node.ci = flags.i
    return node
  elseif c == "." then
    return { kind = "any", dotall = flags.s }
  elseif c == "^" then
    return { kind = "bol", multiline = flags.m }
  elseif c == "$" then
    return { kind = "eol", multiline = flags.m }
  elseif c == "\\" then
    local e = parse_escape(p, false)
    if type(e) == "number" then
      return { kind = "set", items = { { e, e } }, ci = flags.i }
    elseif type(e) == "function" then
      return { kind = "set", items = { e } }
    end
    return { kind = e.assertion }
  elseif c == "*" or c == "+" or c == "?" then
    error("missing argument to repetition operator")
  end
  local b = c:byte()
  return { kind = "set", items = { { b, b } }, ci = flags.i }
end

local function parse_sequence(p)
  local items = {}
  while p.pos <= #p.src do
    local c = peek(p)
    if c == "|" or c == ")" then
      break
    end
    local atom = parse_atom(p)
    if atom then
      local min, max
      local q = peek(p)
      if q == "*" then
        min, max = 0, math.huge
        p.pos = p.pos + 1
      elseif q == "+" then
        min, max = 1, math.huge
        p.pos = p.pos + 1
      elseif q == "?" then
        min, max = 0, 1
        p.pos = p.pos + 1
      elseif q == "{" then
        min, max = parse_repeat_bounds(p)
      end
      if min then
        local lazy = false
        if peek(p) == "?" then
          lazy = true
          p.pos = p.pos + 1
        end
        if peek(p):match("^[*+?]$") then
          error("bad repetition operator")
        end
        atom = { kind = "repeat", inner = atom, min = min, max = max, lazy = lazy }
      end
      items[#items + 1] = atom
    end
  end
  return { kind = "seq", items = items }
end

parse_alternation = function(p, flags)
  local saved = p.flags
  p.flags = flags
  local alternatives = { parse_sequence(p) }
  while peek(p) == "|" do
    p.pos = p.pos + 1
    alternatives[#alternatives + 1] = parse_sequence(p)
  end
  if peek(p) == ")" then
    if saved == nil then
      error("unexpected )")
    end
    p.pos = p.pos + 1
  elseif saved ~= nil then
    error("missing )")
  end
  p.flags = saved
  return { kind = "alt", items = alternatives }
end

-- Compiles a node into match(subject, i, k): true when the node matches at
-- byte i and the continuation k accepts the position after it.
local compile

local function set_matcher(node)
  local function in_set(b)
    for _, item in ipairs(node.items) do
      if type(item) == "function" then
        if item(b) then
          return true
        end
      elseif b >= item[1] and b <= item[2] then
        return true
      end
    end
    return false
  end
  local function test(b)
    local hit = in_set(b)
    if not hit and node.ci then
      local l = lower_byte(b)
      local u = (l >= 97 and l <= 122) and l - 32 or l
      hit = in_set(l) or in_set(u)
    end
    if node.negate then
      return not hit
    end
    return hit
  end
  return function(s, i, k)
    local b = s:byte(i)
    if b ~= nil and test(b) then
      return k(i + 1)
    end
    return false
  end
end

local function repeat_matcher(node)
  local inner = compile(node.inner)
  local min, max, lazy = node.min, node.max, node.lazy
  return function(s, i, k)
    local function step(pos, count)
      local function more()
        return inner(s, pos, function(j)
          if j == pos and count >= min then
            return false -- an empty iteration would loop forever
          end
          return step(j, count + 1)
        end)
      end
      if count < min then
        return more()
      end
      if lazy then
        return k(pos) or (count < max and more())
      end
      return (count < max and more()) or k(pos)
    end
    return step(i, 0)
  end
end

compile = function(node)
  local kind = node.kind
  if kind == "set" then
    return set_matcher(node)
  elseif kind == "any" then
    return function(s, i, k)
      local b = s:byte(i)
      if b ~= nil and (node.dotall or b ~= 10) then
        return k(i + 1)
      end
      return false
    end
  elseif kind == "bol" then
    return function(s, i, k)
      if i == 1 or (node.multiline and s:byte(i - 1) == 10) then
        return k(i)
      end
      return false
    end
  elseif kind == "eol" then
    return function(s, i, k)
      if i == #s + 1 or (node.multiline and s:byte(i) == 10) then
        return k(i)
      end
      return false
    end
  elseif kind == "A" then
    return function(_, i, k) return i == 1 and k(i) end
  elseif kind == "z" then
    return function(s, i, k) return i == #s + 1 and k(i) end
  elseif kind == "b" or kind == "B" then
    local want = kind == "b"
    return function(s, i, k)
      local boundary = is_word_byte(s:byte(i - 1)) ~= is_word_byte(s:byte(i))
      return boundary == want and k(i)
    end
  elseif kind == "group" then
    return compile(node.inner)
  elseif kind == "repeat" then
    return repeat_matcher(node)
  elseif kind == "seq" then
    local parts = {}
    for n, item in ipairs(node.items) do
      parts[n] = compile(item)
    end
    return function(s, i, k)
      local function from(n, pos)
        if n > #parts then
          return k(pos)
        end
        return parts[n](s, pos, function(j) return from(n + 1, j) end)
      end
      return from(1, i)
    end
  elseif kind == "alt" then
    local choices = {}
    for n, item in ipairs(node.items) do
      choices[n] = compile(item)
    end
    return function(s, i, k)
      for _, choice in ipairs(choices) do
        if choice(s, i, k) then
          return true
        end
      end
      return false
    end
  end
  error("unknown node " .. tostring(kind))
end

-- Returns a function(subject) -> boolean, or nil and the reason.
function regex.compile(pattern, case_insensitive)
  local p = { src = pattern, pos = 1 }
  local ok, tree = pcall(parse_alternation, p, { i = case_insensitive or false })
  if not ok then
    return nil, tree
  end
  local match = compile(tree)
  local function accept()
    return true
  end
  return function(subject)
    for start = 1, #subject + 1 do
      if match(subject, start, accept) then
        return true
      end
    end
    return false
  end
end

M.regex = regex

----------------------------------------------------------------------------
-- Constraints
----------------------------------------------------------------------------

-- The values of a list operator: empty ones dropped, the rest trimmed.
local function clean_values(values)
  local out = {}
  for _, v in ipairs(type(values) == "table" and values or {}) do
    if type(v) == "string" and v ~= "" then
      out[#out + 1] = trim(v)
    end
  end
  return out
end

local function op_in(c, ctx)
  local value = context_value(ctx, c.contextName)
  local found = false
  for _, v in ipairs(clean_values(c.values)) do
    if v == value then
      found = true
      break
    end
  end
  if c.operator == "IN" then
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
  local value = context_value(ctx, c.contextName)
  if value == nil then
    return false
  end
  local values = clean_values(c.values)
  if c.caseInsensitive then
    value = value:lower()
    for n, v in ipairs(values) do
      values[n] = v:lower()
    end
  end
  local test = string_tests[c.operator]
  for _, v in ipairs(values) do
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
  local expected = js_number(c.value)
  local value = js_number(context_value(ctx, c.contextName))
  if expected == nil or value == nil then
    return false
  end
  return number_tests[c.operator](value, expected)
end

-- The SDKs compare currentTime whatever the constraint's contextName says.
local function op_date(c, ctx)
  local limit = M.parse_time(c.value)
  local now
  if ctx.currentTime ~= nil then
    now = M.parse_time(ctx.currentTime)
  else
    now = os.time()
  end
  if limit == nil or now == nil then
    return false
  end
  if c.operator == "DATE_AFTER" then
    return now > limit
  end
  return now < limit
end

local semver_tests = {
  SEMVER_EQ = function(order) return order == 0 end,
  SEMVER_GT = function(order) return order > 0 end,
  SEMVER_GTE = function(order) return order >= 0 end,
  SEMVER_LT = function(order) return order < 0 end,
  SEMVER_LTE = function(order) return order <= 0 end,
}

local function op_semver(c, ctx)
  local value = M.parse_semver(context_value(ctx, c.contextName))
  -- The SDKs' semver library forgives a leading "v" or "=" in the constraint.
  local expected = type(c.value) == "string" and M.parse_semver((c.value:gsub("^[v=]", "")))
  if not value or not expected then
    return false
  end
  return semver_tests[c.operator](M.compare_semver(value, expected))
end

local function op_cidr(c, ctx)
  local value = context_value(ctx, c.contextName)
  local address = value and parse_ip(value)
  if not address then
    return false
  end
  for _, v in ipairs(clean_values(c.values)) do
    local range = parse_cidr(v)
    if range and cidr_contains(range, address) then
      return true
    end
  end
  return false
end

local function op_regex(c, ctx)
  local value = context_value(ctx, c.contextName)
  if value == nil or type(c.value) ~= "string" then
    return false
  end
  local match = regex.compile(c.value, c.caseInsensitive)
  if not match then
    return false
  end
  return match(value)
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

-- An unknown operator is false, and stays false when inverted.
local function constraint_holds(c, ctx)
  if type(c) ~= "table" then
    return false
  end
  local operator = operators[c.operator]
  if not operator then
    return false
  end
  local result = operator(c, ctx)
  if c.inverted then
    return not result
  end
  return result
end

-- Shared, never modified: saves a table per evaluation.
local NONE = {}

function M.constraints_hold(constraints, ctx)
  for _, c in ipairs(constraints or NONE) do
    if not constraint_holds(c, ctx) then
      return false
    end
  end
  return true
end

----------------------------------------------------------------------------
-- Strategies
----------------------------------------------------------------------------

local function percentage_hit(id, group_id, percentage)
  local pct = js_number(percentage)
  return pct ~= nil and pct > 0 and M.normalized(id, group_id) <= pct
end

local function random_id()
  return tostring(math.floor(math.random() * 10000 + 0.5) + 1)
end

local function stickiness_id(stickiness, ctx)
  if stickiness == "default" then
    return context_value(ctx, "userId") or context_value(ctx, "sessionId") or random_id()
  elseif stickiness == "random" then
    return random_id()
  end
  return context_value(ctx, stickiness)
end

local strategies = {}

function strategies.default()
  return true
end

function strategies.userWithId(params, ctx)
  local user = context_value(ctx, "userId")
  if user == nil or params.userIds == nil then
    return false
  end
  for _, id in ipairs(split_list(tostring(params.userIds))) do
    if id == user then
      return true
    end
  end
  return false
end

function strategies.flexibleRollout(params, ctx, toggle_name)
  local group_id = params.groupId
  if group_id == nil or group_id == "" then
    group_id = toggle_name or ""
  end
  local id = stickiness_id(params.stickiness or "default", ctx)
  if id == nil or id == "" then
    return false
  end
  return percentage_hit(id, tostring(group_id), params.rollout)
end

-- The older gradual rollouts, sticky on one context field.
local function gradual_rollout(field, params, ctx)
  local id = context_value(ctx, field)
  if id == nil or id == "" then
    return false
  end
  return percentage_hit(id, tostring(params.groupId or ""), params.percentage)
end

function strategies.gradualRolloutUserId(params, ctx)
  return gradual_rollout("userId", params, ctx)
end

function strategies.gradualRolloutSessionId(params, ctx)
  return gradual_rollout("sessionId", params, ctx)
end

function strategies.gradualRolloutRandom(params)
  local pct = js_number(params.percentage)
  return pct ~= nil and pct >= math.random(1, 100)
end

-- Exact addresses and IPv4 CIDR ranges; invalid entries are skipped.
function strategies.remoteAddress(params, ctx)
  local remote = context_value(ctx, "remoteAddress")
  if params.IPs == nil or remote == nil then
    return false
  end
  local address = parse_ipv4(remote)
  for _, entry in ipairs(split_list(tostring(params.IPs))) do
    if entry == remote then
      return true
    end
    local range = parse_cidr(entry)
    if address and range and #range.bytes == 4 and cidr_contains(range, address) then
      return true
    end
  end
  return false
end

-- Constraints from the segments a strategy references, or nil when one of
-- them is unknown (the SDKs then treat the strategy as off).
local function segment_constraints(strategy, segments_by_id)
  local refs = strategy.segments
  if type(refs) ~= "table" or #refs == 0 then
    return NONE
  end
  local out = {}
  for _, id in ipairs(refs) do
    local segment = segments_by_id and segments_by_id[id]
    if not segment then
      return nil
    end
    for _, c in ipairs(segment.constraints or {}) do
      out[#out + 1] = c
    end
  end
  return out
end

local function strategy_enabled(strategy, ctx, toggle_name, segments_by_id)
  local evaluate = strategies[strategy.name]
  if not evaluate then
    return false
  end
  local from_segments = segment_constraints(strategy, segments_by_id)
  if from_segments == nil then
    return false
  end
  if not M.constraints_hold(from_segments, ctx) then
    return false
  end
  if not M.constraints_hold(strategy.constraints, ctx) then
    return false
  end
  return evaluate(strategy.parameters or NONE, ctx, toggle_name) == true
end

----------------------------------------------------------------------------
-- Public API
----------------------------------------------------------------------------

-- segments_by_id (optional): { [id] = segment } for unresolved references.
function M.is_enabled(toggle, ctx, segments_by_id)
  if type(toggle) ~= "table" or toggle.enabled ~= true then
    return false
  end
  ctx = ctx or {}
  local list = toggle.strategies
  if type(list) ~= "table" or #list == 0 then
    return true -- an enabled toggle without strategies is on for everyone
  end
  for _, strategy in ipairs(list) do
    if type(strategy) == "table" and strategy_enabled(strategy, ctx, toggle.name, segments_by_id) then
      return true
    end
  end
  return false
end

-- Indexes a client API answer's top-level segments list by id.
function M.index_segments(segments)
  local by_id = {}
  for _, segment in ipairs(segments or {}) do
    if type(segment) == "table" and segment.id ~= nil then
      by_id[segment.id] = segment
    end
  end
  return by_id
end

-- features_by_name: { [name] = toggle }; segments: the top-level list (or
-- nil). An unknown feature is off.
function M.evaluate(features_by_name, segments, name, ctx)
  local toggle = features_by_name[name]
  if toggle == nil then
    return false
  end
  return M.is_enabled(toggle, ctx, M.index_segments(segments))
end

return M
