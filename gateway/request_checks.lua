-- What the gateway checks of a REST request before the transcoder turns it into a gRPC call (gateway/request_checks.py
-- renders this script into Envoy's Lua filter, with FIELDS filled in).
--
-- Headers: HTTP allows header names and values that gRPC metadata cannot carry, and the services' gRPC library then
-- fails the call (500). So a REST request loses, here, every header gRPC would refuse or misread: a name with a
-- character outside gRPC's [0-9a-z_.-], a name gRPC reserves (grpc-*; grpc-timeout, the deadline a REST client may
-- set, is kept), and any *-bin header (gRPC decodes its value as strict base64, and no REST path reads one). A
-- grpc-timeout that gRPC cannot read is refused (400).
--
-- Body: Envoy's transcoder drops the JSON fields its message does not have. On OpenAI's JSON paths (FIELDS) a field
-- we do not know is refused as OpenAI refuses one: 400 "Unrecognized request argument supplied: <name>".

local FIELDS = {} -- FIELDS

local MAX_LISTED = 5

local function dropped_headers(headers)
  local names = {}
  for name, _ in pairs(headers) do
    if name:sub(1, 1) ~= ":" and (not name:match("^[0-9a-z_.-]+$")
        or (name:sub(1, 5) == "grpc-" and name ~= "grpc-timeout") or name:sub(-4) == "-bin") then
      names[#names + 1] = name
    end
  end
  return names
end

-- gRPC's own format: a positive whole number of at most 8 digits, then its unit.
local function valid_timeout(value)
  local digits = value:match("^(%d+)[HMSmun]$")
  return digits ~= nil and #digits <= 8 and tonumber(digits) > 0
end

-- The top-level keys of a JSON object as written between their quotes, or nil when the text is no object (the
-- transcoder answers for that). Strings are skipped whole, so a brace or comma inside one counts for nothing.
local function top_level_keys(text)
  local at = text:find("%S")
  if at == nil or text:sub(at, at) ~= "{" then
    return nil
  end
  local keys, depth, expecting_key, i = {}, 0, true, at
  while true do
    i = text:find('[{}%[%]",]', i)
    if i == nil then
      return keys
    end
    local c = text:sub(i, i)
    if c == '"' then
      local j = i + 1
      while true do
        j = text:find('["\\]', j)
        if j == nil then
          return keys
        end
        if text:sub(j, j) == "\\" then
          j = j + 2
        else
          break
        end
      end
      if depth == 1 and expecting_key then
        keys[#keys + 1] = text:sub(i + 1, j - 1)
        expecting_key = false
      end
      i = j + 1
    else
      if c == "{" or c == "[" then
        depth = depth + 1
      elseif c == "}" or c == "]" then
        depth = depth - 1
      elseif depth == 1 then
        expecting_key = true
      end
      i = i + 1
    end
  end
end

local function unknown_fields(handle, known)
  local body = handle:body()
  if body == nil or body:length() == 0 then
    return {}
  end
  local unknown = {}
  for _, key in ipairs(top_level_keys(body:getBytes(0, body:length())) or {}) do
    if not known[key] then
      unknown[#unknown + 1] = key:sub(1, 64):gsub("[^%w_.-]", "?")
    end
  end
  return unknown
end

function envoy_on_request(handle)
  local headers = handle:headers()
  if (headers:get("content-type") or ""):sub(1, 16) == "application/grpc" then
    return -- a gRPC client's own library wrote its metadata
  end
  for _, name in ipairs(dropped_headers(headers)) do
    headers:remove(name)
  end
  local timeout = headers:get("grpc-timeout")
  if timeout ~= nil and not valid_timeout(timeout) then
    handle:respond({[":status"] = "400"}, "the grpc-timeout header must be a positive whole number of at most 8 "
      .. "digits and a unit, H, M, S, m, u or n (200m is 200 milliseconds)")
    return
  end
  local known = FIELDS[(headers:get(":path") or ""):match("^[^?]*")]
  if known == nil or headers:get(":method") ~= "POST" then
    return
  end
  local unknown = unknown_fields(handle, known)
  if #unknown == 1 then
    handle:respond({[":status"] = "400"}, "Unrecognized request argument supplied: " .. unknown[1])
  elseif #unknown > 1 then
    local listed = {unpack(unknown, 1, MAX_LISTED)}
    local more = #unknown > MAX_LISTED and (" and " .. (#unknown - MAX_LISTED) .. " more") or ""
    handle:respond({[":status"] = "400"}, "Unrecognized request arguments supplied: " .. table.concat(listed, ", ")
      .. more)
  end
end
