local cel = {}

-- CEL values in Lua: a bool is a boolean, an int a number with a whole value, a string a string;
-- null, a double, a list, a map and an optional are tables marked by these metatables. An empty
-- table of the object was a JSON list or a JSON map, Argo CD does not say which: it serves as
-- either.
local Null, Double, List, Map, Empty, Optional = {}, {}, {}, {}, {}, {}

cel.null = setmetatable({}, Null)

-- Raises an evaluation error. `got` marks a value that is not a bool where one was wanted,
-- which `&&` and `||` report as a missing overload.
function cel.fail(message, got)
  error({ message = message, got = got }, 0)
end

-- The text of an error caught while evaluating.
function cel.message(err)
  if type(err) == "table" and type(err.message) == "string" then
    return err.message
  end
  return "internal error: " .. tostring(err)
end

-- The name CEL gives the type of `x`.
function cel.type_of(x)
  local t = type(x)
  if t == "boolean" then
    return "bool"
  elseif t == "number" then
    return "int"
  elseif t == "string" then
    return "string"
  end
  local mt = getmetatable(x)
  if mt == Double then
    return "double"
  elseif mt == List then
    return "list"
  elseif mt == Map or mt == Empty then
    return "map"
  elseif mt == Optional then
    return "optional_type"
  elseif mt == Null then
    return "null_type"
  end
  return t
end

function cel.is_list(x)
  local mt = getmetatable(x)
  return mt == List or mt == Empty
end

function cel.is_map(x)
  local mt = getmetatable(x)
  return mt == Map or mt == Empty
end

-- A double: a number in a box, so that 1.0 stays a double.
function cel.float(x)
  return setmetatable({ x }, Double)
end

-- The number an int or a double holds, or nil.
function cel.number(x)
  if type(x) == "number" then
    return x
  elseif getmetatable(x) == Double then
    return x[1]
  end
  return nil
end

-- Rounds down (Argo CD opens no `math` library).
function cel.floor(x)
  return x - x % 1
end

-- Whether a number is an int: whole, and within 64 bits.
function cel.is_int(x)
  return x == cel.floor(x) and x >= -9223372036854775808 and x < 9223372036854775808
end

function cel.list(items)
  return setmetatable(items, List)
end

-- A map literal from its entries, in order: { { key, value }, ... }.
function cel.map(entries)
  local map = setmetatable({}, Map)
  for _, entry in ipairs(entries) do
    local key, value = entry[1], entry[2]
    local t = type(key)
    if t ~= "string" and t ~= "number" and t ~= "boolean" then
      cel.fail("Unable to use value '" .. cel.debug(key) .. "' as a key")
    end
    if map[key] ~= nil then
      cel.fail("Failed with repeated key: " .. cel.debug(key))
    end
    map[key] = value
  end
  return map
end

-- A JSON value of the object as CEL reads it.
function cel.from_json(x)
  local t = type(x)
  if t == "number" then
    if cel.is_int(x) then
      return x
    end
    return cel.float(x)
  elseif t ~= "table" then
    return x
  end
  local first = next(x)
  if first == nil then
    return setmetatable({}, Empty)
  end
  local out = {}
  if type(first) == "number" then
    for i = 1, #x do
      out[i] = cel.from_json(x[i])
    end
    return setmetatable(out, List)
  end
  for key, value in pairs(x) do
    out[key] = cel.from_json(value)
  end
  return setmetatable(out, Map)
end

-- The variables of the expressions: the object's top-level fields, with `metadata`, `spec` and
-- `status` an empty map when it has none.
function cel.variables(object)
  local v = {}
  if type(object) == "table" then
    for key, value in pairs(object) do
      if type(key) == "string" then
        v[key] = cel.from_json(value)
      end
    end
  end
  for _, name in ipairs({ "metadata", "spec", "status" }) do
    if v[name] == nil then
      v[name] = setmetatable({}, Map)
    end
  end
  return v
end

-- A field of the object that may be missing.
function cel.var(v, name)
  local value = v[name]
  if value == nil then
    cel.fail("Undeclared reference to '" .. name .. "'")
  end
  return value
end

cel.DIGITS = { [0] = "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "a", "b", "c", "d", "e", "f" }

-- A whole number from 0 to 999999 in decimal, at least `width` digits.
function cel.small_int_text(x, width)
  local out = ""
  repeat
    local digit = x % 10
    out = cel.DIGITS[digit] .. out
    x = (x - digit) / 10
  until x == 0
  while #out < width do
    out = "0" .. out
  end
  return out
end

-- An int in decimal (Argo CD opens no `string` library to format it).
function cel.int_text(x)
  if x == 0 then
    return "0"
  end
  local sign = ""
  if x < 0 then
    sign, x = "-", -x
  end
  local groups = {}
  while x >= 1000000 do
    local low
    x, low = cel.divmod(x, 1000000)
    table.insert(groups, 1, cel.small_int_text(low, 6))
  end
  return sign .. cel.small_int_text(x, 1) .. table.concat(groups)
end

function cel.zeros(n)
  local out = ""
  for _ = 1, n do
    out = out .. "0"
  end
  return out
end

-- `a` divided by `b`, both whole, a below 2^53: the quotient and the remainder.
function cel.divmod(a, b)
  local q = cel.floor(a / b)
  local r = a - q * b
  while r < 0 do
    q, r = q - 1, r + b
  end
  while r >= b do
    q, r = q + 1, r - b
  end
  return q, r
end

-- Multiplies a whole number held in base 10^7 limbs, least significant first, by `factor`.
function cel.multiply_limbs(limbs, factor)
  local carry = 0
  for i = 1, #limbs do
    carry, limbs[i] = cel.divmod(limbs[i] * factor + carry, 10000000)
  end
  while carry > 0 do
    local limb
    carry, limb = cel.divmod(carry, 10000000)
    limbs[#limbs + 1] = limb
  end
end

-- The exact decimal digits of a finite, non-zero double, sign dropped, and where the point
-- goes: |x| = 0.D1D2... x 10^point, the digits a list of numbers 0 to 9. A double is m x 2^k
-- with m whole and below 2^53, which is m x 2^k, or m x 5^-k / 10^-k, worked out in limbs.
function cel.exact_digits(x)
  if x < 0 then
    x = -x
  end
  local k = 0
  while x >= 9007199254740992 do
    x, k = x / 2, k + 1
  end
  while x ~= cel.floor(x) do
    x, k = x * 2, k - 1
  end
  local limbs = {}
  repeat
    local limb
    x, limb = cel.divmod(x, 10000000)
    limbs[#limbs + 1] = limb
  until x == 0
  for _ = 1, k do
    cel.multiply_limbs(limbs, 2)
  end
  for _ = 1, -k do
    cel.multiply_limbs(limbs, 5)
  end
  local digits = {}
  for i = #limbs, 1, -1 do
    local limb = limbs[i]
    local chunk = {}
    for j = 7, 1, -1 do
      limb, chunk[j] = cel.divmod(limb, 10)
    end
    for j = 1, 7 do
      if #digits > 0 or chunk[j] > 0 then
        digits[#digits + 1] = chunk[j]
      end
    end
  end
  local point = #digits
  if k < 0 then
    point = point + k
  end
  while digits[#digits] == 0 do
    digits[#digits] = nil
  end
  return digits, point
end

-- The first `precision` of exact digits, rounded to the nearest (half to even), and where the
-- point then goes.
function cel.round_digits(exact, point, precision)
  local digits = {}
  for i = 1, precision do
    digits[i] = exact[i] or 0
  end
  local rest = exact[precision + 1] or 0
  local up = rest > 5
  if rest == 5 then
    up = #exact > precision + 1 or digits[precision] % 2 == 1
  end
  local i = precision
  while up and i >= 1 do
    if digits[i] == 9 then
      digits[i] = 0
      i = i - 1
    else
      digits[i] = digits[i] + 1
      up = false
    end
  end
  if up then
    table.insert(digits, 1, 1)
    digits[#digits] = nil
    point = point + 1
  end
  while #digits > 1 and digits[#digits] == 0 do
    digits[#digits] = nil
  end
  return digits, point
end

-- The shortest decimal digits that read back as the finite, non-zero `x`, sign dropped, the
-- closest to it of their length, and where the point goes: |x| = 0.DIGITS x 10^point. The
-- digits are a list of one-digit strings.
function cel.float_digits(x)
  if x < 0 then
    x = -x
  end
  local exact, point = cel.exact_digits(x)
  local digits, at = exact, point
  for precision = 1, #exact do
    local rounded, moved = cel.round_digits(exact, point, precision)
    local text = {}
    for i, d in ipairs(rounded) do
      text[i] = cel.DIGITS[d]
    end
    if tonumber(table.concat(text) .. "e" .. cel.int_text(moved - #rounded)) == x then
      digits, at = rounded, moved
      break
    end
  end
  local out = {}
  for i, d in ipairs(digits) do
    out[i] = cel.DIGITS[d]
  end
  return out, at
end

-- DIGITS with the point `point` places in: 0.DIGITS x 10^point, without an exponent.
function cel.place_point(digits, point)
  local n = #digits
  if point <= 0 then
    return "0." .. cel.zeros(-point) .. table.concat(digits)
  elseif point >= n then
    return table.concat(digits) .. cel.zeros(point - n)
  end
  return table.concat(digits, "", 1, point) .. "." .. table.concat(digits, "", point + 1)
end

-- The sign of a double, "-" for -0.0 too.
function cel.sign(x)
  if x < 0 or (x == 0 and 1 / x < 0) then
    return "-"
  end
  return ""
end

-- A double as Rust's `Display` writes it, as `string(double)` does: never an exponent.
function cel.float_display(x)
  if x ~= x then
    return "NaN"
  elseif x == 1 / 0 then
    return "inf"
  elseif x == -1 / 0 then
    return "-inf"
  elseif x == 0 then
    return cel.sign(x) .. "0"
  end
  local digits, point = cel.float_digits(x)
  return cel.sign(x) .. cel.place_point(digits, point)
end

-- A double as Rust's `Debug` writes it, as CEL's error messages show it.
function cel.float_debug(x)
  if x ~= x or x == 1 / 0 or x == -1 / 0 then
    return cel.float_display(x)
  elseif x == 0 then
    return cel.sign(x) .. "0.0"
  end
  local digits, point = cel.float_digits(x)
  local size = x
  if size < 0 then
    size = -size
  end
  if size >= 1e-4 and size < 1e16 then
    local text = cel.place_point(digits, point)
    if point >= #digits then
      text = text .. ".0"
    end
    return cel.sign(x) .. text
  end
  return cel.sign(x) .. cel.exponent_form(digits, point)
end

-- D.DDDe<point-1>, as Rust writes an exponent: no plus sign, no leading zeros.
function cel.exponent_form(digits, point)
  local text = digits[1]
  if #digits > 1 then
    text = text .. "." .. table.concat(digits, "", 2)
  end
  return text .. "e" .. cel.int_text(point - 1)
end

-- A finite double as JSON writes it (serde_json, with zmij), as plane's messages show it: without
-- an exponent from 1e-5 to below 1e16, else with a signed one (1e+21, 1.5e-7).
function cel.float_json(x)
  if x == 0 then
    return cel.sign(x) .. "0.0"
  end
  local digits, point = cel.float_digits(x)
  local exponent = point - 1
  local text
  if exponent < -5 or exponent > 15 then
    text = digits[1]
    if #digits > 1 then
      text = text .. "." .. table.concat(digits, "", 2)
    end
    if exponent >= 0 then
      text = text .. "e+" .. cel.int_text(exponent)
    else
      text = text .. "e" .. cel.int_text(exponent)
    end
  elseif point >= #digits then
    text = table.concat(digits) .. cel.zeros(point - #digits) .. ".0"
  else
    text = cel.place_point(digits, point)
  end
  return cel.sign(x) .. text
end

-- Every string of one byte (Argo CD opens no `string` library to make them).
cel.CHAR = {
  [0] = "\0", "\1", "\2", "\3", "\4", "\5", "\6", "\7", "\8", "\9", "\10", "\11", "\12", "\13", "\14", "\15",
  "\16", "\17", "\18", "\19", "\20", "\21", "\22", "\23", "\24", "\25", "\26", "\27", "\28", "\29", "\30", "\31",
  " ", "!", "\"", "#", "$", "%", "&", "'", "(", ")", "*", "+", ",", "-", ".", "/",
  "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", ":", ";", "<", "=", ">", "?",
  "@", "A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K", "L", "M", "N", "O",
  "P", "Q", "R", "S", "T", "U", "V", "W", "X", "Y", "Z", "[", "\\", "]", "^", "_",
  "`", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o",
  "p", "q", "r", "s", "t", "u", "v", "w", "x", "y", "z", "{", "|", "}", "~", "\127",
  "\128", "\129", "\130", "\131", "\132", "\133", "\134", "\135", "\136", "\137", "\138", "\139", "\140", "\141", "\142", "\143",
  "\144", "\145", "\146", "\147", "\148", "\149", "\150", "\151", "\152", "\153", "\154", "\155", "\156", "\157", "\158", "\159",
  "\160", "\161", "\162", "\163", "\164", "\165", "\166", "\167", "\168", "\169", "\170", "\171", "\172", "\173", "\174", "\175",
  "\176", "\177", "\178", "\179", "\180", "\181", "\182", "\183", "\184", "\185", "\186", "\187", "\188", "\189", "\190", "\191",
  "\192", "\193", "\194", "\195", "\196", "\197", "\198", "\199", "\200", "\201", "\202", "\203", "\204", "\205", "\206", "\207",
  "\208", "\209", "\210", "\211", "\212", "\213", "\214", "\215", "\216", "\217", "\218", "\219", "\220", "\221", "\222", "\223",
  "\224", "\225", "\226", "\227", "\228", "\229", "\230", "\231", "\232", "\233", "\234", "\235", "\236", "\237", "\238", "\239",
  "\240", "\241", "\242", "\243", "\244", "\245", "\246", "\247", "\248", "\249", "\250", "\251", "\252", "\253", "\254", "\255",
}

cel.byte_cache = {}

-- The bytes of a string, found by comparing it with strings one byte longer than what is known
-- of it (strings compare byte by byte), there being no string library to read them with.
function cel.bytes(s)
  local known = cel.byte_cache[s]
  if known then
    return known
  end
  local out, prefix = {}, ""
  for i = 1, #s do
    local low, high = 0, 255
    while low < high do
      local middle = cel.floor((low + high + 1) / 2)
      if prefix .. cel.CHAR[middle] <= s then
        low = middle
      else
        high = middle - 1
      end
    end
    out[i] = low
    prefix = prefix .. cel.CHAR[low]
  end
  cel.byte_cache[s] = out
  return out
end

-- The string of bytes `first` to `last` of a byte list.
function cel.from_bytes(bytes, first, last)
  local out = {}
  for i = first or 1, last or #bytes do
    out[#out + 1] = cel.CHAR[bytes[i]]
  end
  return table.concat(out)
end

-- The code points of a string, as `size()` counts them.
function cel.length(s)
  local n = 0
  for _, b in ipairs(cel.bytes(s)) do
    if b < 128 or b >= 192 then
      n = n + 1
    end
  end
  return n
end

-- A string as Rust's `Debug` quotes it.
function cel.quote(s)
  local out = {}
  for i, b in ipairs(cel.bytes(s)) do
    if b == 34 then
      out[i] = "\\\""
    elseif b == 92 then
      out[i] = "\\\\"
    elseif b == 0 then
      out[i] = "\\0"
    elseif b == 9 then
      out[i] = "\\t"
    elseif b == 10 then
      out[i] = "\\n"
    elseif b == 13 then
      out[i] = "\\r"
    elseif b < 32 or b == 127 then
      local high = cel.floor(b / 16)
      local hex = cel.DIGITS[b % 16]
      if high > 0 then
        hex = cel.DIGITS[high] .. hex
      end
      out[i] = "\\u{" .. hex .. "}"
    else
      out[i] = cel.CHAR[b]
    end
  end
  return "\"" .. table.concat(out) .. "\""
end

-- A map's keys, in a fixed order (CEL leaves it open).
function cel.keys(map)
  local keys = {}
  for key in pairs(map) do
    keys[#keys + 1] = key
  end
  table.sort(keys, function(a, b)
    local ta, tb = type(a), type(b)
    if ta ~= tb then
      return ta < tb
    elseif ta == "boolean" then
      return b and not a
    end
    return a < b
  end)
  return keys
end

-- A value as Rust's `Debug` writes it, as CEL's error messages show it.
function cel.debug(x)
  local t = cel.type_of(x)
  if t == "int" then
    return "Int(" .. cel.int_text(x) .. ")"
  elseif t == "double" then
    return "Float(" .. cel.float_debug(x[1]) .. ")"
  elseif t == "string" then
    return "String(" .. cel.quote(x) .. ")"
  elseif t == "bool" then
    return "Bool(" .. tostring(x) .. ")"
  elseif t == "null_type" then
    return "Null"
  elseif t == "list" then
    local parts = {}
    for i, item in ipairs(x) do
      parts[i] = cel.debug(item)
    end
    return "List([" .. table.concat(parts, ", ") .. "])"
  elseif t == "map" then
    local parts = {}
    for i, key in ipairs(cel.keys(x)) do
      parts[i] = cel.debug(key) .. ": " .. cel.debug(x[key])
    end
    return "Map(Map { map: {" .. table.concat(parts, ", ") .. "} })"
  elseif t == "optional_type" then
    local inner = "None"
    if x.has then
      inner = "Some(" .. cel.debug(x.value) .. ")"
    end
    return "Opaque<optional_type>(OptionalValue { value: " .. inner .. " })"
  end
  return tostring(x)
end

-- "found no matching overload" for CEL type names, the receiver's first for a method.
function cel.overload_error(name, member, types)
  local signature
  if member then
    signature = types[1] .. ".(" .. table.concat(types, ", ", 2) .. ")"
  else
    signature = "(" .. table.concat(types, ", ") .. ")"
  end
  return { message = "found no matching overload for '" .. name .. "' applied to '" .. signature .. "'" }
end

-- Fails for want of an overload of `name` for these values.
function cel.overload(name, member, ...)
  local types = {}
  for i = 1, select("#", ...) do
    types[i] = cel.type_of((select(i, ...)))
  end
  error(cel.overload_error(name, member, types), 0)
end

function cel.binary_error(operator, a, b)
  cel.fail("Unsupported binary operator '" .. operator .. "': " .. cel.debug(a) .. ", " .. cel.debug(b))
end

-- An int result, or an overflow of 64 bits.
function cel.checked(operator, a, b, result)
  if not cel.is_int(result) then
    cel.fail("Overflow from binary operator '" .. operator .. "': " .. cel.debug(a) .. ", " .. cel.debug(b))
  end
  return result
end

-- `a == b`: numbers by value whatever their type, other values of different types unequal.
function cel.equals(a, b)
  local x, y = cel.number(a), cel.number(b)
  if x ~= nil or y ~= nil then
    return x ~= nil and y ~= nil and x == y
  end
  if type(a) ~= "table" or type(b) ~= "table" then
    return a == b
  end
  local ma, mb = getmetatable(a), getmetatable(b)
  if ma == Null or mb == Null then
    return ma == mb
  elseif ma == Optional or mb == Optional then
    if ma ~= mb or a.has ~= b.has then
      return false
    end
    return not a.has or cel.equals(a.value, b.value)
  elseif ma == Empty or mb == Empty then
    return next(a) == nil and next(b) == nil
  elseif ma == List and mb == List then
    if #a ~= #b then
      return false
    end
    for i = 1, #a do
      if not cel.equals(a[i], b[i]) then
        return false
      end
    end
    return true
  elseif ma == Map and mb == Map then
    local count = 0
    for key, value in pairs(a) do
      count = count + 1
      local other = b[key]
      if other == nil or not cel.equals(value, other) then
        return false
      end
    end
    for _ in pairs(b) do
      count = count - 1
    end
    return count == 0
  end
  return false
end

function cel.eq(a, b)
  return cel.equals(a, b)
end

function cel.ne(a, b)
  return not cel.equals(a, b)
end

-- -1, 0 or 1 as `a` orders before, with or after `b`: numbers of either type, strings, bools.
function cel.compare(operator, a, b)
  local x, y = cel.number(a), cel.number(b)
  if x == nil or y == nil then
    if type(a) == "string" and type(b) == "string" then
      x, y = a, b
    elseif type(a) == "boolean" and type(b) == "boolean" then
      x, y = a and 1 or 0, b and 1 or 0
    else
      cel.overload(operator, false, a, b)
    end
  elseif x ~= x or y ~= y then
    cel.overload(operator, false, a, b)
  end
  if x < y then
    return -1
  elseif x > y then
    return 1
  end
  return 0
end

function cel.lt(a, b)
  return cel.compare("_<_", a, b) < 0
end

function cel.le(a, b)
  return cel.compare("_<=_", a, b) <= 0
end

function cel.gt(a, b)
  return cel.compare("_>_", a, b) > 0
end

function cel.ge(a, b)
  return cel.compare("_>=_", a, b) >= 0
end

function cel.add(a, b)
  local ta, tb = cel.type_of(a), cel.type_of(b)
  if ta == "int" and tb == "int" then
    return cel.checked("add", a, b, a + b)
  elseif ta == "double" and tb == "double" then
    return cel.float(a[1] + b[1])
  elseif ta == "string" and tb == "string" then
    return a .. b
  elseif cel.is_list(a) and (cel.is_list(b) or cel.is_map(b)) then
    local out = {}
    for _, item in ipairs(cel.items(a)) do
      out[#out + 1] = item
    end
    for _, item in ipairs(cel.items(b)) do
      out[#out + 1] = item
    end
    return setmetatable(out, List)
  end
  cel.binary_error("add", a, b)
end

function cel.sub(a, b)
  local ta, tb = cel.type_of(a), cel.type_of(b)
  if ta == "int" and tb == "int" then
    return cel.checked("sub", a, b, a - b)
  elseif ta == "double" and tb == "double" then
    return cel.float(a[1] - b[1])
  end
  cel.binary_error("sub", a, b)
end

function cel.mul(a, b)
  local ta, tb = cel.type_of(a), cel.type_of(b)
  if ta == "int" and tb == "int" then
    return cel.checked("mul", a, b, a * b)
  elseif ta == "double" and tb == "double" then
    return cel.float(a[1] * b[1])
  end
  cel.binary_error("mul", a, b)
end

-- The quotient of two ints, rounded toward zero, and its remainder.
function cel.divide(a, b)
  local q = a / b
  if q >= 0 then
    q = cel.floor(q)
  else
    q = -cel.floor(-q)
  end
  local r = a - q * b
  if r ~= 0 and (r < 0) ~= (a < 0) then
    if (a < 0) == (b < 0) then
      q = q - 1
    else
      q = q + 1
    end
    r = a - q * b
  end
  return q, r
end

function cel.div(a, b)
  local ta, tb = cel.type_of(a), cel.type_of(b)
  if ta == "int" and tb == "int" then
    if b == 0 then
      cel.fail("Division by zero of " .. cel.debug(a))
    elseif a == -9223372036854775808 and b == -1 then
      cel.fail("Overflow from binary operator 'div': " .. cel.debug(a) .. ", " .. cel.debug(b))
    end
    local q = cel.divide(a, b)
    return q
  elseif ta == "double" and tb == "double" then
    return cel.float(a[1] / b[1])
  end
  cel.binary_error("div", a, b)
end

function cel.mod(a, b)
  if type(a) == "number" and type(b) == "number" then
    if b == 0 then
      cel.fail("Remainder by zero of " .. cel.debug(a))
    elseif a == -9223372036854775808 and b == -1 then
      cel.fail("Overflow from binary operator 'rem': " .. cel.debug(a) .. ", " .. cel.debug(b))
    end
    local _, r = cel.divide(a, b)
    return r
  end
  cel.binary_error("rem", a, b)
end

function cel.neg(a)
  local t = cel.type_of(a)
  if t == "int" then
    if a == -9223372036854775808 then
      cel.fail("Overflow from binary operator 'negate': " .. cel.debug(a) .. ", Null")
    end
    return 0 - a
  elseif t == "double" then
    return cel.float(-a[1])
  end
  cel.overload("-_", false, a)
end

function cel.not_(a)
  if type(a) ~= "boolean" then
    cel.overload("!_", false, a)
  end
  return not a
end

-- A condition's value, which must be a bool.
function cel.test(x)
  if type(x) ~= "boolean" then
    local got = cel.type_of(x)
    cel.fail("Unexpected type: got '" .. got .. "', want 'bool'", got)
  end
  return x
end

-- `c ? a : b`, the branches as functions.
function cel.ternary(condition, yes, no)
  if cel.test(condition) then
    return yes()
  end
  return no()
end

-- An operand's value: as is, or from calling it under pcall.
function cel.attempt(operand)
  if type(operand) == "function" then
    return pcall(operand)
  end
  return true, operand
end

-- One step of `left && right` (decisive false) or `left || right` (decisive true), the left
-- operand already evaluated (ok, value) and the right one evaluated only if needed. An error
-- or a non-bool on the left gives way to a decisive right operand.
function cel.logic(operator, decisive, ok, left, right)
  local err
  if not ok then
    err = left
  elseif type(left) ~= "boolean" then
    err = { got = cel.type_of(left) }
  elseif left == decisive then
    return true, decisive
  end
  local right_ok, value = cel.attempt(right)
  if not right_ok then
    return false, value
  end
  if type(value) == "boolean" then
    if err == nil or value == decisive then
      return true, value
    end
  end
  if err == nil then
    return false, cel.overload_error(operator, false, { "bool", cel.type_of(value) })
  elseif type(err) == "table" and err.got then
    return false, cel.overload_error(operator, false, { err.got, cel.type_of(value) })
  end
  return false, err
end

-- `a && b && ...` (operator `_&&_`, short-circuit on false) or `a || b || ...` (`_||_`, on
-- true), each operand a value or a function, evaluated left to right as CEL does: ((a op b) op c).
function cel.logic_chain(operator, short, first, ...)
  local ok, value = cel.attempt(first)
  for i = 1, select("#", ...) do
    ok, value = cel.logic(operator, short, ok, value, (select(i, ...)))
  end
  if not ok then
    error(value, 0)
  end
  return value
end

function cel.and_(first, ...)
  return cel.logic_chain("_&&_", false, first, ...)
end

function cel.or_(first, ...)
  return cel.logic_chain("_||_", true, first, ...)
end

-- True unless the operand is false: an error or a non-bool counts as true.
function cel.not_strictly_false(operand)
  local ok, value = cel.attempt(operand)
  return not (ok and value == false)
end

-- What a comprehension iterates: a list's items, a map's keys.
function cel.items(range)
  local mt = getmetatable(range)
  if mt == List then
    return range
  elseif mt == Map or mt == Empty then
    return cel.keys(range)
  end
  cel.fail("Unexpected type: got '" .. cel.type_of(range) .. "', want 'iterable'")
end

-- `range.exists(x, p)`: an error is passed over while a later item may still hold.
function cel.exists(range, predicate)
  local items = cel.items(range)
  local result, pending = false, nil
  for i = 1, #items do
    if result then
      break
    end
    local ok, value = pcall(predicate, items[i])
    if not ok then
      pending = value
    elseif type(value) ~= "boolean" then
      pending = cel.overload_error("_||_", false, { "bool", cel.type_of(value) })
    elseif value then
      result, pending = true, nil
    end
  end
  if pending then
    error(pending, 0)
  end
  return result
end

-- `range.all(x, p)`: an error is passed over while a later item may still fail.
function cel.all(range, predicate)
  local items = cel.items(range)
  local result, pending = true, nil
  for i = 1, #items do
    if not result then
      break
    end
    local ok, value = pcall(predicate, items[i])
    if not ok then
      pending = value
    elseif type(value) ~= "boolean" then
      pending = cel.overload_error("_&&_", false, { "bool", cel.type_of(value) })
    elseif not value then
      result, pending = false, nil
    end
  end
  if pending then
    error(pending, 0)
  end
  return result
end

-- `range.exists_one(x, p)`.
function cel.exists_one(range, predicate)
  local count = 0
  for _, item in ipairs(cel.items(range)) do
    if cel.test(predicate(item)) then
      count = count + 1
    end
  end
  return count == 1
end

-- `range.map(x, f)`, or `range.map(x, p, f)` with a predicate.
function cel.map_items(range, transform, predicate)
  local out = {}
  for _, item in ipairs(cel.items(range)) do
    if predicate == nil or cel.test(predicate(item)) then
      out[#out + 1] = transform(item)
    end
  end
  return setmetatable(out, List)
end

-- `range.filter(x, p)`.
function cel.filter(range, predicate)
  local out = {}
  for _, item in ipairs(cel.items(range)) do
    if cel.test(predicate(item)) then
      out[#out + 1] = item
    end
  end
  return setmetatable(out, List)
end

-- Any other comprehension: the accumulator starts as `init`; while `condition(accu)` holds,
-- `accu = step(item, accu)`; then `result(accu)`. `logic` ("and" or "or") when the step is
-- `accu && ...` or `accu || ...`, whose errors wait for a later item to decide.
function cel.fold(init, range, condition, step, result, logic)
  local accu, pending = init, nil
  for _, item in ipairs(cel.items(range)) do
    if not cel.test(condition(accu)) then
      break
    end
    local ok, value = pcall(step, item, accu)
    if logic == nil then
      if not ok then
        error(value, 0)
      end
      accu = value
    elseif not ok then
      pending = value
    elseif pending == nil or value == (logic == "or") then
      accu, pending = value, nil
    end
  end
  if pending then
    error(pending, 0)
  end
  return result(accu)
end

function cel.some(x)
  return setmetatable({ has = true, value = x }, Optional)
end

function cel.none()
  return setmetatable({ has = false }, Optional)
end

-- Whether `x` is its type's zero value, as `optional.ofNonZeroValue` reads it.
function cel.is_zero(x)
  local t = cel.type_of(x)
  if t == "int" then
    return x == 0
  elseif t == "double" then
    return x[1] == 0
  elseif t == "string" then
    return x == ""
  elseif t == "bool" then
    return x == false
  elseif t == "null_type" then
    return true
  elseif t == "list" or t == "map" then
    return next(x) == nil
  end
  return false
end

function cel.of_non_zero(x)
  if cel.is_zero(x) then
    return cel.none()
  end
  return cel.some(x)
end

function cel.or_value(o, default)
  if getmetatable(o) ~= Optional then
    cel.overload("orValue", true, o, default)
  end
  if o.has then
    return o.value
  end
  return default
end

function cel.has_value(o)
  if getmetatable(o) ~= Optional then
    cel.overload("hasValue", true, o)
  end
  return o.has
end

function cel.value(o)
  if getmetatable(o) ~= Optional then
    cel.overload("value", true, o)
  elseif not o.has then
    cel.fail("Error executing function 'value': optional.none() dereference")
  end
  return o.value
end

function cel.or_optional(o, other)
  if getmetatable(o) ~= Optional then
    cel.overload("or", true, o, other)
  end
  if o.has then
    return o
  end
  return other
end

-- `x.field`.
function cel.select(x, field)
  local mt = getmetatable(x)
  if mt == Map or mt == Empty then
    local value = x[field]
    if value == nil then
      cel.fail("No such key: " .. field)
    end
    return value
  elseif mt == Optional then
    if not x.has then
      return x
    end
    local inner = x.value
    if cel.is_map(inner) then
      local value = inner[field]
      if value == nil then
        return cel.none()
      end
      return cel.some(value)
    elseif getmetatable(inner) == List then
      return cel.none()
    end
    cel.fail("No such key: " .. field)
  end
  cel.overload("_._", false, x, field)
end

-- `has(x.field)`.
function cel.has(x, field)
  local mt = getmetatable(x)
  if mt == Map or mt == Empty then
    return x[field] ~= nil
  elseif mt == Optional then
    if not x.has then
      return false
    end
    local inner = x.value
    if cel.is_map(inner) then
      return inner[field] ~= nil
    elseif getmetatable(inner) == List then
      return false
    end
    cel.fail("No such key: " .. field)
  end
  cel.overload("_._", false, x, field)
end

-- `x.?field`.
function cel.opt_select(x, field)
  if getmetatable(x) == Optional then
    if not x.has then
      return x
    end
    x = x.value
  end
  if cel.is_map(x) then
    local value = x[field]
    if value ~= nil then
      return cel.some(value)
    end
  end
  return cel.none()
end

-- The text a map key is named by in "No such key".
function cel.key_text(key)
  local t = cel.type_of(key)
  if t == "int" then
    return cel.int_text(key)
  elseif t == "double" then
    return cel.float_display(key[1])
  elseif t == "bool" then
    return tostring(key)
  end
  return key
end

-- `x[index]`, failing as `operator` does.
function cel.lookup(x, index, operator)
  local mt = getmetatable(x)
  local t = cel.type_of(index)
  if mt == List or (mt == Empty and (t == "int" or t == "double")) then
    local i = index
    if t == "double" then
      i = index[1]
      if not cel.is_int(i) then
        cel.fail("Cannot use value " .. cel.debug(index) .. " to index " .. cel.debug(x))
      end
    elseif t ~= "int" then
      cel.overload(operator, false, x, index)
    end
    if i < 0 then
      cel.fail("Index out of bounds: " .. cel.debug(i))
    elseif i >= #x then
      cel.fail("Index out of bounds: " .. cel.debug(index))
    end
    return x[i + 1]
  elseif mt == Map or mt == Empty then
    local key = index
    if t == "double" then
      key = index[1]
    elseif t ~= "string" and t ~= "int" and t ~= "bool" then
      cel.overload(operator, false, x, index)
    end
    local value = x[key]
    if value == nil then
      cel.fail("No such key: " .. cel.key_text(index))
    end
    return value
  end
  cel.overload(operator, false, x, index)
end

-- `x[index]`; `index` may be a function, called unless `x` is an empty optional.
function cel.index(x, index)
  local optional = false
  if getmetatable(x) == Optional then
    if not x.has then
      return x
    end
    x, optional = x.value, true
  end
  if type(index) == "function" then
    index = index()
  end
  if optional then
    local ok, value = pcall(cel.lookup, x, index, "_[_]")
    if ok then
      return cel.some(value)
    end
    return cel.none()
  end
  return cel.lookup(x, index, "_[_]")
end

-- `x[?index]`.
function cel.opt_index(x, index)
  if getmetatable(x) == Optional then
    if not x.has then
      return x
    end
    x = x.value
  end
  if type(index) == "function" then
    index = index()
  end
  local ok, value = pcall(cel.lookup, x, index, "_[?_]")
  if ok then
    return cel.some(value)
  end
  return cel.none()
end

-- `value in container`.
function cel.in_(value, container)
  local mt = getmetatable(container)
  if mt == List then
    for _, item in ipairs(container) do
      if cel.equals(item, value) then
        return true
      end
    end
    return false
  elseif mt == Map or mt == Empty then
    local t = cel.type_of(value)
    if t == "string" or t == "int" or t == "bool" then
      return container[value] ~= nil
    elseif t == "double" then
      return cel.is_int(value[1]) and container[value[1]] ~= nil
    end
  end
  cel.overload("@in", false, value, container)
end

-- `size(x)`.
function cel.size(x, member)
  local mt = getmetatable(x)
  if type(x) == "string" then
    return cel.length(x)
  elseif mt == List then
    return #x
  elseif mt == Map or mt == Empty then
    local n = 0
    for _ in pairs(x) do
      n = n + 1
    end
    return n
  end
  cel.overload("size", member, x)
end

-- `x.size()`.
function cel.size_method(x)
  return cel.size(x, true)
end

-- `string(x)`.
function cel.string(x)
  local t = cel.type_of(x)
  if t == "string" then
    return x
  elseif t == "bool" then
    return tostring(x)
  elseif t == "int" then
    return cel.int_text(x)
  elseif t == "double" then
    return cel.float_display(x[1])
  end
  cel.overload("string", false, x)
end

-- Whether `bytes` from `first` on are decimal digits, at least one.
function cel.all_digits(bytes, first)
  if first > #bytes then
    return false
  end
  for i = first, #bytes do
    if bytes[i] < 48 or bytes[i] > 57 then
      return false
    end
  end
  return true
end

-- `int(x)`.
function cel.int(x)
  local t = cel.type_of(x)
  if t == "int" then
    return x
  elseif t == "double" then
    local d = x[1]
    if not (d > -9223372036854775808 and d < 9223372036854775808) then
      cel.fail("Error executing function 'int': integer overflow")
    elseif d >= 0 then
      return cel.floor(d)
    end
    return 0 - cel.floor(-d)
  elseif t == "string" then
    return cel.parse_int(x)
  end
  cel.overload("int", false, x)
end

-- A string as Rust reads an i64: an optional sign, then decimal digits.
function cel.parse_int(s)
  local function fail(why)
    cel.fail("Error executing function 'int': string parse error: " .. why)
  end
  if s == "" then
    fail("cannot parse integer from empty string")
  end
  local bytes = cel.bytes(s)
  local first, negative = 1, false
  if bytes[1] == 43 or bytes[1] == 45 then
    first, negative = 2, bytes[1] == 45
  end
  if not cel.all_digits(bytes, first) then
    fail("invalid digit found in string")
  end
  while first < #bytes and bytes[first] == 48 do
    first = first + 1
  end
  local digits = cel.from_bytes(bytes, first)
  local limit = "9223372036854775807"
  if negative then
    limit = "9223372036854775808"
  end
  if #digits > #limit or (#digits == #limit and digits > limit) then
    if negative then
      fail("number too small to fit in target type")
    end
    fail("number too large to fit in target type")
  end
  local value = 0
  for i = first, #bytes do
    value = value * 10 + (bytes[i] - 48)
  end
  if negative then
    return 0 - value
  end
  return value
end

-- `double(x)`.
function cel.double(x)
  local t = cel.type_of(x)
  if t == "double" then
    return x
  elseif t == "int" then
    return cel.float(x)
  elseif t == "string" then
    return cel.float(cel.parse_double(x))
  end
  cel.overload("double", false, x)
end

-- A string as Rust reads an f64: a decimal number with an optional exponent, inf, infinity or
-- NaN, with an optional sign.
function cel.parse_double(s)
  local function fail(why)
    cel.fail("Error executing function 'double': string parse error: " .. why)
  end
  if s == "" then
    fail("cannot parse float from empty string")
  end
  local bytes = cel.bytes(s)
  local first, sign = 1, 1
  if bytes[1] == 43 or bytes[1] == 45 then
    first = 2
    if bytes[1] == 45 then
      sign = -1
    end
  end
  local word = cel.lower_ascii(cel.from_bytes(bytes, first))
  if word == "inf" or word == "infinity" then
    return sign / 0
  elseif word == "nan" then
    return 0 / 0
  end
  local i, digits = first, 0
  while i <= #bytes and bytes[i] >= 48 and bytes[i] <= 57 do
    i, digits = i + 1, digits + 1
  end
  if i <= #bytes and bytes[i] == 46 then
    i = i + 1
    while i <= #bytes and bytes[i] >= 48 and bytes[i] <= 57 do
      i, digits = i + 1, digits + 1
    end
  end
  if digits == 0 then
    fail("invalid float literal")
  end
  if i <= #bytes and (bytes[i] == 101 or bytes[i] == 69) then
    i = i + 1
    if i <= #bytes and (bytes[i] == 43 or bytes[i] == 45) then
      i = i + 1
    end
    if not cel.all_digits(bytes, i) then
      fail("invalid float literal")
    end
    i = #bytes + 1
  end
  if i <= #bytes then
    fail("invalid float literal")
  end
  -- With an exponent, gopher-lua's tonumber cannot read the digits as octal ("0123").
  local e = cel.find(bytes, { 101 }, first) or cel.find(bytes, { 69 }, first)
  local literal = cel.from_bytes(bytes, first)
  if e == nil then
    literal = literal .. "e0"
  end
  local value = tonumber(literal)
  if value == nil then
    -- beyond a double: gopher-lua's tonumber gives nothing where Rust reads an infinity or 0
    if e ~= nil and bytes[e + 1] == 45 then
      value = 0
    else
      value = 1 / 0
    end
  end
  return sign * value
end

-- Fails unless every value is a string, for a method.
function cel.strings(name, ...)
  for i = 1, select("#", ...) do
    if type((select(i, ...))) ~= "string" then
      cel.overload(name, true, ...)
    end
  end
end

-- Where `needle` first occurs in `bytes` from `first` on, or nil.
function cel.find(bytes, needle, first)
  for i = first, #bytes - #needle + 1 do
    local found = true
    for j = 1, #needle do
      if bytes[i + j - 1] ~= needle[j] then
        found = false
        break
      end
    end
    if found then
      return i
    end
  end
  return nil
end

function cel.contains(s, t)
  cel.strings("contains", s, t)
  return cel.find(cel.bytes(s), cel.bytes(t), 1) ~= nil
end

function cel.starts_with(s, t)
  cel.strings("startsWith", s, t)
  return #t <= #s and cel.find(cel.bytes(s), cel.bytes(t), 1) == 1
end

function cel.ends_with(s, t)
  cel.strings("endsWith", s, t)
  return #t <= #s and cel.find(cel.bytes(s), cel.bytes(t), #s - #t + 1) ~= nil
end

-- A string with the ASCII letters of `from` (65 for upper case, 97 for lower) changed by `by`.
function cel.shift_ascii(s, from, by)
  local bytes = cel.bytes(s)
  local out = {}
  for i, b in ipairs(bytes) do
    if b >= from and b < from + 26 then
      b = b + by
    end
    out[i] = cel.CHAR[b]
  end
  return table.concat(out)
end

function cel.lower_ascii(s)
  cel.strings("lowerAscii", s)
  return cel.shift_ascii(s, 65, 32)
end

function cel.upper_ascii(s)
  cel.strings("upperAscii", s)
  return cel.shift_ascii(s, 97, -32)
end

-- The code points of `s`, one text each.
function cel.code_points(s)
  local bytes = cel.bytes(s)
  local out, i = {}, 1
  while i <= #bytes do
    local j = i + 1
    while j <= #bytes and bytes[j] >= 128 and bytes[j] < 192 do
      j = j + 1
    end
    out[#out + 1] = cel.from_bytes(bytes, i, j - 1)
    i = j
  end
  return out
end

-- The parts of `s` between the occurrences of a non-empty `sep`.
function cel.pieces(s, sep)
  local bytes, needle = cel.bytes(s), cel.bytes(sep)
  local out, first = {}, 1
  while true do
    local at = cel.find(bytes, needle, first)
    if at == nil then
      break
    end
    out[#out + 1] = cel.from_bytes(bytes, first, at - 1)
    first = at + #needle
  end
  out[#out + 1] = cel.from_bytes(bytes, first)
  return out
end

function cel.split(s, sep)
  cel.strings("split", s, sep)
  if sep == "" then
    return setmetatable(cel.code_points(s), List)
  end
  return setmetatable(cel.pieces(s, sep), List)
end

function cel.replace(s, from, to)
  cel.strings("replace", s, from, to)
  if from == "" then
    local points = cel.code_points(s)
    return to .. table.concat(points, to) .. (#points > 0 and to or "")
  end
  return table.concat(cel.pieces(s, from), to)
end

-- `list.join()`, `list.join(sep)`.
function cel.join(list, sep)
  if not cel.is_list(list) or (sep ~= nil and type(sep) ~= "string") then
    if sep == nil then
      cel.overload("join", true, list)
    end
    cel.overload("join", true, list, sep)
  end
  for _, item in ipairs(list) do
    if type(item) ~= "string" then
      cel.fail("Unexpected type: got '" .. cel.type_of(item) .. "', want 'string'")
    end
  end
  return table.concat(list, sep or "")
end

-- What plane calls a value in its messages, by its JSON: "null", "a boolean", "a number", ...
function cel.kind(x)
  local t = cel.type_of(x)
  if t == "optional_type" then
    if x.has then
      return cel.kind(x.value)
    end
    return "null"
  elseif t == "bool" then
    return "a boolean"
  elseif t == "int" then
    return "a number"
  elseif t == "double" then
    local d = x[1]
    if d ~= d or d == 1 / 0 or d == -1 / 0 then
      return "null"
    end
    return "a number"
  elseif t == "string" then
    return "text"
  elseif t == "list" then
    return "a list"
  elseif t == "map" then
    return "a map"
  end
  return "null"
end

-- `list.sum()`, as plane adds: ints as ints, anything with a double as a double.
function cel.sum(list)
  local mt = getmetatable(list)
  if mt ~= List and mt ~= Empty then
    local t = cel.type_of(list)
    local shown = cel.debug(list)
    if t == "double" then
      shown = "Double(" .. cel.float_debug(list[1]) .. ")"
    elseif t == "null_type" then
      shown = "Null"
    end
    cel.fail("Unexpected type: got '" .. shown .. "', want 'Arc<Vec<Value>>'")
  end
  local whole, float = 0, nil
  for _, item in ipairs(list) do
    local t = cel.type_of(item)
    if t == "int" then
      whole = whole + item
      if not cel.is_int(whole) then
        cel.fail("Error executing function 'sum': overflow")
      end
    elseif t == "double" then
      float = (float or 0) + item[1]
    else
      cel.fail("Error executing function 'sum': cannot add " .. cel.kind(item))
    end
  end
  if float ~= nil then
    return cel.float(float + whole)
  end
  return whole
end

-- plane's text of a message's value, or nil and what the value is instead.
function cel.text(x)
  local t = cel.type_of(x)
  if t == "optional_type" then
    if x.has then
      return cel.text(x.value)
    end
    return nil, "null"
  elseif t == "string" then
    return x
  elseif t == "int" then
    return cel.int_text(x)
  elseif t == "double" and cel.kind(x) == "a number" then
    return cel.float_json(x[1])
  elseif t == "bool" then
    return tostring(x)
  end
  return nil, cel.kind(x)
end

-- An integer field of the object as it came: `metadata.generation`.
function cel.json_int(t, key)
  if type(t) ~= "table" then
    return nil
  end
  local x = t[key]
  if type(x) == "number" and cel.is_int(x) then
    return x
  end
  return nil
end

-- Computes the `let` values in order into `v`; the first that fails fails every expression.
function cel.bind(v, bindings)
  for _, binding in ipairs(bindings) do
    local ok, value = pcall(binding[2])
    if not ok then
      return "`" .. binding[1] .. "`: " .. cel.message(value)
    end
    v[binding[1]] = value
  end
  return nil
end

-- Whether a readiness expression holds, or nil and why it cannot be told.
function cel.is_true(expression, failure)
  if failure then
    return nil, failure
  end
  local ok, value = pcall(expression.eval)
  if not ok then
    return nil, "`" .. (expression.short or expression.text) .. "`: " .. cel.message(value)
  elseif type(value) ~= "boolean" then
    return nil, "`" .. expression.text .. "` is " .. cel.kind(value) .. ", not a boolean"
  end
  return value
end

-- The message expression's text, or nil and why there is none.
function cel.text_of(expression, failure)
  if failure then
    return nil, failure
  end
  local ok, value = pcall(expression.eval)
  if not ok then
    return nil, "`" .. (expression.short or expression.text) .. "`: " .. cel.message(value)
  end
  local text, kind = cel.text(value)
  if text == nil then
    return nil, "`" .. expression.text .. "` is " .. kind .. ", not text"
  end
  return text
end

-- plane's verdict on the object by the declared readiness, as Argo CD's health: the generation
-- not yet observed (unless ignored), then `inProgress`, `failed` and `current` in that order,
-- the first that holds deciding; none holding is progressing.
function cel.health(object, v, bindings, rule)
  if rule.generation == "wait" then
    local generation = cel.json_int(object.metadata, "generation")
    local observed = cel.json_int(object.status, "observedGeneration")
    if generation ~= nil and observed ~= nil and generation ~= observed then
      return { status = "Progressing", message = "waiting for the controller to observe the new generation" }
    end
  end
  local failure = cel.bind(v, bindings)
  local function say(fallback)
    if rule.message == nil then
      return fallback
    end
    local text, err = cel.text_of(rule.message, failure)
    if text == nil then
      return fallback .. " (its message cannot be evaluated: " .. err .. ")"
    end
    return text
  end
  local checks = {
    { rule.in_progress, "Progressing", "in progress: " },
    { rule.failed, "Degraded", "failed: " },
    { rule.current, "Healthy" },
  }
  for i = 1, 3 do
    local expression, status, prefix = checks[i][1], checks[i][2], checks[i][3]
    if expression ~= nil then
      local holds, err = cel.is_true(expression, failure)
      if err ~= nil then
        return { status = "Progressing", message = "its readiness cannot be evaluated: " .. err }
      elseif holds and prefix == nil then
        return { status = status }
      elseif holds then
        return { status = status, message = say(prefix .. expression.text) }
      end
    end
  end
  return { status = "Progressing", message = say("waiting for " .. rule.current.text) }
end
