'use strict';
// The socket.io baseline of the minim benchmarks: "what teams would pick instead". The same board
// rules as minim (shared/src/decide.rs) for the commands the load generator sends, on the usual
// stack: socket.io 4, @socket.io/redis-adapter to carry broadcasts between instances, and board
// state in Redis, changed by one Lua script call per command (rules.lua: check, write, number the
// events, atomically). Run two instances on one Redis for the two-node topology.
//
//   node server.js --port 0 --redis redis://127.0.0.1:6379
//
// Clients connect with auth {board, person, role}, join the board's room,
// receive "snapshot" {seq, board} (the board up to seq), emit("command", {type: ...}, ack) and
// receive "event" {seq, event} for every event of the board, then the ack {ok: true, seq} or
// {ok: false, code, message}. Prints one line once it listens.

const fs = require('fs');
const http = require('http');
const path = require('path');
const { Redis } = require('ioredis');
const { Server } = require('socket.io');
const { createAdapter } = require('@socket.io/redis-adapter');

function option(name, fallback) {
  const i = process.argv.indexOf(name);
  return i > 1 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}
const port = Number(option('--port', '0'));
const redisUrl = option('--redis', 'redis://127.0.0.1:6379');

const db = new Redis(redisUrl, { enableAutoPipelining: true });
const pub = new Redis(redisUrl, { enableAutoPipelining: true });
const sub = new Redis(redisUrl);
for (const client of [db, pub, sub]) client.on('error', (err) => console.error('redis:', err.message));
const lua = fs.readFileSync(path.join(__dirname, 'rules.lua'), 'utf8');
db.defineCommand('board', { numberOfKeys: 6, lua }); // EVALSHA (EVAL if Redis lost the script)

const httpServer = http.createServer();
const io = new Server(httpServer, {
  transports: ['websocket'],
  serveClient: false,
  pingInterval: 25000,
  pingTimeout: 20000,
  perMessageDeflate: false,
  adapter: createAdapter(pub, sub),
});

// ----- Commands: validated and normalised here, decided in Redis. -----

const MAX_TOPIC_CHARS = 280;
const PHASES = new Set(['gathering', 'voting', 'discussing', 'wrap_up', 'closed']);
const ANSWERS = new Set(['up', 'sideways', 'down']);
const BARE = new Set(['start_timer', 'pause_timer', 'resume_timer', 'extend_timer', 'stop_timer', 'move_on', 'end_timebox']);
const MALFORMED = { ok: false, code: 'invalid', message: 'The command is malformed.' };

const isU32 = (n) => Number.isInteger(n) && n >= 0 && n <= 0xffffffff;
const isU64 = (n) => Number.isSafeInteger(n) && n >= 0;

// minim's one-line normaliser: no bidi controls, runs of whitespace and control characters become
// one space, trimmed; the limit counts characters. Returns [text as JSON, problem or ''].
function topicText(raw) {
  const text = raw
    .replace(/[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c\ufeff]/g, '')
    .replace(/[\s\u0000-\u001f\u007f-\u009f]+/g, ' ')
    .trim();
  if (text === '') return ['""', 'The topic is empty.'];
  if (text.length > MAX_TOPIC_CHARS && Array.from(text).length > MAX_TOPIC_CHARS) {
    return ['""', `The topic is longer than ${MAX_TOPIC_CHARS} characters.`];
  }
  return [JSON.stringify(text), ''];
}

// Settings as minim reads them: missing fields take the defaults, unknown ones are ignored.
function settingsArgs(s) {
  if (s === null || typeof s !== 'object' || Array.isArray(s)) return null;
  const pick = (v, fallback, ok) => (v === undefined ? fallback : ok(v) ? v : undefined);
  const isBool = (v) => typeof v === 'boolean';
  const v = {
    votes_per_person: pick(s.votes_per_person, 3, isU32),
    max_votes_per_topic: pick(s.max_votes_per_topic, 3, isU32),
    timebox_ms: pick(s.timebox_ms, 300000, isU64),
    extension_ms: pick(s.extension_ms, null, (x) => x === null || isU64(x)),
    hide_topics_until_revealed: pick(s.hide_topics_until_revealed, false, isBool),
    hide_totals_until_voting_closes: pick(s.hide_totals_until_voting_closes, true, isBool),
  };
  if (Object.values(v).includes(undefined)) return null;
  const extension = v.extension_ms === null ? v.timebox_ms : v.extension_ms;
  const inRange = (ms) => ms >= 1000 && ms <= 3600000;
  let problem = '';
  if (v.votes_per_person === 0 || v.votes_per_person > 20) {
    problem = 'Votes per person must be between 1 and 20.';
  } else if (v.max_votes_per_topic === 0 || v.max_votes_per_topic > v.votes_per_person) {
    problem = 'Votes per topic must be between 1 and the votes per person.';
  } else if (!inRange(v.timebox_ms) || !inRange(extension)) {
    problem = 'Timeboxes and extensions must be between 1 second and 60 minutes.';
  }
  const flag = (b) => (b ? '1' : '0');
  return [
    String(v.votes_per_person), String(v.max_votes_per_topic), String(v.timebox_ms),
    v.extension_ms === null ? '' : String(v.extension_ms),
    flag(v.hide_topics_until_revealed), flag(v.hide_totals_until_voting_closes),
    JSON.stringify(v), problem,
  ];
}

// The script's arguments after (command, person, role, now), or null if the command is malformed.
function commandArgs(c) {
  if (c === null || typeof c !== 'object') return null;
  switch (c.type) {
    case 'add_topic':
      return typeof c.text === 'string' ? topicText(c.text) : null;
    case 'edit_topic':
      return isU32(c.topic) && typeof c.text === 'string' ? [String(c.topic), ...topicText(c.text)] : null;
    case 'place_vote':
    case 'remove_vote':
      return isU32(c.topic) ? [String(c.topic)] : null;
    case 'change_phase':
      return PHASES.has(c.to) ? [c.to] : null;
    case 'change_settings':
      return settingsArgs(c.settings);
    case 'answer_check_in':
      return ANSWERS.has(c.answer) ? [c.answer] : null;
    default:
      return BARE.has(c.type) ? [] : null;
  }
}

const boardKeys = (board) => ['s', 'v', 'q', 't', 'p', 'c'].map((k) => `sio:{${board}}:${k}`);

// Sends each event to the whole room (this instance's sockets and, through the adapter, the
// others'), and arms the timebox if an event set a running timer.
function publish(board, reply) {
  const { events } = reply;
  const first = reply.seq - events.length + 1;
  const room = io.to(board);
  for (let i = 0; i < events.length; i++) {
    const event = events[i];
    room.emit('event', { seq: first + i, event });
    if (event.type === 'timer_started' || event.type === 'timer_resumed') armTimebox(board, event.deadline);
    else if (event.type === 'timer_extended' && event.timer.state === 'running') armTimebox(board, event.timer.deadline);
  }
}

async function run(board, keys, person, role, command, ack) {
  const args = commandArgs(command);
  if (args === null) return ack && ack(MALFORMED);
  let reply;
  try {
    reply = JSON.parse(await db.board(...keys, command.type, person, role, String(Date.now()), ...args));
  } catch (err) {
    console.error('command failed:', err.message);
    return ack && ack({ ok: false, code: 'unavailable', message: 'The board cannot be reached; try again.' });
  }
  if (!reply.ok) return ack && ack(reply);
  publish(board, reply);
  if (ack) ack({ ok: true, seq: reply.seq });
}

// ----- Timeboxes: the instance that set a deadline ends it (the script checks it is still due). -----

const timeboxes = new Map(); // board -> timeout

function armTimebox(board, deadline) {
  clearTimeout(timeboxes.get(board));
  timeboxes.set(board, setTimeout(endTimebox, Math.max(0, deadline - Date.now()), board, deadline));
}

async function endTimebox(board, deadline) {
  if (Date.now() < deadline) return armTimebox(board, deadline); // timers may fire a little early
  timeboxes.delete(board);
  try {
    const reply = JSON.parse(await db.board(...boardKeys(board), 'end_timebox', '0', 's', String(Date.now())));
    if (reply.ok) publish(board, reply); // otherwise the timer was paused, extended or stopped since
  } catch (err) {
    console.error('timebox failed:', err.message);
  }
}

// ----- Connections. -----

io.use((socket, next) => {
  const { board, person, role } = socket.handshake.auth || {};
  const ok = typeof board === 'string' && board.length > 0 && board.length <= 100 && isU32(person)
    && (role === 'facilitator' || role === 'participant');
  next(ok ? undefined : new Error('auth needs board, person and role'));
});

io.on('connection', (socket) => {
  const { board, person, role } = socket.handshake.auth;
  const keys = boardKeys(board);
  const who = String(person);
  const as = role === 'facilitator' ? 'f' : 'p';
  socket.join(board);
  // Every (re)joining client gets the board as it stands, read after joining the room so that
  // nothing falls between the two: an event the snapshot already holds may arrive as well, and
  // the client drops events at or below the snapshot's seq.
  db.board(...keys, 'snapshot', who, as, String(Date.now())).then(
    (reply) => {
      const { seq, board: state } = JSON.parse(reply);
      socket.emit('snapshot', { seq, board: state });
    },
    (err) => {
      console.error('snapshot failed:', err.message);
      socket.disconnect(true); // the client comes back and asks again
    },
  );
  socket.on('command', (command, ack) => {
    run(board, keys, who, as, command, typeof ack === 'function' ? ack : null);
  });
});

function shutdown() {
  for (const timer of timeboxes.values()) clearTimeout(timer);
  setTimeout(() => process.exit(0), 1000).unref();
  io.close(() => {
    Promise.allSettled([db.quit(), pub.quit(), sub.quit()]).then(() => process.exit(0));
  });
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

db.script('LOAD', lua).then(
  () => httpServer.listen(port, '127.0.0.1', () => {
    process.stdout.write(`listening on http://127.0.0.1:${httpServer.address().port}\n`);
  }),
  (err) => {
    console.error('cannot load the rules into Redis:', err.message);
    process.exit(1);
  },
);
