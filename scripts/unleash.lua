-- Unleash toggle evaluation as the official client SDKs do it (placeholder:
-- the full client-specification evaluation follows; until then a toggle is
-- on only when enabled with a "default" strategy).
local M = {}

function M.is_enabled(toggle, ctx)
  local _ = ctx
  if type(toggle) ~= "table" or not toggle.enabled then
    return false
  end
  for _, strategy in ipairs(toggle.strategies or {}) do
    if strategy.name == "default" then
      return true
    end
  end
  return false
end

return M
