// A FluxStudio-like socket.io-client 4 that resumes: it tracks the seq of the last
// durable event it processed and presents it as auth.last_seq on every (re)connect,
// reconnects by itself (also after a server-side disconnect), and reports everything
// as JSON lines on stdout. Used by tests/integration/test_durable.py.
//
//   node resume_bridge.mjs '{"url", "namespace", "path", "apikey", "lastSeq",
//                            "transports", "reconnectionDelay"}'
// stdout: {"type": "connect"|"connect_error"|"disconnect"|"event", ...}
//         events carry "dup": true when a durable seq <= last_seq arrived again
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
let closing = false;
let conn = 0;

const socket = io(opts.url + opts.namespace, {
  path: opts.path,
  auth: (cb) => cb(lastSeq === null ? { apikey: opts.apikey } : { apikey: opts.apikey, last_seq: lastSeq }),
  transports: opts.transports ?? ["websocket"],
  reconnection: true,
  reconnectionDelay: opts.reconnectionDelay ?? 100,
  reconnectionDelayMax: 1000,
  randomizationFactor: 0.2,
  forceNew: true,
  timeout: 5000,
});

socket.on("connect", () => {
  conn += 1;
  out({ type: "connect", conn, lastSeq, recv: Date.now() });
});
socket.on("connect_error", (err) => out({ type: "connect_error", message: err.message }));
socket.on("disconnect", (reason) => {
  out({ type: "disconnect", conn, reason, recv: Date.now() });
  // socket.io-client does not reconnect after a server-side disconnect: we do
  if (reason === "io server disconnect" && !closing) {
    setTimeout(() => socket.connect(), opts.reconnectionDelay ?? 100);
  }
});
socket.onAny((event, data) => {
  let dup = false;
  if (DURABLE.has(event) && data && Number.isInteger(data.seq)) {
    if (lastSeq !== null && data.seq <= lastSeq) dup = true;
    else lastSeq = data.seq;
  } else if (event === "printer:resync" && data && Number.isInteger(data.lastSeq)) {
    lastSeq = data.lastSeq;
  }
  out({ type: "event", conn, event, data, dup, recv: Date.now() });
});

const rl = readline.createInterface({ input: process.stdin });
rl.on("line", (line) => {
  const cmd = JSON.parse(line);
  if (cmd.op === "close") {
    closing = true;
    socket.close();
    out({ type: "closed", lastSeq });
    setTimeout(() => process.exit(0), 50);
  }
});
rl.on("close", () => {
  closing = true;
  socket.close();
  process.exit(0);
});
