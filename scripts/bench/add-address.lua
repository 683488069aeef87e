-- wrk script: POST one new address per request, spread round-robin over the 1,000 loaded
-- services (bench-0 … bench-999) so that no single service grows without bound.
local counter = 0
local thread_id = 0

function setup(thread)
  thread_id = thread_id + 1
  thread:set("tid", thread_id)
end

function request()
  counter = counter + 1
  local service = counter % 1000
  local n = counter + tid * 1000000
  local ip = string.format("10.%d.%d.%d", 100 + math.floor(n / 65536) % 100, math.floor(n / 256) % 256, n % 256)
  local body = '{"ip":"' .. ip .. '"}'
  return wrk.format("POST", "/v1/services/bench/bench-" .. service .. "/addresses",
    {["Content-Type"] = "application/json"}, body)
end
