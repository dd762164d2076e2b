// Many socket.io-client 4 dashboards of a farm of hubs in one Node process (the
// farm tests and bench.farm). Each client:
//   - gets the list of hub URLs and starts on urls[(start + i) % len] (spread:
//     false: all on urls[start]); after a
//     failed attempt or a lost connection it moves to the next URL, after a
//     jittered delay (a real dashboard behind a round-robin does the same);
//   - presents a cursor per printer at every connect: auth {last_seq: {id: seq}},
//     the highest durable seq it saw of each printer;
//   - subscribes to its printers (opts.printers: a list for all clients, or
//     opts.per_client printers each, chosen round-robin from opts.pool) on connect.
//
//   node farm_clients.mjs '{"urls": [...], "n": 3, "printers": [...] | null,
//       "pool": [...], "per_client": 10, "durable_lines": true, "jitter_ms": 500,
//       "retry_ms": 250, "start": 0, "path": "/socket.io/", "batch": 50}'
//
// stdout, JSON lines (t: epoch ms):
//   {"type": "ready"}
//   {"type": "connect", "c", "url", "conn", "t", "down_ms"}   down_ms: since it lost the last link
//   {"type": "subscribed", "c", "t", "ack"}
//   {"type": "disconnect", "c", "reason", "t"} / {"type": "connect_error", "c", "url", "message", "t"}
//   {"type": "auth", "c", "last_seq"}
//   {"type": "durable", "c", "printer", "seq", "event", "t"}     (durable_lines)
//   {"type": "resync", "c", "printer", "data", "t"}
//   {"type": "printers", "c", "states", "t"}                        (client 0 only)
//   {"type": "grown", "n", "connected", "seconds"}
//   {"type": "stats", ...}                                          (op stats)
// stdin, JSON lines:
//   {"op": "grow", "n"}                  open clients until n exist (all connected)
//   {"op": "window_start"} / {"op": "stats"}  latency of temperature and progress
//                                        (a status on connect is the held one: old)
//                                        (recv - trace.emit_ns, else
//                                        recv - ts) and counts since window_start
//   {"op": "away", "c": [..]}            close those clients, keep their cursors
//   {"op": "back", "c": [..]}            reconnect them (with their cursors)
//   {"op": "stall", "c": [..]}           stop reading their TCP socket (a stalled
//                                        browser: the hub's send buffer fills)
//   {"op": "unstall", "c": [..]}
//   {"op": "cursors"}                    {"type": "cursors", "cursors": [{id: seq}]}
//   {"op": "close"}
import { createRequire } from "node:module";
import path from "node:path";
import readline from "node:readline";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "..", "node", "package.json"));
const { io } = require("socket.io-client");
const WebSocket = require("ws");

const opts = JSON.parse(process.argv[2]);
const urls = opts.urls;
// epoch ms with µs resolution that follows the wall clock, as the plugin's and the
// hub's time.time_ns() do: performance.timeOrigin is fixed when the process starts,
// so a step of the wall clock after that (this VM's clock was seen stepping by
// 22 ms: every latency of a bench run came out negative) would offset every
// latency. Re-anchored every second on Date.now()'s millisecond tick, found to
// within microseconds by waiting for the next one.
let anchor = performance.timeOrigin;
function reanchor() {
  const d0 = Date.now();
  let d = d0;
  let p = 0;
  while (d === d0) {
    p = performance.now();
    d = Date.now();
  }
  anchor = d - p;
}
reanchor();
setInterval(reanchor, 1000).unref();
const nowMs = () => anchor + performance.now();
const out = (obj) => process.stdout.write(JSON.stringify({ ...obj, t: Date.now() }) + "\n");
const DURABLE = new Set([
  "printer:job_started",
  "printer:job_paused",
  "printer:job_resumed",
  "printer:job_complete",
  "printer:job_failed",
  "printer:connection",
]);
const jitter = opts.jitter_ms ?? 500;
const retry = opts.retry_ms ?? 250;
const clients = [];
const sockets = new Set(); // every TCP socket opened (bytes read off them)
let win = null;

function newWindow(durableAfter = 0) {
  const snap = new Map();
  for (const s of sockets) {
    if (s.destroyed) sockets.delete(s);
    else snap.set(s, s.bytesRead ?? 0);
  }
  return { start: nowMs(), msgs: 0, lat: [], byClient: new Map(), durable: 0, resyncs: 0, firstDurable: null, durableAfter, snap, drops: {} };
}

function printersOf(i) {
  if (opts.printers) return opts.printers;
  if (!opts.pool) return null; // the credential's default: every printer
  const k = Math.min(opts.per_client ?? 10, opts.pool.length);
  const first = (i * k) % opts.pool.length;
  return Array.from({ length: k }, (_, j) => opts.pool[(first + j) % opts.pool.length]);
}

function connect(c) {
  if (c.closed || c.away) return;
  const url = urls[c.urlIndex % urls.length];
  const socket = io(url + "/ws/printing", {
    path: opts.path ?? "/socket.io/",
    transports: ["websocket"],
    reconnection: false,
    forceNew: true,
    timeout: opts.timeout_ms ?? 10000,
    auth: (cb) => {
      const last_seq = { ...c.cursors };
      if (opts.durable_lines) out({ type: "auth", c: c.i, last_seq });
      cb(Object.keys(last_seq).length ? { last_seq } : {});
    },
  });
  c.socket = socket;
  let failed = false;
  const moveOn = () => {
    if (failed) return;
    failed = true;
    socket.removeAllListeners();
    socket.close();
    if (c.closed || c.away) return;
    c.urlIndex += 1;
    setTimeout(() => connect(c), retry + Math.random() * jitter);
  };
  socket.on("connect", () => {
    c.conn += 1;
    c.connected = true;
    const down = c.downAt ? nowMs() - c.downAt : null;
    c.downAt = null;
    if (down !== null) c.reattach.push(down);
    const tcpSock = tcp(c);
    if (tcpSock) sockets.add(tcpSock);
    if (opts.durable_lines || down !== null) out({ type: "connect", c: c.i, url, conn: c.conn, down_ms: down });
    const printers = printersOf(c.i);
    const done = (ack) => {
      c.subscribed = true;
      if (opts.durable_lines) out({ type: "subscribed", c: c.i, ack });
      if (c.onReady) {
        const f = c.onReady;
        c.onReady = null;
        f(true);
      }
    };
    if (printers) socket.emit("printer:subscribe", { printers }, done);
    else done(null);
  });
  socket.on("connect_error", (err) => {
    if (opts.durable_lines) out({ type: "connect_error", c: c.i, url, message: err.message });
    c.errors += 1;
    if (c.downAt === null) c.downAt = nowMs();
    if (c.onReady && c.errors > (opts.max_errors ?? 1e9)) {
      const f = c.onReady;
      c.onReady = null;
      f(false);
    }
    moveOn();
  });
  socket.on("disconnect", (reason) => {
    c.connected = false;
    c.subscribed = false;
    if (c.downAt === null) c.downAt = nowMs();
    if (opts.durable_lines) out({ type: "disconnect", c: c.i, reason });
    if (win) win.drops[reason] = (win.drops[reason] ?? 0) + 1;
    if (reason !== "io client disconnect") moveOn();
  });
  socket.onAny((event, data) => {
    const recv = nowMs();
    if (win) {
      win.msgs += 1;
      const tr = data && data.trace;
      let sent = tr && tr.emit_ns > 0 ? tr.emit_ns / 1e6 : data && typeof data.ts === "number" ? data.ts : null;
      if (sent !== null && (event === "printer:temperature" || event === "printer:progress")) {
        const l = recv - sent;
        win.lat.push(l);
        if (opts.per_client_latency) {
          let a = win.byClient.get(c.i);
          if (!a) win.byClient.set(c.i, (a = []));
          a.push(l);
        }
      }
    }
    if (DURABLE.has(event)) {
      const p = data.printer;
      if (win) {
        win.durable += 1;
        if (win.firstDurable === null && (data.ts ?? 0) >= win.durableAfter) [win.firstDurable, win.firstDurableTs] = [Date.now(), data.ts];
      }
      c.cursors[p] = Math.max(c.cursors[p] ?? 0, data.seq);
      if (opts.durable_lines) out({ type: "durable", c: c.i, printer: p, seq: data.seq, event });
    } else if (event === "printer:resync") {
      if (win) win.resyncs += 1;
      out({ type: "resync", c: c.i, printer: data.printer, data });
    } else if (event === "printer:printers" && c.i === 0 && opts.durable_lines) {
      out({ type: "printers", c: c.i, states: Object.fromEntries(data.printers.map((p) => [p.id, p.state])) });
    }
  });
}

// ~~ lean clients (opts.lean, bench.farm's bulk load): the same Socket.IO 4 frames
// over a plain ws WebSocket (Engine.IO 4, websocket only), parsing only what is
// measured: the event name and trace.emit_ns by slicing; JSON only for durable
// events and resyncs. The hub sees the same client; the client costs far less CPU
// than socket.io-client's decoder, so a 2-core machine measures the hub, not Node.

const NSP = "/ws/printing";
const EMIT = /"emit_ns":(\d+)/;

function connectLean(c) {
  if (c.closed || c.away) return;
  const url = urls[c.urlIndex % urls.length];
  const base = url.replace(/^http/, "ws") + (opts.path ?? "/socket.io/");
  const ws = new WebSocket(base + "?EIO=4&transport=websocket", { perMessageDeflate: true });
  c.socket = { close: () => ws.terminate(), ws };
  let failed = false;
  let opened = false;
  const moveOn = (why) => {
    if (failed) return;
    failed = true;
    ws.removeAllListeners();
    ws.on("error", () => {});
    ws.terminate();
    const was = c.connected;
    c.connected = false;
    c.subscribed = false;
    if (c.downAt === null) c.downAt = nowMs();
    if (was && win) win.drops[why] = (win.drops[why] ?? 0) + 1;
    if (!was) c.errors += 1;
    if (c.closed || c.away) return;
    c.urlIndex += 1;
    setTimeout(() => connectLean(c), retry + Math.random() * jitter);
  };
  const timer = setTimeout(() => opened || moveOn("timeout"), opts.timeout_ms ?? 10000);
  ws.on("error", () => moveOn("transport error"));
  ws.on("close", () => moveOn("transport close"));
  ws.on("message", (buf) => {
    const text = buf.toString();
    const kind = text[0];
    if (kind === "2") {
      ws.send("3");
      return;
    }
    if (kind === "0") {
      const last_seq = { ...c.cursors };
      ws.send("40" + NSP + "," + JSON.stringify(Object.keys(last_seq).length ? { last_seq } : {}));
      return;
    }
    if (kind !== "4") return;
    const type = text[1];
    const body = text.slice(2 + NSP.length + 1); // after "4x/ws/printing,"
    if (type === "2") return onLeanEvent(c, body);
    if (type === "0") {
      opened = true;
      clearTimeout(timer);
      c.conn += 1;
      c.connected = true;
      const down = c.downAt ? nowMs() - c.downAt : null;
      c.downAt = null;
      if (down !== null) c.reattach.push(down);
      if (ws._socket) sockets.add(ws._socket);
      const printers = printersOf(c.i);
      if (printers) ws.send("42" + NSP + ",1" + JSON.stringify(["printer:subscribe", { printers }]));
      else leanReady(c);
    } else if (type === "3") {
      leanReady(c); // the subscribe's ack
    } else if (type === "4") {
      moveOn("connect_error");
    } else if (type === "1") {
      moveOn("io server disconnect");
    }
  });
}

function leanReady(c) {
  c.subscribed = true;
  if (c.onReady) {
    const f = c.onReady;
    c.onReady = null;
    f(true);
  }
}

function onLeanEvent(c, body) {
  // body: ["printer:temperature",{...}]
  const end = body.indexOf('"', 2);
  const event = body.slice(2, end);
  if (win) {
    win.msgs += 1;
    if (event === "printer:temperature" || event === "printer:progress") {
      const m = EMIT.exec(body);
      if (m) win.lat.push(nowMs() - Number(m[1]) / 1e6);
    }
  }
  if (DURABLE.has(event) || event === "printer:resync") {
    const data = JSON.parse(body)[1];
    if (event === "printer:resync") {
      if (win) win.resyncs += 1;
      return;
    }
    c.cursors[data.printer] = Math.max(c.cursors[data.printer] ?? 0, data.seq);
    if (win) {
      win.durable += 1;
      if (win.firstDurable === null && (data.ts ?? 0) >= win.durableAfter) [win.firstDurable, win.firstDurableTs] = [Date.now(), data.ts];
    }
  }
}

function makeClient(i) {
  const c = {
    i,
    urlIndex: (opts.start ?? 0) + (opts.spread === false ? 0 : i),
    cursors: {},
    conn: 0,
    errors: 0,
    connected: false,
    subscribed: false,
    downAt: null,
    reattach: [],
    socket: null,
    away: false,
    closed: false,
    onReady: null,
  };
  clients.push(c);
  return new Promise((resolve) => {
    c.onReady = resolve;
    (opts.lean ? connectLean : connect)(c);
  });
}

async function grow(n, seconds) {
  const t0 = nowMs();
  const batch = opts.batch ?? 50;
  // a deadline (an overloaded machine): report what connected by then; the others
  // keep trying on their own
  const deadline = t0 + (seconds ?? 1e9) * 1000;
  while (clients.length < n && nowMs() < deadline) {
    const k = Math.min(batch, n - clients.length);
    const pending = [];
    for (let j = 0; j < k; j++) pending.push(makeClient(clients.length));
    if (seconds === undefined) {
      await Promise.all(pending);
    } else {
      const left = Math.min(2 ** 31 - 1, Math.max(0, deadline - nowMs()));
      let timer;
      await Promise.race([Promise.all(pending), new Promise((r) => (timer = setTimeout(r, left)))]);
      clearTimeout(timer);
    }
  }
  out({ type: "grown", n: clients.length, connected: clients.filter((c) => c.subscribed).length, seconds: (nowMs() - t0) / 1000 });
}

function pct(s, p) {
  if (!s.length) return null;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

function summary(values) {
  const s = Float64Array.from(values).sort();
  if (!s.length) return { count: 0, p50: null, p95: null, p99: null, max: null };
  return { count: s.length, p50: pct(s, 50), p95: pct(s, 95), p99: pct(s, 99), max: s[s.length - 1] };
}

function stats() {
  const w = win ?? newWindow();
  const reattach = [];
  for (const c of clients) reattach.push(...c.reattach);
  const perClient = {};
  for (const [i, a] of w.byClient) perClient[i] = summary(a);
  let read = 0;
  for (const s of sockets) {
    read += (s.bytesRead ?? 0) - (w.snap.get(s) ?? 0);
  }
  out({
    type: "stats",
    bytes_read: read,
    first_durable_t: w.firstDurable,
    first_durable_ts: w.firstDurableTs ?? null, // when that event was written
    disconnects: w.drops,
    seconds: (nowMs() - w.start) / 1000,
    clients: clients.length,
    connected: clients.filter((c) => c.subscribed).length,
    messages: w.msgs,
    durable: w.durable,
    resyncs: w.resyncs,
    latency_ms: summary(w.lat),
    per_client_latency_ms: opts.per_client_latency ? perClient : undefined,
    reattach_ms: summary(reattach),
    reattached: reattach.length,
    connect_errors: clients.reduce((a, c) => a + c.errors, 0),
  });
}

function each(list, f) {
  for (const i of list) if (clients[i]) f(clients[i]);
}

function tcp(c) {
  if (c.socket?.ws) return c.socket.ws._socket;
  return c.socket?.io?.engine?.transport?.ws?._socket;
}

function closeAll() {
  for (const c of clients) {
    c.closed = true;
    c.socket?.close();
  }
}

const rl = readline.createInterface({ input: process.stdin });
rl.on("line", async (line) => {
  const cmd = JSON.parse(line);
  if (cmd.op === "grow") await grow(cmd.n, cmd.seconds);
  else if (cmd.op === "window_start") {
    win = newWindow(cmd.durable_after ?? 0); // first_durable_t: written (ts) at or after it
    for (const c of clients) c.reattach = [];
    out({ type: "window_started" });
  } else if (cmd.op === "stats") stats();
  else if (cmd.op === "away")
    each(cmd.c, (c) => {
      c.away = true;
      c.socket?.close();
    });
  else if (cmd.op === "back")
    each(cmd.c, (c) => {
      c.away = false;
      c.downAt = nowMs();
      (opts.lean ? connectLean : connect)(c);
    });
  else if (cmd.op === "stall") each(cmd.c, (c) => tcp(c)?.pause());
  else if (cmd.op === "unstall") each(cmd.c, (c) => tcp(c)?.resume());
  else if (cmd.op === "cursors") out({ type: "cursors", cursors: clients.map((c) => c.cursors) });
  else if (cmd.op === "close") {
    closeAll();
    out({ type: "closed" });
    setTimeout(() => process.exit(0), 100);
  }
});
rl.on("close", () => {
  closeAll();
  setTimeout(() => process.exit(0), 100);
});
out({ type: "ready" });
