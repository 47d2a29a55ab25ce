-- The official Unleash client specification (vendored under
-- tests/data/unleash-client-specification) run through the unleash module
-- routing scripts require: the C evaluation built into gcs (build/lua/gcs.so,
-- loaded as build/lua/unleash.so), on states prepared by the same C code
-- exactly as the server prepares the answers it polls: one `it` per
-- isEnabled test and per getVariant test.
--
-- Not run: the delta API (19, 20), which changes how an SDK fetches the
-- state, not how it evaluates it; gcs polls the whole state.

local cjson = require "cjson"
local unleash = require "unleash"

local SPEC_DIR = "tests/data/unleash-client-specification/"
local SKIPPED = { ["19-delta-api-hydration.json"] = true, ["20-delta-api-events.json"] = true }

local function read_text(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("a")
  f:close()
  return text
end

local function read_json(path)
  return cjson.decode(read_text(path))
end

local files = {}
for _, file in ipairs(read_json(SPEC_DIR .. "index.json")) do
  if not SKIPPED[file] then
    files[#files + 1] = file
  end
end

local enabled_total, variant_total = 0, 0

for _, file in ipairs(files) do
  local spec = read_json(SPEC_DIR .. file)
  -- The state's own text, as a server would send it.
  local state = read_text(SPEC_DIR .. file):match('"state"%s*:%s*(%b{})')
  local toggles = unleash.prepare_answer(state)

  describe("client specification " .. file, function()
    for n, test in ipairs(spec.tests or {}) do
      enabled_total = enabled_total + 1
      it(string.format("#%d %s", n, test.description), function()
        assert.are.equal(test.expectedResult, unleash.is_enabled(toggles[test.toggleName], test.context))
      end)
    end
    for n, test in ipairs(spec.variantTests or {}) do
      variant_total = variant_total + 1
      it(string.format("variant #%d %s", n, test.description), function()
        local got = unleash.get_variant(toggles[test.toggleName], test.context)
        local want = test.expectedResult
        assert.are.same({
          name = want.name,
          enabled = want.enabled,
          feature_enabled = want.feature_enabled,
          payload = want.payload,
        }, got)
      end)
    end
  end)
end

describe("client specification", function()
  it("ran every isEnabled and getVariant test but the delta API's", function()
    print(string.format("\nUnleash client specification: %d isEnabled and %d getVariant tests from %d files",
      enabled_total, variant_total, #files))
    assert.are.equal(20, #files)
    assert.are.equal(223, enabled_total)
    assert.are.equal(52, variant_total)
  end)
end)
