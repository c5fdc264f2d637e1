-- Scenario 4: POST /api/auth/login (argon2id-bound).
package.path = os.getenv("LOAD_DIR") .. "/?.lua;" .. package.path
local report = require("report")
wrk.method = "POST"
wrk.path = "/api/auth/login"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"username":"' .. os.getenv("LOAD_USER") .. '","password":"' .. os.getenv("LOAD_PASSWORD") .. '"}'
done = report.done(os.getenv("SCENARIO") or "login")
