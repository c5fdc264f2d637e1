-- Scenario 3: POST /api/auth/refresh where every request presents a token obtained by
-- the previous rotation. Each thread owns a queue of live refresh tokens (one per
-- connection plus one, from REFRESH_TOKENS_FILE, one per line); a request takes one,
-- its answer puts the new one back. Every token is presented exactly once. The spare
-- token is for wrk itself: it calls request() once at start-up in the first thread to
-- verify the script, and that request is never sent.
package.path = os.getenv("LOAD_DIR") .. "/?.lua;" .. package.path
local report = require("report")

local next_thread = 0
local all_tokens = {}
local per_thread = tonumber(os.getenv("TOKENS_PER_THREAD"))

function setup(thread)
  if #all_tokens == 0 then
    for line in io.lines(os.getenv("REFRESH_TOKENS_FILE")) do
      all_tokens[#all_tokens + 1] = line
    end
  end
  local mine = {}
  for i = 1, per_thread do
    mine[i] = all_tokens[next_thread * per_thread + i]
  end
  thread:set("initial", table.concat(mine, "\n"))
  next_thread = next_thread + 1
end

local queue = {}
local first, last = 1, 0
local lost = 0

function init(args)
  for token in string.gmatch(initial, "[^\n]+") do
    last = last + 1
    queue[last] = token
  end
end

function request()
  if first > last then
    -- Every token of this thread is in flight or lost: ask for a dud (counted as an error).
    return wrk.format("POST", "/api/auth/refresh", {["Content-Type"] = "application/json"}, '{"refresh_token":"brt_none"}')
  end
  local token = queue[first]
  queue[first] = nil
  first = first + 1
  return wrk.format("POST", "/api/auth/refresh", {["Content-Type"] = "application/json"},
    '{"refresh_token":"' .. token .. '"}')
end

function response(status, headers, body)
  local token = string.match(body, '"refresh_token":"([^"]+)"')
  if status == 200 and token then
    last = last + 1
    queue[last] = token
  end
end

done = report.done(os.getenv("SCENARIO") or "refresh")
