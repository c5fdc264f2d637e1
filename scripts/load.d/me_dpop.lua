-- GET /api/me with a DPoP-bound access token: Authorization: DPoP and a proof per
-- request. DPOP_PROOFS_FILE (from crates/server/examples/dpop_proofs.rs) holds the
-- access token, then one proof per line; thread i of n sends lines i, i+n, ..., so no
-- proof is sent twice. A thread out of proofs repeats its last one, which the server
-- refuses as a replay: counted as errors, so a run that was given too few shows it.
-- The requests are formatted in init, not per request: building one in Lua costs wrk
-- CPU that the server, on the same cores, would otherwise get, and Bearer /api/me
-- (me.lua) has no such cost (wrk sends its one static request).
package.path = os.getenv("LOAD_DIR") .. "/?.lua;" .. package.path
local report = require("report")

local threads = 0
function setup(thread)
  thread:set("index", threads)
  threads = threads + 1
end

local requests, next_request = {}, 1

function init(args)
  local n = tonumber(os.getenv("THREADS"))
  local line_no, authorization = 0, nil
  for line in io.lines(os.getenv("DPOP_PROOFS_FILE")) do
    if line_no == 0 then
      authorization = "DPoP " .. line
    elseif (line_no - 1) % n == index then
      requests[#requests + 1] =
        wrk.format("GET", "/api/me", {["Authorization"] = authorization, ["DPoP"] = line})
    end
    line_no = line_no + 1
  end
end

function request()
  local request = requests[next_request] or requests[#requests]
  next_request = next_request + 1
  return request
end

done = report.done(os.getenv("SCENARIO") or "me_dpop")
