-- rules.lua: minim's board rules for the socket.io baseline (see server.js), run by Redis.
-- One EVALSHA = one command: read the board, check the rule, write the change and number the
-- events, atomically, so any number of server instances can share a board. Messages and shapes
-- follow minim's shared/src/decide.rs and event.rs; events are the copy everyone may see (no
-- authors, no voters).
--
-- KEYS: 1 board fields (hash), 2 votes per topic (hash id -> n; a topic exists iff it is here),
--       3 topic status (hash id -> q|c|d: queued, current, discussed), 4 topic details (hash
--       x<id> = text as JSON, a<id> = author, h<id> = 1 if hidden), 5 people (hash t<p> = topics
--       written, u<p> = votes used, <p>:<id> = votes on topic), 6 check-in answers (hash p -> answer).
-- ARGV: command (or snapshot, below), person, role (f = facilitator, p = participant, s = the server), now (ms), then
--       the command's own arguments (already validated and normalised by server.js).
-- Returns {"ok":true,"seq":N,"events":[...]} (N = seq of the last event, or the current seq) or
-- {"ok":false,"code":"...","message":"..."}.
local S, V, Q, T, P, C = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local cmd, me, role, now = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])

local INDEX = { gathering = 1, voting = 2, discussing = 3, wrap_up = 4, closed = 5 }
local LABEL = { gathering = 'gathering topics', voting = 'voting', discussing = 'discussing',
                wrap_up = 'wrap-up', closed = 'closed' }
local FACILITATOR = { change_phase = 1, change_settings = 1, start_timer = 1, pause_timer = 1,
                      resume_timer = 1, extend_timer = 1, stop_timer = 1, move_on = 1 }

local function fmt(n) return string.format('%.0f', n) end

-- The board's own fields, read once; changed ones are written back in one HSET at the end.
local b, dirty = {}, {}
local raw = redis.call('HGETALL', S)
for i = 1, #raw, 2 do b[raw[i]] = raw[i + 1] end
local function set(k, v)
  b[k] = type(v) == 'number' and fmt(v) or v
  dirty[k] = true
end
if not b.phase then -- created on the first command: gathering, default settings
  for k, v in pairs({ phase = 'gathering', seq = '0', vpp = '3', mvt = '3', tb = '300000', ext = '',
                      ht = '0', hv = '1', tr = '0', timer = 'idle', dl = '0', rem = '0', cur = '0',
                      ci = '0', lt = '0', nt = '0', nv = '0', nh = '0' }) do
    set(k, v)
  end
end

local events = {}
local function emit(e) events[#events + 1] = e end
local function no(code, message)
  error({ refusal = '{"ok":false,"code":"' .. code .. '","message":"' .. message .. '"}' }, 0)
end
local function need(doing, ...)
  local names = {}
  for _, p in ipairs({ ... }) do
    if b.phase == p then return end
    names[#names + 1] = LABEL[p]
  end
  no('wrong_phase', doing .. ' only while ' .. table.concat(names, ' or ') .. '; the meeting is in '
    .. LABEL[b.phase] .. '.')
end
local function hash(key)
  local r, t = redis.call('HGETALL', key), {}
  for i = 1, #r, 2 do t[r[i]] = r[i + 1] end
  return t
end
local function totals_public() return (b.hv == '0' or b.tr == '1') and 'true' or 'false' end
local function exists(id)
  if not redis.call('HGET', V, id) then no('not_found', 'That topic does not exist.') end
end
local function current()
  if b.cur == '0' then no('conflict', 'No topic is under discussion.') end
  return b.cur
end
local function close_check_in()
  if b.ci == '1' then set('ci', '0'); redis.call('DEL', C) end
end
local function reset_timer() set('timer', 'idle'); close_check_in() end

-- The first queued topic with the most votes (older first on ties) becomes current.
local function select_next()
  local votes, best, most = hash(V), nil, -1
  for id, status in pairs(hash(Q)) do
    local n, i = tonumber(votes[id]), tonumber(id)
    if status == 'q' and (n > most or (n == most and i < best)) then best, most = i, n end
  end
  if not best then return end
  best = fmt(best)
  redis.call('HSET', Q, best, 'c'); set('cur', best); reset_timer()
  emit('{"type":"topic_selected","topic":' .. best .. '}')
end
local function discussed(id)
  redis.call('HSET', Q, id, 'd'); set('cur', '0'); reset_timer()
  emit('{"type":"topic_discussed","topic":' .. id .. '}')
end
local function reveal_hidden()
  if b.nh == '0' then return end
  local list = {}
  for id = 1, tonumber(b.lt) do
    if redis.call('HGET', T, 'h' .. id) == '1' then
      redis.call('HSET', T, 'h' .. id, '0')
      list[#list + 1] = '{"topic":' .. id .. ',"text":' .. redis.call('HGET', T, 'x' .. id) .. '}'
    end
  end
  set('nh', '0')
  if #list > 0 then emit('{"type":"topics_revealed","topics":[' .. table.concat(list, ',') .. ']}') end
end
local function running(deadline)
  set('timer', 'running'); set('dl', deadline)
  return fmt(deadline)
end

local H = {}

function H.add_topic(text, problem)
  need('Topics can be added', 'gathering')
  if problem ~= '' then no('invalid', problem) end
  if tonumber(redis.call('HGET', P, 't' .. me) or '0') >= 10 then
    no('limit', 'You can bring at most 10 topics.')
  end
  if tonumber(b.nt) >= 200 then no('limit', 'The board holds at most 200 topics.') end
  local id, hidden = fmt(b.lt + 1), b.ht == '1'
  set('lt', id); set('nt', b.nt + 1)
  redis.call('HSET', V, id, '0'); redis.call('HSET', Q, id, 'q')
  redis.call('HSET', T, 'x' .. id, text, 'a' .. id, me, 'h' .. id, hidden and '1' or '0')
  redis.call('HINCRBY', P, 't' .. me, 1)
  if hidden then
    set('nh', b.nh + 1)
    emit('{"type":"topic_added","topic":' .. id .. ',"hidden":true}')
  else
    emit('{"type":"topic_added","topic":' .. id .. ',"text":' .. text .. ',"hidden":false}')
  end
end

function H.edit_topic(id, text, problem)
  exists(id)
  local author, hidden = unpack(redis.call('HMGET', T, 'a' .. id, 'h' .. id))
  if role == 'f' then
    if hidden == '1' and author ~= me then no('conflict', 'That topic is hidden until you reveal topics.') end
  else
    if author ~= me then no('forbidden', 'You can only change your own topics.') end
    need('You can change your topics', 'gathering', 'voting')
    if redis.call('HGET', Q, id) ~= 'q' then
      no('conflict', 'That topic is no longer waiting to be discussed.')
    end
  end
  if problem ~= '' then no('invalid', problem) end
  redis.call('HSET', T, 'x' .. id, text)
  if hidden == '1' then
    emit('{"type":"topic_edited","topic":' .. id .. ',"hidden":true}')
  else
    emit('{"type":"topic_edited","topic":' .. id .. ',"text":' .. text .. ',"hidden":false}')
  end
end

function H.place_vote(id)
  need('Votes can be placed', 'voting')
  exists(id)
  if redis.call('HGET', Q, id) == 'd' then no('conflict', 'That topic has already been discussed.') end
  local mine = redis.call('HMGET', P, 'u' .. me, me .. ':' .. id)
  if tonumber(mine[1] or '0') >= tonumber(b.vpp) then
    no('vote_limit', 'You have used all ' .. b.vpp .. ' of your votes. Remove one to vote elsewhere.')
  end
  if tonumber(mine[2] or '0') >= tonumber(b.mvt) then
    no('vote_limit', 'At most ' .. b.mvt .. ' of your votes can go on one topic.')
  end
  redis.call('HINCRBY', V, id, 1)
  redis.call('HINCRBY', P, 'u' .. me, 1)
  redis.call('HINCRBY', P, me .. ':' .. id, 1)
  set('nv', b.nv + 1)
  emit('{"type":"vote_placed","topic":' .. id .. ',"totals_public":' .. totals_public() .. '}')
end

function H.remove_vote(id)
  need('Votes can be removed', 'voting')
  exists(id)
  local on = tonumber(redis.call('HGET', P, me .. ':' .. id) or '0')
  if on == 0 then no('conflict', 'You have no vote on that topic.') end
  redis.call('HINCRBY', V, id, -1)
  redis.call('HINCRBY', P, 'u' .. me, -1)
  if on == 1 then redis.call('HDEL', P, me .. ':' .. id) else redis.call('HINCRBY', P, me .. ':' .. id, -1) end
  set('nv', b.nv - 1)
  emit('{"type":"vote_removed","topic":' .. id .. ',"totals_public":' .. totals_public() .. '}')
end

function H.answer_check_in(answer)
  need('Check-ins are answered', 'discussing')
  if b.ci ~= '1' then no('conflict', 'There is no check-in open.') end
  local previous = redis.call('HGET', C, me)
  if previous == answer then return end
  redis.call('HSET', C, me, answer)
  emit('{"type":"check_in_answered","answer":"' .. answer .. '"'
    .. (previous and (',"previous":"' .. previous .. '"') or '') .. '}')
end

function H.change_settings(vpp, mvt, tb, ext, ht, hv, json, problem)
  need('Settings can be changed', 'gathering')
  if problem ~= '' then no('invalid', problem) end
  if (vpp ~= b.vpp or mvt ~= b.mvt or hv ~= b.hv) and b.nv ~= '0' then
    no('conflict', 'Votes have been placed, so the voting settings can no longer change.')
  end
  local unhide = b.ht == '1' and ht == '0'
  set('vpp', vpp); set('mvt', mvt); set('tb', tb); set('ext', ext); set('ht', ht); set('hv', hv)
  emit('{"type":"settings_changed","settings":' .. json .. '}')
  if unhide then reveal_hidden() end
end

function H.change_phase(to)
  local from = b.phase
  if to == from then no('conflict', 'The meeting is already in ' .. LABEL[to] .. '.') end
  local changed = '{"type":"phase_changed","from":"' .. from .. '","to":"' .. to .. '"}'
  if INDEX[to] == INDEX[from] + 1 then
    if to == 'voting' then
      if b.nt == '0' then no('conflict', 'Add at least one topic before voting.') end
      reveal_hidden()
      emit(changed)
    elseif to == 'discussing' then
      emit(changed)
      if totals_public() == 'false' then
        local votes, totals = hash(V), {}
        for id = 1, tonumber(b.lt) do
          local n = votes[tostring(id)]
          if n then totals[#totals + 1] = '{"topic":' .. id .. ',"votes":' .. n .. '}' end
        end
        set('tr', '1')
        emit('{"type":"vote_totals_revealed","totals":[' .. table.concat(totals, ',') .. ']}')
      end
      if b.cur == '0' then select_next() end
    elseif to == 'wrap_up' then
      if b.cur ~= '0' then discussed(b.cur) end
      emit(changed)
    else
      emit(changed)
    end
  elseif INDEX[to] == INDEX[from] - 1 then
    if from == 'discussing' and b.timer == 'running' then -- reopening voting freezes the clock
      local left = math.max(0, b.dl - now)
      set('timer', 'paused'); set('rem', left)
      emit('{"type":"timer_paused","remaining_ms":' .. fmt(left) .. '}')
      emit(changed)
    elseif from == 'wrap_up' then
      emit(changed)
      select_next()
    else
      emit(changed)
    end
  else
    no('invalid', 'The meeting moves one phase at a time.')
  end
  set('phase', to)
end

function H.start_timer()
  need('The timer runs', 'discussing')
  local id = current()
  if b.timer == 'paused' then no('conflict', 'The timer is paused; resume it instead.') end
  if b.timer == 'expired' then no('conflict', 'The timebox has ended; extend it or move on.') end
  if b.timer == 'running' then no('conflict', 'The timer is already running.') end
  close_check_in()
  emit('{"type":"timer_started","topic":' .. id .. ',"deadline":' .. running(now + b.tb) .. '}')
end

function H.pause_timer()
  need('The timer runs', 'discussing')
  if b.timer == 'running' and now < tonumber(b.dl) then
    local left = b.dl - now
    set('timer', 'paused'); set('rem', left)
    emit('{"type":"timer_paused","remaining_ms":' .. fmt(left) .. '}')
  elseif b.timer == 'running' or b.timer == 'expired' then
    no('conflict', 'The timebox has already ended.')
  else
    no('conflict', 'The timer is not running.')
  end
end

function H.resume_timer()
  need('The timer runs', 'discussing')
  if b.timer ~= 'paused' then no('conflict', 'The timer is not paused.') end
  emit('{"type":"timer_resumed","deadline":' .. running(now + b.rem) .. '}')
end

function H.extend_timer()
  need('The timer runs', 'discussing')
  local by = tonumber(b.ext ~= '' and b.ext or b.tb)
  local timer
  if b.timer == 'running' then
    timer = '{"state":"running","deadline":' .. running(math.max(tonumber(b.dl), now) + by) .. '}'
  elseif b.timer == 'paused' then
    set('rem', b.rem + by)
    timer = '{"state":"paused","remaining_ms":' .. b.rem .. '}'
  elseif b.timer == 'expired' then
    timer = '{"state":"running","deadline":' .. running(now + by) .. '}'
  else
    no('conflict', 'The timer is not running.')
  end
  close_check_in()
  emit('{"type":"timer_extended","timer":' .. timer .. '}')
end

function H.stop_timer()
  need('The timer runs', 'discussing')
  if b.timer == 'idle' then no('conflict', 'The timer is not running.') end
  reset_timer()
  emit('{"type":"timer_stopped"}')
end

function H.move_on()
  need('Moving on happens', 'discussing')
  discussed(current())
  select_next()
end

-- The server's own command, when a running timer's deadline passed: opens the check-in.
function H.end_timebox()
  if b.timer ~= 'running' then no('conflict', 'The timer is not running.') end
  if now < tonumber(b.dl) then no('conflict', 'The timebox has not ended yet.') end
  local id = current()
  set('timer', 'expired'); set('ci', '1'); redis.call('DEL', C)
  emit('{"type":"timebox_ended","topic":' .. id .. '}')
end

-- Not a command: the board as a client (re)joining it sees it, what its events so far add up to
-- (no authors, no voters; hidden topics without their text; totals once they are public). Read
-- only: a board that does not exist yet shows its defaults and is not created.
if cmd == 'snapshot' then
  local votes, status, details, public = hash(V), hash(Q), hash(T), totals_public() == 'true'
  local topics = {}
  for id = 1, tonumber(b.lt) do
    local k = tostring(id)
    if votes[k] then
      local hidden = details['h' .. k] == '1'
      topics[#topics + 1] = '{"topic":' .. k .. ',"text":' .. (hidden and 'null' or details['x' .. k])
        .. ',"hidden":' .. tostring(hidden) .. ',"votes":' .. (public and votes[k] or 'null')
        .. ',"status":"' .. status[k] .. '"}'
    end
  end
  local answers = { up = 0, sideways = 0, down = 0 }
  for _, answer in pairs(hash(C)) do answers[answer] = answers[answer] + 1 end
  return '{"ok":true,"seq":' .. b.seq .. ',"board":{"phase":"' .. b.phase .. '","settings":{"votes_per_person":'
    .. b.vpp .. ',"max_votes_per_topic":' .. b.mvt .. ',"timebox_ms":' .. b.tb .. ',"extension_ms":'
    .. (b.ext == '' and 'null' or b.ext) .. ',"hide_topics_until_revealed":' .. tostring(b.ht == '1')
    .. ',"hide_totals_until_voting_closes":' .. tostring(b.hv == '1') .. '},"timer":{"state":"' .. b.timer
    .. '","deadline":' .. b.dl .. ',"remaining_ms":' .. b.rem .. '},"current":' .. b.cur
    .. ',"check_in":' .. (b.ci == '1' and ('{"up":' .. answers.up .. ',"sideways":' .. answers.sideways
    .. ',"down":' .. answers.down .. '}') or 'null') .. ',"topics":[' .. table.concat(topics, ',') .. ']}}'
end

local ok, err = pcall(function()
  if cmd == 'end_timebox' then
    if role ~= 's' then no('forbidden', 'Only the server can do that.') end
  elseif FACILITATOR[cmd] and role ~= 'f' then
    no('forbidden', 'Only the facilitator can do that.')
  end
  if b.phase == 'closed' and cmd ~= 'change_phase' then no('wrong_phase', 'The meeting is closed.') end
  H[cmd](unpack(ARGV, 5))
end)
if not ok and not (type(err) == 'table' and err.refusal) then error(err) end
-- Rules check before they write, so a refusal leaves only a new board's defaults to store.
if #events > 0 then set('seq', b.seq + #events) end
local fields = {}
for k in pairs(dirty) do
  fields[#fields + 1] = k
  fields[#fields + 1] = b[k]
end
if #fields > 0 then redis.call('HSET', S, unpack(fields)) end
if not ok then return err.refusal end
return '{"ok":true,"seq":' .. b.seq .. ',"events":[' .. table.concat(events, ',') .. ']}'
