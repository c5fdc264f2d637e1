-- Scenarios 2 and 5: GET /api/me with a valid access token (ACCESS_TOKEN).
package.path = os.getenv("LOAD_DIR") .. "/?.lua;" .. package.path
local report = require("report")
wrk.method = "GET"
wrk.path = "/api/me"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("ACCESS_TOKEN")
done = report.done(os.getenv("SCENARIO") or "me")
