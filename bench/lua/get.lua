-- GET /v1/events/{id}: ids drawn (fixed seed per thread) from BENCH_IDS_FILE.
local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
local token = os.getenv("BENCH_TOKEN") or ""
local prefix = os.getenv("BENCH_PATH") or "/v1/events/"

local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

local ids = {}
local headers

function init(args)
  for line in io.lines(os.getenv("BENCH_IDS_FILE")) do
    ids[#ids + 1] = line
  end
  math.randomseed(7919 * tid)
  headers = {["Authorization"] = "Bearer " .. token}
end

function request()
  return wrk.format("GET", prefix .. ids[math.random(#ids)], headers)
end

done = common.done
