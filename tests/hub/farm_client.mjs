// A socket.io-client 4 dashboard of the hub: default options except an auth
// callback presenting a cursor per printer ({last_seq: {printerId: seq}}, the
// highest durable seq seen of each), and printer:subscribe {printers} on every
// connect. Used by tests/hub/test_farm.py.
//
//   node farm_client.mjs '{"url", "printers": [...]}'
// stdout, JSON lines (recv: epoch ms):
//   {"type": "connect" | "disconnect" | "connect_error", ...}
//   {"type": "auth", "last_seq"}
//   {"type": "durable", "event", "printer", "seq", "conn"}
//   {"type": "printers", "states": {id: state}, "recv"}
//   {"type": "other", "event", "printer", "seq"}   resync, closing
// stdin: EOF closes it.
import { createRequire } from "node:module";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "..", "node", "package.json"));
const { io } = require("socket.io-client");

const opts = JSON.parse(process.argv[2]);
const out = (obj) => process.stdout.write(JSON.stringify({ ...obj, recv: Date.now() }) + "\n");
const DURABLE = new Set([
  "printer:job_started",
  "printer:job_paused",
  "printer:job_resumed",
  "printer:job_complete",
  "printer:job_failed",
  "printer:connection",
]);
const cursors = {};
let conn = 0;

const socket = io(opts.url + "/ws/printing", {
  auth: (cb) => {
    const last_seq = { ...cursors };
    out({ type: "auth", last_seq });
    cb(Object.keys(last_seq).length ? { last_seq } : {});
  },
});
socket.on("connect", () => {
  conn += 1;
  out({ type: "connect", conn });
  socket.emit("printer:subscribe", { printers: opts.printers }, (ack) =>
    out({ type: "subscribed", ack }),
  );
});
socket.on("disconnect", (reason) => out({ type: "disconnect", conn, reason }));
socket.on("connect_error", (err) => out({ type: "connect_error", message: err.message }));
socket.onAny((event, data) => {
  if (DURABLE.has(event)) {
    const p = data.printer;
    cursors[p] = Math.max(cursors[p] ?? 0, data.seq);
    out({ type: "durable", event, printer: p, seq: data.seq, conn });
  } else if (event === "printer:printers") {
    out({ type: "printers", states: Object.fromEntries(data.printers.map((p) => [p.id, p.state])) });
  } else if (event === "printer:resync" || event === "printer:closing") {
    out({ type: "other", event, printer: data.printer, seq: data.seq, data });
  }
});
readline.createInterface({ input: process.stdin }).on("close", () => {
  socket.close();
  setTimeout(() => process.exit(0), 50);
});
