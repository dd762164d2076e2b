// FluxPrint benchmark load generator: N real clients in one Node process, driven
// over stdin/stdout with JSON lines (one process per load, so its CPU is never
// counted as OctoPrint's).
//
//   node loadgen.mjs '{"mode": "fluxprint"|"sockjs"|"rest", "url": "http://127.0.0.1:5000",
//                      "apikey": "..." (none: the hub's trusted loopback), "path": "...", "auth": "name:session", "subscribe": {...},
//                      "sockjsSubscribe": {...}}'
//
//   FluxPrint clients also take: "lean": true (the same Socket.IO 4 frames over a
//   plain ws WebSocket, parsing only what is measured: socket.io-client's decoder
//   saturates a core at ~15,000 messages/s, which would measure Node, not the
//   server), "pool": [printer ids] + "perClient": k (each client subscribes to k of
//   them, round-robin; "subscribe" is merged in), "latencyPrinter": an id (latency
//   on that printer's messages only), "measureEvery": k (lean: only every k-th
//   client parses what it gets for latency and event counts; the others count
//   frames and a batch's items by its "seq" keys, one per item, without parsing).
//   A printer:batch is counted as one message and its items as updates; latency
//   is per item.
//
// stdin:  {"op": "grow", "n": 100}      open clients until 100 are connected
//         {"op": "window_start"}        zero the counters
//         {"op": "window_end"}          report what arrived since window_start
//         {"op": "window_end", "trace": [[seq, cb_ns, emit_ns], ...]}
//                                       ... with latencies from the server's trace
//                                       table (opts.traceTable: FLUXPRINT_TRACE=table,
//                                       payloads carry no trace of their own)
//         {"op": "close"}
// stdout: {"type": "grown"|"window"|"ready"|"error", ...}
//
// Bytes are read off the TCP sockets (net.Socket.bytesRead/bytesWritten), so they
// include HTTP, websocket and Socket.IO/SockJS framing.
import { createRequire } from "node:module";
import readline from "node:readline";
import http from "node:http";
import { performance } from "node:perf_hooks";

const require = createRequire(new URL("../tests/node/package.json", import.meta.url));
const { io } = require("socket.io-client");
const WebSocket = require("ws");

const opts = JSON.parse(process.argv[2]);
const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
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

const clients = [];
const sockets = new Set(); // every TCP socket the clients opened
let snap = new Map();
let win = null;
let negotiated; // Sec-WebSocket-Extensions the server answered (first client)

function newWindow() {
  return { start: nowMs(), msgs: 0, updates: 0, batches: 0, events: {}, lat: [], emitLat: [], wireLat: [], byEvent: {}, dataAge: [], errors: 0, arrivals: [] };
}

// when a socket last had bytes from the kernel: a message's frame arrived at or
// before it, so "wire" latencies leave out this process's own queue of inflates
// (ws inflates off-thread, ten at a time, for every client in this one process)
function track(sock) {
  if (sock && !sockets.has(sock)) {
    sockets.add(sock);
    sock.on("data", () => {
      sock.fluxWire = nowMs();
    });
  }
}

const wireOf = (sock) => sock?.fluxWire ?? null;

function record(event, latMs, emitLatMs, wireLatMs) {
  if (!win) return;
  win.msgs += 1;
  win.events[event] = (win.events[event] ?? 0) + 1;
  if (latMs !== undefined && latMs !== null) {
    win.lat.push(latMs);
    (win.byEvent[event] ??= []).push(latMs);
  }
  if (emitLatMs !== undefined && emitLatMs !== null) win.emitLat.push(emitLatMs);
  if (wireLatMs !== undefined && wireLatMs !== null) win.wireLat.push(wireLatMs);
}

// ~~ FluxPrint: socket.io-client 4 over websocket, the way FluxStudio connects

function subscribeFor(index) {
  if (!opts.pool) return opts.subscribe;
  const k = Math.min(opts.perClient ?? 10, opts.pool.length);
  const first = (index * k) % opts.pool.length;
  const printers = Array.from({ length: k }, (_, j) => opts.pool[(first + j) % opts.pool.length]);
  return { ...(opts.subscribe ?? {}), printers };
}

// one received message: a single event, or a printer:batch of [event, payload] items
function onMessage(event, payload, wire) {
  if (!win) return;
  const recv = nowMs();
  if (event === "printer:batch") {
    win.msgs += 1;
    win.events[event] = (win.events[event] ?? 0) + 1;
    win.batches += 1;
    for (const [e, p] of payload.items) {
      win.updates += 1;
      win.events[e] = (win.events[e] ?? 0) + 1;
      timed(e, p, recv, wire);
    }
    return;
  }
  win.updates += 1;
  record(event);
  timed(event, payload, recv, wire, true);
}

function timed(event, payload, recv, wire, counted) {
  const trace = payload && payload.trace;
  // latencyPrinter (the hub bench): latency of that printer's messages only
  if (opts.latencyPrinter && payload?.printer !== opts.latencyPrinter) return;
  if (!(trace && trace.cb_ns > 0)) return;
  win.lat.push(recv - trace.cb_ns / 1e6);
  (win.byEvent[event] ??= []).push(recv - trace.cb_ns / 1e6);
  win.emitLat.push(recv - trace.emit_ns / 1e6);
  if (wire !== null && wire !== undefined) win.wireLat.push(wire - trace.emit_ns / 1e6);
}

// ~~ lean FluxPrint clients: Engine.IO 4 / Socket.IO 4 frames over a plain ws
// WebSocket (websocket transport only, permessage-deflate offered as a browser
// does); the server cannot tell them from socket.io-client

const NSP = "/ws/printing";

function countSeqs(text) {
  let n = 0;
  for (let i = text.indexOf('"seq":'); i !== -1; i = text.indexOf('"seq":', i + 6)) n += 1;
  return n;
}

function openLean(index) {
  const measuring = index % (opts.measureEvery ?? 1) === 0;
  return new Promise((resolve) => {
    const base = opts.url.replace(/^http/, "ws") + (opts.path ?? "/plugin/fluxprint/socket.io/");
    const ws = new WebSocket(base + "?EIO=4&transport=websocket", { perMessageDeflate: opts.perMessageDeflate ?? true });
    const client = { ws, ok: false, lean: true, measuring };
    let done = false;
    const finish = () => {
      if (!done) {
        done = true;
        resolve(client);
      }
    };
    const timer = setTimeout(finish, 30000);
    ws.on("open", () => track(ws._socket));
    ws.on("error", () => {
      if (win) win.errors += 1;
      finish();
    });
    ws.on("close", () => {
      client.ok = false;
      finish();
    });
    ws.on("message", (buf) => {
      const text = buf.toString();
      const kind = text[0];
      if (kind === "2") return ws.send("3");
      if (kind === "0") {
        if (negotiated === undefined) negotiated = ws.extensions ?? null;
        return ws.send("40" + NSP + "," + JSON.stringify(opts.apikey ? { apikey: opts.apikey } : {}));
      }
      if (kind !== "4") return;
      const type = text[1];
      const body = text.slice(2 + NSP.length + 1);
      if (type === "2") {
        // ["printer:...",{...}]: the whole payload is parsed only when measured
        const end = body.indexOf('"', 2);
        const event = body.slice(2, end);
        const wire = wireOf(ws._socket);
        if (!win) return;
        if (!measuring) {
          win.msgs += 1;
          win.updates += event === "printer:batch" ? countSeqs(body) : 1;
          return;
        }
        if (event === "printer:batch" || !opts.latencyPrinter || body.includes(`"printer":"${opts.latencyPrinter}"`)) {
          onMessage(event, JSON.parse(body)[1], wire);
        } else {
          win.updates += 1;
          record(event);
        }
      } else if (type === "0") {
        clearTimeout(timer);
        client.ok = true;
        const sub = subscribeFor(index);
        if (sub) ws.send("42" + NSP + ",1" + JSON.stringify(["printer:subscribe", sub]));
        else finish();
      } else if (type === "3") {
        finish(); // the subscribe's ack
      } else if (type === "4" || type === "1") {
        if (win) win.errors += 1;
        client.ok = false;
        finish();
      }
    });
  });
}

function openFluxPrint(index) {
  return new Promise((resolve) => {
    const socket = io(opts.url + "/ws/printing", {
      // the hub (bench/hub.py): its own path, and no credentials from loopback
      path: opts.path ?? "/plugin/fluxprint/socket.io/",
      auth: opts.apikey ? { apikey: opts.apikey } : {},
      transports: ["websocket"],
      reconnection: false,
      forceNew: true,
      timeout: 30000,
    });
    const client = { socket, ok: false };
    socket.on("connect", () => {
      client.ok = true;
      const ws = socket.io.engine.transport.ws;
      track(ws?._socket);
      if (negotiated === undefined) negotiated = ws?.extensions ?? null;
      const sub = subscribeFor(index);
      if (sub) {
        socket.emit("printer:subscribe", sub, () => resolve(client));
      } else {
        resolve(client);
      }
    });
    socket.on("connect_error", (err) => {
      if (win) win.errors += 1;
      resolve(client);
    });
    socket.onAny((event, payload) => {
      if (!win) return;
      const wire = wireOf(socket.io.engine?.transport?.ws?._socket);
      const timedOne = !opts.latencyPrinter || payload?.printer === opts.latencyPrinter;
      if (opts.traceTable && timedOne && typeof payload?.seq === "number") {
        // joined with the server's table at window_end
        win.arrivals.push([event, payload.seq, nowMs(), wire]);
        record(event);
        win.updates += 1;
      } else {
        onMessage(event, payload, wire);
      }
    });
  });
}

// ~~ OctoPrint's SockJS push, over SockJS's raw websocket transport (what a browser's
// sockjs-client uses when websockets work)

function openSockJS() {
  return new Promise((resolve) => {
    const server = String(Math.floor(Math.random() * 1000)).padStart(3, "0");
    const session = Math.random().toString(36).slice(2, 10);
    const wsUrl = opts.url.replace(/^http/, "ws") + `/sockjs/${server}/${session}/websocket`;
    const ws = new WebSocket(wsUrl, { perMessageDeflate: opts.perMessageDeflate ?? true });
    const client = { ws, ok: false };
    let resolved = false;
    const done = () => {
      if (!resolved) {
        resolved = true;
        resolve(client);
      }
    };
    ws.on("upgrade", () => track(ws._socket));
    ws.on("open", () => {
      track(ws._socket);
      if (negotiated === undefined) negotiated = ws.extensions ?? null;
    });
    ws.on("message", (data) => {
      const text = data.toString();
      const kind = text[0];
      if (kind === "o") {
        ws.send(JSON.stringify([JSON.stringify({ auth: opts.auth })]));
        // "lean": what a dashboard would ask OctoPrint for (no logs, no messages)
        if (opts.sockjsSubscribe) ws.send(JSON.stringify([JSON.stringify({ subscribe: opts.sockjsSubscribe })]));
        client.ok = true;
        done();
      } else if (kind === "a" && win) {
        const recv = nowMs();
        for (const raw of JSON.parse(text.slice(1))) {
          const msg = typeof raw === "string" ? JSON.parse(raw) : raw;
          const key = Object.keys(msg)[0];
          if (key === "current") {
            const st = msg.current.serverTime;
            const wire = wireOf(ws._socket);
            record(
              "current",
              st ? recv - st * 1000 : null,
              undefined,
              st && wire !== null ? wire - st * 1000 : null,
            );
            win.updates += 1;
            const temps = msg.current.temps;
            if (temps && temps.length) win.dataAge.push(recv - temps[temps.length - 1].time * 1000);
          } else {
            record(key);
          }
        }
      }
    });
    ws.on("error", () => {
      if (win) win.errors += 1;
      done();
    });
    ws.on("close", () => done());
  });
}

// ~~ REST polling: GET /api/printer and /api/job once a second, keep-alive

function openRest(index, total) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
  const client = { agent, ok: true, stop: false };
  const get = (path) =>
    new Promise((resolve) => {
      const req = http.get(opts.url + path, { agent, headers: { "X-Api-Key": opts.apikey } }, (res) => {
        res.on("data", () => {});
        res.on("end", () => resolve(res.statusCode === 200));
      });
      req.on("socket", track);
      req.on("error", () => resolve(false));
    });
  const period = (opts.pollInterval ?? 1) * 1000;
  let next = nowMs() + (period * index) / Math.max(1, total);
  const tick = async () => {
    if (client.stop) return;
    const t0 = nowMs();
    const ok = (await Promise.all([get("/api/printer"), get("/api/job")])).every(Boolean);
    const t1 = nowMs();
    if (win) {
      if (ok) {
        record("poll", t1 - t0);
        win.updates += 1;
      } else win.errors += 1;
    }
    next += period;
    while (next < nowMs()) next += period; // overloaded: skip, never pile up
    setTimeout(tick, next - nowMs());
  };
  setTimeout(tick, Math.max(0, next - nowMs()));
  return Promise.resolve(client);
}

async function grow(n) {
  const t0 = nowMs();
  let failed = 0;
  const batch = opts.batch ?? 25;
  while (clients.length < n) {
    const k = Math.min(batch, n - clients.length);
    const pending = [];
    for (let i = 0; i < k; i++) {
      const index = clients.length + i;
      if (opts.mode === "fluxprint") pending.push(opts.lean ? openLean(index) : openFluxPrint(index));
      else if (opts.mode === "sockjs") pending.push(openSockJS());
      else pending.push(openRest(index, n));
    }
    const opened = await Promise.all(pending);
    for (const c of opened) {
      clients.push(c);
      if (!c.ok) failed += 1;
    }
  }
  const connected = clients.filter((c) => c.ok).length;
  out({ type: "grown", n: clients.length, connected, failed, seconds: (nowMs() - t0) / 1000, extensions: negotiated ?? null });
}

function pct(sorted, p) {
  if (!sorted.length) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

function summary(values) {
  const s = Float64Array.from(values).sort();
  if (!s.length) return { count: 0, p50: null, p90: null, p99: null, max: null, mean: null };
  let sum = 0;
  for (const v of s) sum += v;
  return { count: s.length, p50: pct(s, 50), p90: pct(s, 90), p99: pct(s, 99), max: s[s.length - 1], mean: sum / s.length };
}

function bytes() {
  let read = 0;
  let written = 0;
  for (const s of sockets) {
    const before = snap.get(s) ?? [0, 0];
    read += (s.bytesRead ?? 0) - before[0];
    written += (s.bytesWritten ?? 0) - before[1];
  }
  return { read, written };
}

function windowStart() {
  snap = new Map();
  for (const s of sockets) snap.set(s, [s.bytesRead ?? 0, s.bytesWritten ?? 0]);
  win = newWindow();
  out({ type: "window_started" });
}

function joinTrace(w, rows) {
  const table = new Map();
  for (const [seq, cb, emit] of rows) table.set(seq, [cb, emit]);
  for (const [event, seq, recv, wire] of w.arrivals) {
    const t = table.get(seq);
    if (!t || !(t[0] > 0)) continue;
    const lat = recv - t[0] / 1e6;
    w.lat.push(lat);
    (w.byEvent[event] ??= []).push(lat);
    w.emitLat.push(recv - t[1] / 1e6);
    if (wire !== null) w.wireLat.push(wire - t[1] / 1e6);
  }
}

function windowEnd(rows) {
  const w = win;
  win = null;
  if (rows) joinTrace(w, rows);
  const b = bytes();
  const measured = clients.filter((c) => c.measuring !== false && c.ok).length;
  const connected =
    opts.mode === "fluxprint"
      ? clients.filter((c) => (c.lean ? c.ok && c.ws.readyState === WebSocket.OPEN : c.socket.connected)).length
      : opts.mode === "sockjs"
        ? clients.filter((c) => c.ws.readyState === WebSocket.OPEN).length
        : clients.length;
  out({
    type: "window",
    seconds: (nowMs() - w.start) / 1000,
    clients: connected,
    measured,
    messages: w.msgs,
    updates: w.updates,
    batches: w.batches,
    events: w.events,
    errors: w.errors,
    bytes_read: b.read,
    bytes_written: b.written,
    latency_ms: summary(w.lat),
    emit_latency_ms: summary(w.emitLat),
    wire_latency_ms: summary(w.wireLat),
    latency_by_event_ms: Object.fromEntries(Object.entries(w.byEvent).map(([k, v]) => [k, summary(v)])),
    data_age_ms: summary(w.dataAge),
  });
}

function closeAll() {
  for (const c of clients) {
    c.stop = true;
    if (c.socket) c.socket.close();
    if (c.ws) c.ws.terminate();
    if (c.agent) c.agent.destroy();
  }
}

const rl = readline.createInterface({ input: process.stdin });
rl.on("line", async (line) => {
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch (e) {
    out({ type: "error", message: String(e) });
    return;
  }
  if (cmd.op === "grow") await grow(cmd.n);
  else if (cmd.op === "window_start") windowStart();
  else if (cmd.op === "window_end") windowEnd(cmd.trace);
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
out({ type: "ready", mode: opts.mode });
