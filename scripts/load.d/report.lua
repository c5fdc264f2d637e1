-- Shared by every scenario: one summary line per run, read by scripts/load.
--   RESULT <name> rps=<requests/s> p50_ms=<> p99_ms=<> requests=<> errors=<>
-- errors: non-2xx answers plus connect/read/write/timeout errors.
local M = {}

function M.done(name)
  return function(summary, latency, requests)
    local e = summary.errors
    local errors = e.status + e.connect + e.read + e.write + e.timeout
    io.write(string.format(
      "RESULT %s rps=%.0f p50_ms=%.2f p99_ms=%.2f requests=%d errors=%d\n",
      name,
      summary.requests / (summary.duration / 1e6),
      latency:percentile(50) / 1000,
      latency:percentile(99) / 1000,
      summary.requests,
      errors))
  end
end

return M
