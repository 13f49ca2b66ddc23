-- Enriches Ray log records before they go to Loki.
--
-- * component: the kind of file the record came from, from a fixed set (gcs_server, raylet,
--   dashboard, worker, job-driver, ..., other), used as a Loki label; the ids in the file's name
--   (job, submission, worker, pid) go into the record as fields, never into labels.
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

-- The file a record came from, as a Loki label from a fixed set (so streams do not grow with
-- every job, worker or pid), and the ids its name holds as record fields (searchable in the log
-- line, never labels). Ray's log names (python/ray/_private/ray_logging, services.py):
--   job-driver-<submission id>.log          component job-driver, job_submission_id
--   python-core-driver-<job id>_<pid>.log   component python-core-driver, job_id, pid
--   python-core-worker-<worker id>_<pid>.log component python-core-worker, worker_id, pid
--   worker-<worker id>-<job id>-<pid>.out   component worker, worker_id, job_id, pid
--   runtime_env_setup-<job id>.log          component runtime_env_setup, job_id
--   ray_client_server_<port>.out            component ray_client_server, port
--   dashboard_<module>.log                  component dashboard, dashboard_module
-- and the fixed names below; anything else is component "other" (its name is in `file`).
local FIXED = {
  gcs_server = true,
  raylet = true,
  dashboard = true,
  dashboard_agent = true,
  monitor = true,
  log_monitor = true,
  runtime_env_agent = true,
  ray_client_server = true,
  debug_state = true,
  debug_state_gcs = true,
}

local PATTERNS = {
  {"^job%-driver%-(.+)$", "job-driver", {"job_submission_id"}},
  {"^python%-core%-driver%-(%x+)_(%d+)$", "python-core-driver", {"job_id", "pid"}},
  {"^python%-core%-worker%-(%x+)_(%d+)$", "python-core-worker", {"worker_id", "pid"}},
  {"^worker%-(%x+)%-(%x+)%-(%d+)$", "worker", {"worker_id", "job_id", "pid"}},
  {"^runtime_env_setup%-(.+)$", "runtime_env_setup", {"job_id"}},
  {"^ray_client_server_(%d+)$", "ray_client_server", {"port"}},
  {"^dashboard_(.+)$", "dashboard", {"dashboard_module"}},
}

local function component_of(tag, file, record)
  if tag == "ray.gcs_server" then
    return "gcs_server"
  elseif tag == "ray.raylet" then
    return "raylet"
  end
  local base = string.match(file or "", "([^/]+)$") or ""
  base = string.gsub(base, "%.[%a]+$", "")
  if FIXED[base] then
    return base
  end
  for _, rule in ipairs(PATTERNS) do
    local captures = {string.match(base, rule[1])}
    if captures[1] ~= nil then
      for i, field in ipairs(rule[3]) do
        record[field] = captures[i]
      end
      return rule[2]
    end
  end
  return "other"
end

function ray_record(tag, timestamp, record)
  record["component"] = component_of(tag, record["file"], record)
  local text = record["log"]
  if type(text) == "string" and string.find(text, "Global stats:", 1, true) ~= nil then
    event_stats(record, text)
  end
  return 2, timestamp, record
end
