-- Enriches Ray log records before they go to Loki.
--
-- * component: a low-cardinality name for the file the record came from (gcs_server, raylet,
--   dashboard, worker, ...), used as a Loki label.
-- * GCS and raylet print an "Event stats" block periodically. From it we extract the global
--   figures as numbers, with every duration normalised to milliseconds:
--     event_stats_total, event_stats_active,
--     queueing_time_{mean,max,min,total}_ms, execution_time_{mean,total}_ms
--   so they can be charted or alerted on in Loki without parsing units.

local MS_PER_UNIT = {
  ns = 1e-6,
  us = 1e-3,
  ["\194\181s"] = 1e-3, -- "µs"
  ms = 1,
  s = 1000,
  m = 60000,
  min = 60000,
  h = 3600000,
}

-- to_ms("12.5", "us") -> 0.0125; nil when the number or the unit is not understood.
local function to_ms(number, unit)
  local n = tonumber(number)
  local factor = MS_PER_UNIT[unit]
  if n == nil or factor == nil then
    return nil
  end
  return n * factor
end

-- Reads "<label> = <number> <unit>" from text and stores it, in ms, as record[key].
local function duration(record, text, label, key)
  local number, unit = string.match(text, label .. "%s*=%s*([%d%.eE+-]+)%s*([^%s,]+)")
  if number ~= nil then
    local ms = to_ms(number, unit)
    if ms ~= nil then
      record[key] = ms
    end
  end
end

-- Parses the global part of an "Event stats" block into record fields; returns true if found.
local function event_stats(record, text)
  local total, active = string.match(text, "Global stats:%s*(%d+)%s+total%s*%((%d+)%s+active%)")
  if total == nil then
    return false
  end
  record["event_stats_total"] = tonumber(total)
  record["event_stats_active"] = tonumber(active)
  local queueing = string.match(text, "Queueing time:([^\n]*)")
  if queueing ~= nil then
    duration(record, queueing, "mean", "queueing_time_mean_ms")
    duration(record, queueing, "max", "queueing_time_max_ms")
    duration(record, queueing, "min", "queueing_time_min_ms")
    duration(record, queueing, "total", "queueing_time_total_ms")
  end
  local execution = string.match(text, "Execution time:([^\n]*)")
  if execution ~= nil then
    duration(record, execution, "mean", "execution_time_mean_ms")
    duration(record, execution, "total", "execution_time_total_ms")
  end
  record["event_stats"] = true
  return true
end

-- "worker-2f1e...-01000000-1234.out" -> "worker"; "dashboard_agent.log" -> "dashboard_agent".
local function component_of(tag, file)
  if tag == "ray.gcs_server" then
    return "gcs_server"
  elseif tag == "ray.raylet" then
    return "raylet"
  end
  local base = string.match(file or "", "([^/]+)$") or ""
  base = string.gsub(base, "%.[%a]+$", "")
  -- Drop ids and pids that would explode label cardinality.
  base = string.gsub(base, "[-_]%x%x%x%x%x%x.*$", "")
  base = string.gsub(base, "[-_]%d+$", "")
  if base == "" then
    return "unknown"
  end
  return base
end

function ray_record(tag, timestamp, record)
  record["component"] = component_of(tag, record["file"])
  local text = record["log"]
  if type(text) == "string" and string.find(text, "Global stats:", 1, true) ~= nil then
    event_stats(record, text)
  end
  return 2, timestamp, record
end
