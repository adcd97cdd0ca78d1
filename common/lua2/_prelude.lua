-- _prelude.lua: the helpers the scripts share, in parts. The body sent
-- for a script is this head (the lines before the first part), then each
-- part whose name the script's `Prelude:` header lines list, in the order
-- of this file, then the script (docs/PROTOCOL.md section 5). A part runs
-- from its `--@ <name>` line to the next one and may use the parts above
-- it; a script lists every part its body uses, and the parts those use
-- (tests/lua2/test_prelude.py checks the lists). Every function a body
-- defines, and every local it captures, costs each call of the script,
-- so a script gets only the parts it calls; for the same reason the
-- parts read library functions as globals (string.find, redis.call)
-- rather than capturing local copies.
--
-- Every script validates its whole input before its first write: Redis
-- does not undo the writes a script made before it failed. bad() raises
-- the error reply; it is only ever called before the first write.
-- Values a script reads back from a task hash are validated before they
-- are trusted (whole(), names); a hash that fails is reported to the
-- caller, never acted on.
-- Every message is built with cjson (publish). Keys shared by a call
-- arrive in KEYS;
-- a task's own keys (t:<id>, x:<id>) and its waiter channel (w:<id>) are
-- built from prefixes in ARGV, which check_prefix() ties to KEYS[1]'s hash
-- tag, so a call cannot reach another queue's keys. The events channel is
-- checked the same way: on a cluster an SPUBLISH to another slot's shard
-- channel fails, and it would fail after the script's writes.

--@ limits
local MAX_MS = 253402300799999    -- 9999-12-31, in ms since the epoch
local MAX_ATTEMPT = 1000000       -- deliveries of one task
local MAX_TTL_S = 315360000       -- 10 years
local MAX_TIMEOUT_MS = 315360000000
local MAX_TASKS = 64              -- tasks per create, take, claim or finish call
local MAX_CALL_BYTES = 262144     -- values per call, unless the call holds one task
local INLINE_MAX = 64             -- args and results up to this stay in the hash
local ARGS_INLINE_MAX = 256       -- args up to this stay in the task hash, in
                                  -- INLINE_MAX-byte chunks x, x2, x3, x4
local MAX_TEXT = 65536            -- an error message, progress message
local MAX_TRACEBACK = 262144

--@ TERMINAL
local TERMINAL = {completed = true, failed = true, cancelled = true, timeout = true}

--@ now_ms
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

--@ fmt
local function fmt(n)
  return string.format('%d', n)
end

--@ fmtc
-- A number given to redis.call is formatted on each call (a snprintf of a
-- double); the values a call repeats per task (its time, a deadline, a
-- TTL's end, an attempt) are formatted once per call here.
local fmt_seen = {}
local function fmtc(n)
  local s = fmt_seen[n]
  if not s then
    s = fmt(n)
    fmt_seen[n] = s
  end
  return s
end

--@ bad
local function bad(what)
  error({err = 'ERR ' .. what})
end

--@ valid_name
-- A valid name (ids, names, queues, worker ids): 1..128 of A-Z a-z 0-9 . _ : -
local function valid_name(s)
  return type(s) == 'string' and #s >= 1 and #s <= 128 and not string.find(s, '[^a-zA-Z0-9._:-]')
end

--@ whole
-- s as a whole number in [lo, hi] when it is written as plain decimal
-- digits (no sign, exponent, hex, nan or inf), else nil.
local function whole(s, lo, hi)
  if type(s) ~= 'string' or #s > 15 or not string.find(s, '^%d+$') then return nil end
  local n = tonumber(s)
  if n < lo or n > hi then return nil end
  return n
end

--@ opt_whole
-- An optional whole number: '', nil and false (a missing hash field) mean
-- default; anything else that is not a whole number in range gives nil.
local function opt_whole(s, lo, hi, default)
  if not s or s == '' then return default end
  return whole(s, lo, hi)
end

--@ need_name
local function need_name(s, what)
  if not valid_name(s) then bad(what .. ' must be a valid name') end
  return s
end

--@ need_whole
local function need_whole(s, lo, hi, what)
  local n = whole(s, lo, hi)
  if not n then bad(what .. ' must be a whole number in ' .. fmt(lo) .. '..' .. fmt(hi)) end
  return n
end

--@ keys_tag
-- The hash tag of a key: '{ns:Q}' of '{ns:Q}:q'.
local function tag_of(key)
  return string.match(key, '^{[^}]*}')
end

-- KEYS[1]'s tag, found once per call.
local key_tag
local function keys_tag()
  if key_tag == nil then key_tag = KEYS[1] and tag_of(KEYS[1]) or false end
  return key_tag
end

--@ check_prefix
-- A prefix given in ARGV must carry the same tag as KEYS[1].
local function check_prefix(prefix, what)
  local tag = keys_tag()
  if not tag or type(prefix) ~= 'string' or string.find(prefix, tag, 1, true) ~= 1 or
     string.find(prefix, '{', #tag + 1, true) or string.find(prefix, '}', #tag + 1, true) then
    bad(what .. ' prefix is not under the hash tag of the keys')
  end
  return prefix
end

--@ check_keys
-- Every KEYS entry must share KEYS[1]'s tag (the caller's keys.c does so),
-- and no key may fill two roles: a key given twice would take two types.
-- A key that starts with the tag has that tag: the tag holds no '}'.
-- (Plain finds: no substring is made.)
local function check_keys()
  local tag = keys_tag()
  if not tag then bad('KEYS[1] has no hash tag') end
  local seen = {}
  for i = 1, #KEYS do
    local k = KEYS[i]
    if string.find(k, tag, 1, true) ~= 1 then bad('KEYS are not all under one hash tag') end
    if seen[k] then bad('a key is given twice') end
    seen[k] = true
  end
end

--@ need_type
-- Refuses the call unless key (KEYS[i]) is absent or of type want
-- ('list', 'zset', 'hash', 'string', or 'list|zset' for either): a
-- command on a key of the wrong type would fail half-way, after earlier
-- writes. A script names only the keys it may write after its first
-- write: a key that is only read, or whose first use is the script's
-- first write, fails before anything was written. Returns the type the
-- key has ('none' when absent).
local function need_type(key, want, i)
  local t = redis.call('TYPE', key)['ok']
  if t ~= 'none' and t ~= want and not string.find('|' .. want .. '|', '|' .. t .. '|', 1, true) then
    bad('key ' .. i .. ' holds a ' .. t .. ', not a ' .. want)
  end
  return t
end

--@ need_types
-- need_type for a list of key, type pairs; returns key -> the type it has.
local function need_types(types)
  local have = {}
  for i = 1, #types - 1, 2 do
    have[types[i]] = need_type(types[i], types[i + 1], i)
  end
  return have
end

--@ side_hash
-- A task's side hash, made writable: a value of another type under the
-- task's own side key is dropped first.
local function side_hash(x)
  local have = redis.call('TYPE', x)['ok']
  if have ~= 'none' and have ~= 'hash' then redis.call('DEL', x) end
  return x
end

--@ publish
-- One message per call on the queue's event channel (a shard channel).
local function publish(chan, tbl)
  redis.call('SPUBLISH', chan, cjson.encode(tbl))
end

--@ end_sig
-- The steps that end tasks for a caller that may sign the ends (cancel,
-- purge, backstop, recover, deadletter; docs/SECURITY.md).
-- The caller's signatures of the ends the step may write, made
-- beforehand: `count` records of 5 values from ARGV[first]: id, attempt
-- `a` and claim time `b` as the task hash held them ('' when absent),
-- the status the signature is for, and the signature "kid:hex".
-- Returns them keyed for end_sig; raises on a malformed record (before
-- any write).
local function end_sigs(first, count, what)
  local sigs = {}
  for i = first, first + 5 * count - 1, 5 do
    need_name(ARGV[i], what .. ': signed id')
    local a, b, st, rs = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
    if #a > 10 or #b > 15 or not string.find(a, '^%d*$') or not string.find(b, '^%d*$') then
      bad(what .. ': a signed attempt or claim time is not a whole number')
    end
    if not TERMINAL[st] or st == 'completed' then bad(what .. ': a signed status must be failed, cancelled or timeout') end
    if #rs > 200 or not string.find(rs, '^[A-Za-z0-9._-]+:[0-9a-f]+$') then bad(what .. ': a signature must be "kid:hex"') end
    sigs[ARGV[i] .. '/' .. a .. '/' .. b .. '/' .. st] = rs
  end
  return sigs
end

-- The caller's signature of the end `st` of task id whose hash holds
-- attempt a and claim time b (nil when absent), added to the end's
-- fields. With one, the end's error fields are the only ones left (the
-- signature covers them): an earlier attempt's are dropped from both
-- hashes.
local function end_sig(sigs, t, x, has_side, id, a, b, st, fields)
  local rs = sigs[id .. '/' .. (a or '') .. '/' .. (b or '') .. '/' .. st]
  if not rs then return end
  redis.call('HDEL', t, 'ec', 'em', 'ed', 'et')
  if has_side then redis.pcall('HDEL', x, 'ec', 'em', 'ed', 'et') end
  fields[#fields + 1] = 'rs'; fields[#fields + 1] = rs
end

--@ end_task
-- Ends a task: status, time, extra fields, TTL, history list.
-- t: its key; x: its side key (big args and results, a hash); fields:
-- name/value pairs for the task hash besides s and e; side: pairs for the
-- side hash (a big result); has_side: the task has a side hash already
-- (its `xs` field); ttl_s: its lifetime; hist: the done list to push the
-- id onto (nil when history is off); pushes: done list -> ids, written by
-- push_done(). A completed task drops its args: it cannot be retried.
local function end_task(t, x, id, status, now, fields, side, has_side, ttl_s, hist, pushes)
  local until_ms = now + ttl_s * 1000
  if #side > 0 then
    redis.call('HSET', side_hash(x), unpack(side))
    has_side = true
    fields[#fields + 1] = 'xs'; fields[#fields + 1] = '1'
  end
  -- An outcome signature (rs) belongs to the outcome written with it:
  -- any other end drops an older one.
  local signed = false
  if #fields > 0 then
    redis.call('HSET', t, 's', status, 'e', fmtc(now), unpack(fields))
    for i = 1, #fields - 1, 2 do
      if fields[i] == 'rs' then signed = true end
    end
  else
    redis.call('HSET', t, 's', status, 'e', fmtc(now))
  end
  if status == 'completed' then
    if has_side then redis.pcall('HDEL', x, 'x') end
    if signed then
      redis.call('HDEL', t, 'dl', 'x', 'x2', 'x3', 'x4')
    else
      redis.call('HDEL', t, 'dl', 'rs', 'x', 'x2', 'x3', 'x4')
    end
  elseif signed then
    redis.call('HDEL', t, 'dl')
  else
    redis.call('HDEL', t, 'dl', 'rs')
  end
  until_ms = fmtc(until_ms)
  redis.call('PEXPIREAT', t, until_ms)
  if has_side then redis.call('PEXPIREAT', x, until_ms) end
  if hist then
    local l = pushes[hist]
    if not l then l = {}; pushes[hist] = l end
    l[#l + 1] = id
  end
end

--@ push_done
-- Pushes the ended ids onto their done lists; a list over cap loses its
-- oldest ids, and their tasks are deleted when they have ended (an id
-- whose task was created again under the same id and has not ended is
-- left alone). Work: O(ids pushed).
local function push_done(pushes, cap, tpre, xpre)
  for key, ids in pairs(pushes) do
    local len = redis.call('LPUSH', key, unpack(ids))
    if len > cap then
      local old = redis.call('RPOP', key, len - cap)
      for i = 1, #old do
        local id = old[i]
        local s = valid_name(id) and redis.pcall('HGET', tpre .. id, 's')
        if type(s) == 'string' and TERMINAL[s] then
          redis.call('DEL', tpre .. id, xpre .. id)
        end
      end
    end
  end
end

--@ gate
-- Fleet-wide limits of a queue, checked inside the claim step.
--   {ns:Q}:limit   hash  rate (tasks per second, a decimal), burst (whole;
--                        default the rate rounded up, at least 1), conc
--                        (whole: at most this many running at once)
--   {ns:Q}:bucket  hash  t (tokens, a decimal), ts (ms of the last refill)
--   {ns:Q}:slots   zset  id -> lease end (the task's deadline) of each
--                        running task of the queue, while conc is set
-- A limit whose value does not validate is not applied. gate_open reads
-- them once per call; gate_wait tells whether a claim may happen now,
-- gate_room how many may; gate_take spends a token and a slot; gate_close stores the bucket. A
-- slot is given back by every step that ends or hands back a run (finish,
-- requeue, handback, deadletter, recover: ZREM), and a lease that ran out
-- (a worker that died holding it) is dropped at the next claim.
local function decimal(s, lo, hi)
  if type(s) ~= 'string' or not string.find(s, '^%d+%.?%d*$') then return nil end
  local n = tonumber(s)
  if not n or n < lo or n > hi then return nil end
  return n
end

local function gate_open(kl, kb, ks, now)
  local l = redis.call('HMGET', kl, 'rate', 'burst', 'conc')
  local g = {kb = kb, ks = ks, now = now}
  local rate = decimal(l[1] or '', 0.001, 1000000)
  if rate then
    local burst = opt_whole(l[2], 1, 1000000, math.max(1, math.ceil(rate))) or math.max(1, math.ceil(rate))
    local b = redis.call('HMGET', kb, 't', 'ts')
    local t, ts = decimal(b[1] or '', 0, burst), opt_whole(b[2], 0, MAX_MS, now)
    if not t then t = burst end
    if not ts or ts > now then ts = now end
    g.rate, g.tokens = rate, math.min(burst, t + (now - ts) * rate / 1000)
  end
  local conc = opt_whole(l[3], 1, 1000000, nil)
  g.on = rate ~= nil or conc ~= nil
  if conc then
    redis.call('ZREMRANGEBYSCORE', ks, '-inf', now)
    g.conc, g.used = conc, redis.call('ZCARD', ks)
  end
  return g
end

-- 0 when a claim may happen now, else how long to wait (ms).
local function gate_wait(g)
  if g.rate and g.tokens < 1 then return math.ceil((1 - g.tokens) * 1000 / g.rate) end
  if g.conc and g.used >= g.conc then return 100 end
  return 0
end

-- How many claims the limits allow now, one after another (math.huge
-- with no limit): as many as gate_wait allows before it says wait.
local function gate_room(g)
  local room = math.huge
  if g.rate then room = math.max(0, math.floor(g.tokens)) end
  if g.conc then room = math.min(room, math.max(0, g.conc - g.used)) end
  return room
end

local function gate_take(g, id, lease_end)
  if g.rate then g.tokens = g.tokens - 1 end
  if g.conc then
    g.used = g.used + 1
    redis.call('ZADD', g.ks, lease_end, id)
  end
end

local function gate_close(g)
  if g.rate then redis.call('HSET', g.kb, 't', string.format('%.6f', g.tokens), 'ts', g.now) end
end

--@ claim_one
-- Claims one task whose id is at the head of the processing list plist
-- (false: the caller puts it there afterwards, unless it is skipped):
-- pending -> running under wid, attempt + 1, deadline. Returns the reply
-- entry of take and claim:
--   {'ok', id, name, attempt, deadline_ms, timeout_ms, args, signature,
--    to, mr, rt, bo}  the last four as stored ('' when absent): with the
--                     rest, the values the signature covers
--   {'skip', id, status}  not pending (cancelled while it waited, or a
--                         stale duplicate): dropped from plist (or not
--                         put there), not run
--   {'missing', id}       no task hash: the worker dead-letters the id
--   {'bad', id, reason}   the id or the stored fields do not validate:
--                         the worker dead-letters it, nothing was written
-- started: the entries of the claims made, for the call's message.
-- names: a name -> true cache of the names already validated this call.
local function claim_one(id, now, wid, deftmo, tpre, xpre, plist, started, gate, names)
  if not valid_name(id) then return {'bad', id, 'the id is not a valid name'} end
  local t = tpre .. id
  local h = redis.pcall('HMGET', t, 's', 'n', 'a', 'to', 'x', 'xs', 'sg', 'mr', 'rt', 'bo',
                        'x2', 'x3', 'x4')
  if h.err then return {'bad', id, 'the task key is not a hash'} end
  local s = h[1]
  if s ~= 'pending' then
    if not s then return {'missing', id} end
    -- A status that is none of rtq's is a hash that does not check out:
    -- reported, so the worker dead-letters it, not dropped unseen.
    if s ~= 'running' and not TERMINAL[s] then
      return {'bad', id, 'the task hash does not validate'}
    end
    if plist then redis.call('LREM', plist, 1, id) end
    return {'skip', id, s}
  end
  local a, to, n = 0, deftmo, h[2]
  -- An absent or empty field means the default, as opt_whole has it.
  if h[3] and h[3] ~= '' then a = whole(h[3], 0, MAX_ATTEMPT - 1) end
  if h[4] and h[4] ~= '' then to = whole(h[4], 1, MAX_TIMEOUT_MS) end
  if not names[n] then
    if valid_name(n) then names[n] = true else a = nil end
  end
  if not a or not to then
    return {'bad', id, 'the task hash does not validate'}
  end
  a = a + 1
  local dl = now + to
  if gate.on then gate_take(gate, id, dl) end
  redis.call('HSET', t, 's', 'running', 'w', wid, 'a', fmtc(a), 'b', fmtc(now), 'dl', fmtc(dl))
  local args = h[5] or ''
  -- Args of 65..256 bytes come in chunks, joined in their order.
  if h[11] then args = args .. h[11] .. (h[12] or '') .. (h[13] or '') end
  -- A side hash (xs) holds args only when they are over 256 bytes: it
  -- may exist for a long error or result of an earlier attempt alone.
  if h[6] == '1' then
    local v = redis.pcall('HGET', xpre .. id, 'x')
    if type(v) == 'string' then args = v end
  end
  started[#started + 1] = {id = id, a = a}
  return {'ok', id, n, a, dl, to, args, h[7] or '', h[4] or '', h[8] or '', h[9] or '', h[10] or ''}
end

--@ split_big
-- Splits name/value pairs into those that stay in the task hash and
-- those longer than INLINE_MAX, which go to the side hash: a task hash
-- whose every value is short stays listpack-encoded.
local function split_big(name, value, inline, side)
  if #value > INLINE_MAX then
    side[#side + 1] = name; side[#side + 1] = value
  else
    inline[#inline + 1] = name; inline[#inline + 1] = value
  end
end

--@ OUTCOME_FIELDS
-- Outcome fields a worker may send, with the longest value each may have
-- (rs: the worker's signature of the outcome, "kid:hex").
local OUTCOME_FIELDS = {ec = 128, em = MAX_TEXT, ed = 1048576, et = MAX_TRACEBACK, p = 3,
                        pm = MAX_TEXT, rs = 200}

--@ valid_utf8
-- True when s is valid UTF-8 (no overlong forms, surrogates or code
-- points past U+10FFFF). Text that a script puts into a JSON message must
-- be: cjson copies bytes as they are.
local function valid_utf8(s)
  if not string.find(s, '[\128-\255]') then return true end
  local i, n = 1, #s
  while i <= n do
    local c = string.byte(s, i)
    local len, lo, hi = 0, 0x80, 0xBF
    if c < 0x80 then len = 0
    elseif c >= 0xC2 and c <= 0xDF then len = 1
    elseif c == 0xE0 then len, lo = 2, 0xA0
    elseif c == 0xED then len, hi = 2, 0x9F
    elseif c >= 0xE1 and c <= 0xEF then len = 2
    elseif c == 0xF0 then len, lo = 3, 0x90
    elseif c == 0xF4 then len, hi = 3, 0x8F
    elseif c >= 0xF1 and c <= 0xF3 then len = 3
    else return false end
    for k = 1, len do
      local d = string.byte(s, i + k)
      if not d or d < (k == 1 and lo or 0x80) or d > (k == 1 and hi or 0xBF) then return false end
    end
    i = i + len + 1
  end
  return true
end

--@ keep_dead
-- A dead-letter record: a msgpack map of the pairs in kv (a flat list:
-- name, value, ...), then `payload`, the first 4096 bytes of the entry as
-- it was, as a msgpack bin (cmsgpack would write a str, which strict
-- decoders refuse when it is not UTF-8). At most 14 pairs (a fixmap).
local function dead_record(kv, entry)
  local parts = {string.char(0x80 + #kv / 2 + 1)}
  for i = 1, #kv - 1, 2 do
    parts[#parts + 1] = cmsgpack.pack(kv[i])
    parts[#parts + 1] = cmsgpack.pack(kv[i + 1])
  end
  local p = string.sub(entry, 1, 4096)
  parts[#parts + 1] = cmsgpack.pack('payload')
  if #p < 256 then
    parts[#parts + 1] = string.char(0xc4, #p)
  else
    parts[#parts + 1] = string.char(0xc5, math.floor(#p / 256), #p % 256)
  end
  parts[#parts + 1] = p
  return table.concat(parts)
end

local DEAD_KEPT = 10000

-- Records a dead letter of entry in list dead and counts it in stats.
local function keep_dead(dead, stats, now, code, reason, worker, queue, entry)
  local id = valid_name(entry) and entry or ''
  redis.call('LPUSH', dead, dead_record({'at', now, 'code', code, 'reason', reason,
                                         'worker', worker, 'queue', queue, 'id', id,
                                         'size', #entry}, entry))
  redis.call('LTRIM', dead, 0, DEAD_KEPT - 1)
  redis.call('HINCRBY', stats, 'dead', 1)
end
