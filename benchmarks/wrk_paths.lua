-- wrk script of benchmarks/tracking.py: goes round the paths of a file (one per line), each
-- thread from its own place in it, counts every answer by status and prints, when done, one
-- JSON object of the figures as its last line (latencies in milliseconds).
--
--     wrk -t1 -c64 -d15s -s benchmarks/wrk_paths.lua http://127.0.0.1:PORT -- PATHS_FILE

local threads = {}
local next_id = 0

function setup(thread)
   thread:set("id", next_id)
   next_id = next_id + 1
   table.insert(threads, thread)
end

local paths = {}
local at = 1
-- One global per status: wrk copies plain values out of a thread's state, not tables.
s200, s302, s404, s429, s503, sother = 0, 0, 0, 0, 0, 0

function init(args)
   local file = assert(io.open(args[1], "r"))
   for line in file:lines() do
      if #line > 0 then
         paths[#paths + 1] = line
      end
   end
   file:close()
   at = (id * 7919) % #paths + 1
end

function request()
   local path = paths[at]
   at = at % #paths + 1
   return wrk.format("GET", path, {["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) loyalmail-bench/1.0"})
end

function response(status, headers, body)
   if status == 200 then s200 = s200 + 1
   elseif status == 302 then s302 = s302 + 1
   elseif status == 404 then s404 = s404 + 1
   elseif status == 429 then s429 = s429 + 1
   elseif status == 503 then s503 = s503 + 1
   else sother = sother + 1 end
end

function done(summary, latency, requests)
   local counts = {["200"] = 0, ["302"] = 0, ["404"] = 0, ["429"] = 0, ["503"] = 0, other = 0}
   for _, thread in ipairs(threads) do
      counts["200"] = counts["200"] + thread:get("s200")
      counts["302"] = counts["302"] + thread:get("s302")
      counts["404"] = counts["404"] + thread:get("s404")
      counts["429"] = counts["429"] + thread:get("s429")
      counts["503"] = counts["503"] + thread:get("s503")
      counts.other = counts.other + thread:get("sother")
   end
   local statuses = {}
   for key, value in pairs(counts) do
      if value > 0 then
         statuses[#statuses + 1] = string.format('"%s": %d', key, value)
      end
   end
   table.sort(statuses)
   local errors = summary.errors
   local seconds = summary.duration / 1e6
   io.write(string.format(
      '{"requests": %d, "seconds": %.2f, "rps": %.1f, "p50_ms": %.2f, "p99_ms": %.2f,'
         .. ' "max_ms": %.2f, "statuses": {%s}, "socket_errors": %d}\n',
      summary.requests, seconds, summary.requests / seconds,
      latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
      table.concat(statuses, ", "),
      errors.connect + errors.read + errors.write + errors.timeout
   ))
end
