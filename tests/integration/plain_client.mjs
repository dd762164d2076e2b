// A plain socket.io-client 4: default options (transports, reconnection, delays,
// timeout) except an auth callback that presents {apikey, last_seq}, where last_seq
// is the highest durable seq seen. It has NO disconnect handler that does anything:
// whether it comes back is socket.io-client's own reconnection. Used by
// tests/integration/test_reconnect.py.
//
//   node plain_client.mjs '{"url", "namespace", "path", "apikey", "lastSeq"
//                           [, "transports"] [, "subscribe"]}'
// "transports" overrides the default ["polling", "websocket"]; with "subscribe" the
// client emits printer:subscribe <subscribe> (no ack) on every connect.
// stdout, JSON lines (recv: epoch ms):
//   {"type": "options", reconnectionDelay, reconnectionDelayMax, randomizationFactor}
//   {"type": "auth", "last_seq"}             each handshake's credentials
//   {"type": "connect", "conn", "id", "transport", "recv"}
//   {"type": "disconnect", "conn", "reason", "active", "recv"}   (only reported)
//   {"type": "connect_error", "message", "active", "recv"}
//   {"type": "reconnect_attempt", "attempt", "recv"} / {"type": "reconnect", ...}
//   {"type": "upgrade", "transport"}
//   {"type": "event", "conn", "event", "data", "recv"}
// stdin: {"op": "close"}
import { createRequire } from "node:module";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "..", "node", "package.json"));
const { io } = require("socket.io-client");

const opts = JSON.parse(process.argv[2]);
const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const DURABLE = new Set([
  "printer:job_started",
  "printer:job_paused",
  "printer:job_resumed",
  "printer:job_complete",
  "printer:job_failed",
  "printer:connection",
]);

let lastSeq = opts.lastSeq ?? null;
let conn = 0;

const socket = io(opts.url + opts.namespace, {
  path: opts.path,
  auth: (cb) => {
    out({ type: "auth", last_seq: lastSeq, recv: Date.now() });
    cb(lastSeq === null ? { apikey: opts.apikey } : { apikey: opts.apikey, last_seq: lastSeq });
  },
  ...(opts.transports ? { transports: opts.transports } : {}),
  // false: no permessage-deflate offer (engine.io-client passes it on to ws)
  ...("perMessageDeflate" in opts ? { perMessageDeflate: opts.perMessageDeflate } : {}),
});
const manager = socket.io;
out({
  type: "options",
  reconnection: manager.reconnection(),
  reconnectionDelay: manager.reconnectionDelay(),
  reconnectionDelayMax: manager.reconnectionDelayMax(),
  randomizationFactor: manager.randomizationFactor(),
  transports: manager.opts.transports ?? null,
});

socket.on("connect", () => {
  conn += 1;
  const engine = manager.engine;
  out({ type: "connect", conn, id: socket.id, transport: engine?.transport?.name, recv: Date.now() });
  if (opts.subscribe) socket.emit("printer:subscribe", opts.subscribe);
});
// the upgrade probe starts when the engine opens and may finish before the
// namespace's connect (a slow auth), so listen from the engine's open
manager.on("open", () => {
  manager.engine.once("upgrade", (t) => out({ type: "upgrade", conn, transport: t.name, recv: Date.now() }));
});
// reported, nothing more: no reconnect by hand
socket.on("disconnect", (reason) => out({ type: "disconnect", conn, reason, active: socket.active, recv: Date.now() }));
socket.on("connect_error", (err) =>
  out({ type: "connect_error", message: err.message, active: socket.active, recv: Date.now() }),
);
manager.on("reconnect_attempt", (attempt) => out({ type: "reconnect_attempt", attempt, recv: Date.now() }));
manager.on("reconnect", (attempt) => out({ type: "reconnect", attempt, recv: Date.now() }));

socket.onAny((event, data) => {
  if (DURABLE.has(event) && data && Number.isInteger(data.seq)) {
    if (lastSeq === null || data.seq > lastSeq) lastSeq = data.seq;
  } else if (event === "printer:resync" && data && Number.isInteger(data.lastSeq)) {
    lastSeq = data.lastSeq;
  }
  out({ type: "event", conn, event, data, recv: Date.now() });
});

const rl = readline.createInterface({ input: process.stdin });
const close = () => {
  socket.close();
  out({ type: "closed", lastSeq });
  setTimeout(() => process.exit(0), 50);
};
rl.on("line", (line) => {
  if (JSON.parse(line).op === "close") close();
});
rl.on("close", close);
