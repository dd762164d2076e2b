// What FluxStudio's backend relay (sockets/printing-socket.js) does toward FluxPrint,
// written from its behaviour (not its code): the same io() call and options, no path
// and no credentials unless FLUXPRINT_PATH / FLUXPRINT_APIKEY are set,
// printer:request_status on connect without an ack, and the same six events
// forwarded. Instead of a /printing namespace, what it would broadcast to browsers
// goes to stdout as JSON lines ({"type": "browser", event, data, recv}); the test
// reads them the way src/hooks/usePrintWebSocket.ts reads its socket.
//
//   ENABLE_FLUXPRINT=true FLUXPRINT_WS_URL=http://127.0.0.1:5001 node relay.mjs
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "..", "node", "package.json"));
const { io } = require("socket.io-client");

const FLUXPRINT_WS_URL = process.env.FLUXPRINT_WS_URL || "http://localhost:5001";
const enabled = process.env.ENABLE_FLUXPRINT === "true";
const out = (obj) => process.stdout.write(JSON.stringify({ ...obj, recv: Date.now() }) + "\n");
const browsers = (event, data) => out({ type: "browser", event, data });

if (!enabled) {
  out({ type: "disabled" });
  process.exit(0);
}
const options = {
  reconnection: true,
  reconnectionDelay: 2000,
  reconnectionDelayMax: 10000,
  reconnectionAttempts: Infinity,
  transports: ["websocket", "polling"],
};
if (process.env.FLUXPRINT_PATH) options.path = process.env.FLUXPRINT_PATH;
if (process.env.FLUXPRINT_APIKEY) options.auth = { apikey: process.env.FLUXPRINT_APIKEY };

const client = io(`${FLUXPRINT_WS_URL}/ws/printing`, options);
client.on("connect", () => {
  out({ type: "connect" });
  browsers("printer:connection", { connected: true, timestamp: Date.now() });
  client.emit("printer:request_status");
});
client.on("disconnect", (reason) => {
  out({ type: "disconnect", reason });
  browsers("printer:connection", { connected: false, reason, timestamp: Date.now() });
});
client.on("connect_error", (err) => out({ type: "connect_error", message: err.message }));
for (const event of [
  "printer:status",
  "printer:temperature",
  "printer:progress",
  "printer:job_complete",
  "printer:job_failed",
  "printer:connection",
]) {
  client.on(event, (data) => browsers(event, data));
}
// a browser asking the relay for a status, as the hook's requestStatus() does
process.stdin.on("data", (chunk) => {
  for (const line of chunk.toString().split("\n")) {
    if (line.trim() === "request_status") client.emit("printer:request_status");
  }
});
