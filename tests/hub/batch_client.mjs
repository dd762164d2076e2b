// A socket.io-client 4 dashboard of the hub (or the plugin) that asks for ticks:
// printer:subscribe {batch, printers?} on every connect, an auth callback with a
// cursor per printer (the highest durable seq seen of each, batch items included).
// Used by tests/hub/test_batch.py.
//
//   node batch_client.mjs '{"url", "path"?, "auth"?, "batch", "printers"?}'
// stdout, JSON lines (recv: epoch ms):
//   {"type": "connect" | "disconnect" | "subscribed", ...}
//   {"type": "frame", "event", "data", "conn"}   every message, as it came
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
  path: opts.path ?? "/socket.io/",
  transports: ["websocket"],
  auth: (cb) => {
    const last_seq = { ...cursors };
    cb({ ...(opts.auth ?? {}), ...(Object.keys(last_seq).length ? { last_seq } : {}) });
  },
});
socket.on("connect", () => {
  conn += 1;
  out({ type: "connect", conn });
  const sub = { batch: opts.batch };
  if (opts.printers) sub.printers = opts.printers;
  socket.emit("printer:subscribe", sub, (ack) => out({ type: "subscribed", ack }));
});
socket.on("disconnect", (reason) => out({ type: "disconnect", conn, reason }));
socket.on("connect_error", (err) => out({ type: "connect_error", message: err.message }));
const track = (event, data) => {
  if (DURABLE.has(event)) cursors[data.printer] = Math.max(cursors[data.printer] ?? 0, data.seq);
};
socket.onAny((event, data) => {
  if (event === "printer:batch") for (const [e, p] of data.items) track(e, p);
  else track(event, data);
  out({ type: "frame", event, data, conn });
});
readline.createInterface({ input: process.stdin }).on("close", () => {
  socket.close();
  setTimeout(() => process.exit(0), 50);
});
