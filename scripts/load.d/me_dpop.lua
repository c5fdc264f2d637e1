-- GET /api/me with a DPoP-bound access token: Authorization: DPoP and a proof per
-- request. DPOP_PROOFS_FILE (from crates/server/examples/dpop_proofs.rs) holds the
-- access token, then one proof per line; thread i of n sends lines i, i+n, ..., so no
-- proof is sent twice. A thread out of proofs repeats its last one, which the server
-- refuses as a replay: counted as errors, so a run that was given too few shows it.
package.path = os.getenv("LOAD_DIR") .. "/?.lua;" .. package.path
local report = require("report")

local threads = 0
function setup(thread)
  thread:set("index", threads)
  threads = threads + 1
end

local access, proofs, next_proof = nil, {}, 1

function init(args)
  local n = tonumber(os.getenv("THREADS"))
  local line_no = 0
  for line in io.lines(os.getenv("DPOP_PROOFS_FILE")) do
    if line_no == 0 then
      access = line
    elseif (line_no - 1) % n == index then
      proofs[#proofs + 1] = line
    end
    line_no = line_no + 1
  end
end

function request()
  local proof = proofs[next_proof] or proofs[#proofs]
  next_proof = next_proof + 1
  return wrk.format("GET", "/api/me", {["Authorization"] = "DPoP " .. access, ["DPoP"] = proof})
end

done = report.done(os.getenv("SCENARIO") or "me_dpop")
