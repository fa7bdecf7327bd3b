-- POST /v1/events: a product.md section 7 intake body, a unique Idempotency-Key per request
-- (run label + thread id + counter), the bearer API key from BENCH_TOKEN.
local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
local token = os.getenv("BENCH_TOKEN") or ""
local run = os.getenv("BENCH_RUN") or tostring(os.time())
local path = os.getenv("BENCH_PATH") or "/v1/events"

local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

local counter = 0
local channels = {"hotline", "email", "web", "api", "chat_group"}

function request()
  counter = counter + 1
  local urgent = (counter % 20 == 0) and "true" or "false"
  local body = string.format(
    '{"title":"Printer offline on floor %d (%d-%d)",' ..
    '"description":"The printer on floor %d stops after every job; third time this week.",' ..
    '"channel":"%s","urgent":%s,' ..
    '"reporter":{"name":"Bench Reporter %d","email":"reporter%d@example.com"},' ..
    '"involved_departments":["IT"]}',
    counter % 9, tid, counter, counter % 9, channels[counter % 5 + 1], urgent,
    counter % 1000, counter % 1000)
  return wrk.format("POST", path, {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token,
    ["Idempotency-Key"] = run .. "-" .. tid .. "-" .. counter,
  }, body)
end

done = common.done
