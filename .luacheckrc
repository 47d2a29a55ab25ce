-- luacheck: the scripts run in the gcs sandbox (scripts/README.md), so they
-- are linted against exactly what it offers. Anything not listed here is nil
-- at run time: using it is a typo or a sandbox violation.
local function fields(list)
  return { fields = list }
end

stds.gcs_sandbox = {
  read_globals = {
    "_G", "_VERSION", "assert", "collectgarbage", "error", "getmetatable", "ipairs", "load",
    "next", "pairs", "pcall", "print", "rawequal", "rawget", "rawlen", "rawset", "require",
    "select", "setmetatable", "tonumber", "tostring", "type", "warn", "xpcall",
    string = fields({
      "byte", "char", "dump", "find", "format", "gmatch", "gsub", "len", "lower", "match",
      "pack", "packsize", "rep", "reverse", "sub", "unpack", "upper",
    }),
    table = fields({ "concat", "insert", "move", "pack", "remove", "sort", "unpack" }),
    math = fields({
      "abs", "acos", "asin", "atan", "ceil", "cos", "deg", "exp", "floor", "fmod", "huge",
      "log", "max", "maxinteger", "min", "mininteger", "modf", "pi", "rad", "random",
      "randomseed", "sin", "sqrt", "tan", "tointeger", "type", "ult",
    }),
    utf8 = fields({ "char", "charpattern", "codepoint", "codes", "len", "offset" }),
    os = fields({ "clock", "time" }),
    package = fields({ "config", "loaded", "preload", "searchers" }),
  },
}

std = "gcs_sandbox"
max_line_length = 120

files["tests/lua"] = { std = "lua54+busted" }
