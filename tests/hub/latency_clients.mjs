// N socket.io-client 4 clients in one Node process, each printing one JSON line per
// printer:temperature it receives: the latency from the payload's ts (when the plugin
// got the sample from OctoPrint) to the message event, and to the last bytes the
// client's TCP socket had read by then ("wire": leaves out this process's inflate
// queue). For tests/hub/test_latency.py.
//
//   node latency_clients.mjs '{"url": "http://127.0.0.1:5001", "path": "/socket.io/",
//                              "n": 10, "auth": {...}, "transports": ["websocket"],
//                              "perMessageDeflate": true}'
//
// stdout: {"type": "ready", "n": 10, "deflate": "..."} once every client is connected,
//         {"type": "t", "c": 3, "seq": 812, "ts": ..., "lat": 2.1, "wire": 1.9} per
//         temperature, {"type": "error", ...}; stdin EOF (or "close") ends it.
import { createRequire } from "node:module";
import readline from "node:readline";
import { performance } from "node:perf_hooks";

const require = createRequire(new URL("../node/package.json", import.meta.url));
const { io } = require("socket.io-client");

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

const sockets = [];
let connected = 0;
let deflate = null;

function open(index) {
  const socket = io(opts.url + "/ws/printing", {
    path: opts.path ?? "/socket.io/",
    auth: opts.auth ?? {},
    transports: opts.transports ?? ["websocket"],
    transportOptions: { websocket: { perMessageDeflate: opts.perMessageDeflate ?? true } },
    reconnection: false,
    forceNew: true,
    timeout: 20000,
  });
  let tcp = null;
  let wire = null;
  const track = () => {
    const sock = socket.io.engine?.transport?.ws?._socket;
    if (sock && sock !== tcp) {
      tcp = sock;
      sock.on("data", () => {
        wire = nowMs();
      });
    }
  };
  socket.on("connect", () => {
    track();
    socket.io.engine.on("upgrade", track);
    const ext = socket.io.engine?.transport?.ws?._extensions?.["permessage-deflate"];
    if (index === 0) deflate = ext ? JSON.stringify(ext.params) : null;
    connected += 1;
    if (connected === opts.n) out({ type: "ready", n: connected, deflate });
  });
  socket.on("connect_error", (err) => out({ type: "error", c: index, message: err.message }));
  socket.on("disconnect", (reason) => out({ type: "disconnect", c: index, reason }));
  socket.on("printer:temperature", (payload) => {
    const recv = nowMs();
    track();
    out({
      type: "t",
      c: index,
      seq: payload?.seq,
      ts: payload?.ts,
      lat: recv - payload?.ts,
      wire: wire === null ? null : wire - payload?.ts,
      // FLUXPRINT_TRACE=1 only: the plugin's hold (callback to emit) and emit to here
      hold: payload?.trace ? (payload.trace.emit_ns - payload.trace.cb_ns) / 1e6 : undefined,
      emit: payload?.trace ? recv - payload.trace.emit_ns / 1e6 : undefined,
    });
  });
  sockets.push(socket);
}

for (let i = 0; i < opts.n; i += 1) open(i);

const close = () => {
  for (const s of sockets) s.close();
  setTimeout(() => process.exit(0), 100);
};
const rl = readline.createInterface({ input: process.stdin });
rl.on("line", (line) => {
  if (line.trim() === "close") close();
});
rl.on("close", close);
