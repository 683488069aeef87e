-- wrk script: POST a new 12-address service per request (unique names per thread).
local counter = 0
local prefix = ""

function setup(thread)
  thread:set("id", tostring(math.random(1, 1e9)))
end

function init(args)
  -- args[1], when given, tells apart several wrk processes run at once (their random ids repeat).
  prefix = "bench-" .. (args[1] or "") .. id .. "-"
end

local addresses = {}
for i = 1, 12 do
  addresses[#addresses + 1] = string.format('{"ip":"10.1.%d.%d"}', i, i)
end
local body_tail = ',"ports":[{"port":80}],"addresses":[' .. table.concat(addresses, ",") .. ']}'

function request()
  counter = counter + 1
  local body = '{"name":"' .. prefix .. counter .. '"' .. body_tail
  return wrk.format("POST", "/v1/services", {["Content-Type"] = "application/json"}, body)
end
