-- The official Unleash client specification (vendored under
-- tests/data/unleash-client-specification) run against scripts/unleash.lua:
-- one `it` per isEnabled test of the files gcs must pass.
--
-- Out of scope, so not run: variants (08, 16 and every `variantTests` list),
-- dependent features (17), UTF-8 flag names for the variant API (18) and the
-- delta API (19, 20).

local cjson = require "cjson"
local unleash = require "unleash"

local SPEC_DIR = "tests/data/unleash-client-specification/"
local FILES = {
  "01-simple-examples", "02-user-with-id-strategy", "03-gradual-rollout-user-id-strategy",
  "04-gradual-rollout-session-id-strategy", "05-gradual-rollout-random-strategy",
  "06-remote-address-strategy", "07-multiple-strategies", "09-strategy-constraints",
  "10-flexible-rollout-strategy", "11-strategy-constraints-edge-cases", "12-custom-stickiness",
  "13-constraint-operators", "14-constraint-semver-operators", "15-global-constraints",
  "21-regex-constraint-operators", "22-cidr-constraint-operators",
}

local function read_json(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("a")
  f:close()
  return cjson.decode(text)
end

local total = 0

for _, file in ipairs(FILES) do
  local spec = read_json(SPEC_DIR .. file .. ".json")
  local features = {}
  for _, feature in ipairs(spec.state.features) do
    features[feature.name] = feature
  end
  local segments = spec.state.segments

  describe("client specification " .. file, function()
    assert.is_true(#spec.tests > 0, file .. " has no isEnabled tests")
    for n, test in ipairs(spec.tests) do
      total = total + 1
      it(string.format("#%d %s", n, test.description), function()
        local got = unleash.evaluate(features, segments, test.toggleName, test.context)
        assert.are.equal(test.expectedResult, got)
      end)
    end
  end)
end

describe("client specification", function()
  it("ran " .. total .. " isEnabled tests from " .. #FILES .. " files", function()
    print(string.format("\nUnleash client specification: %d isEnabled tests from %d files", total, #FILES))
    assert.is_true(total >= 200)
  end)
end)
