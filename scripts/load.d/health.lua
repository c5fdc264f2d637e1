-- Scenario 1: GET /api/health, the floor.
package.path = os.getenv("LOAD_DIR") .. "/?.lua;" .. package.path
local report = require("report")
wrk.method = "GET"
wrk.path = "/api/health"
done = report.done("health")
