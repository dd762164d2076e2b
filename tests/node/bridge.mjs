// A socket.io-client 4 connection driven over stdin/stdout with JSON lines, so Python
// tests can use Node the way FluxStudio does.
//
//   node bridge.mjs '{"url": "...", "namespace": "/ws/printing", "path": "...",
//                     "auth": {...}, "transports": ["websocket"], "extraHeaders": {...},
//                     "ca": "/path/ca.pem"}'
//
// "ca": a PEM CA bundle a TLS server (https://, wss://) is verified against.
//
// stdin:  {"op": "emit", "id": 1, "event": "printer:subscribe", "data": {...}}
//         {"op": "auth", "auth": {...}}   what the next (re)connect presents
//         {"op": "connect"}               connect again (after a refusal)
//         {"op": "close"}
// stdout: {"type": "connect"|"connect_error"|"disconnect"|"event"|"ack"|"upgrade", ...}
import { io } from "socket.io-client";
import readline from "node:readline";
import fs from "node:fs";

const opts = JSON.parse(process.argv[2]);
const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

const socket = io(opts.url + opts.namespace, {
  path: opts.path,
  auth: opts.auth ?? {},
  transports: opts.transports ?? ["websocket", "polling"],
  upgrade: opts.upgrade ?? true,
  extraHeaders: opts.extraHeaders ?? {},
  reconnection: opts.reconnection ?? false,
  reconnectionDelay: opts.reconnectionDelay ?? 1000,
  forceNew: true,
  timeout: 10000,
  ...(opts.ca ? { ca: fs.readFileSync(opts.ca) } : {}),
});

// the permessage-deflate parameters ws agreed with the server (null: none), from
// ws's negotiated extension (its public `extensions` gives only the names)
const deflate = (transport) => transport?.ws?._extensions?.["permessage-deflate"]?.params ?? null;

socket.on("connect", () => {
  const engine = socket.io.engine;
  const transport = engine.transport;
  out({ type: "connect", id: socket.id, transport: transport.name, deflate: deflate(transport), recv: Date.now() });
  engine.once("upgrade", (t) => out({ type: "upgrade", transport: t.name, deflate: deflate(t) }));
});
socket.on("connect_error", (err) =>
  out({ type: "connect_error", message: err.message, data: err.data ?? null }),
);
socket.on("disconnect", (reason, description) =>
  out({ type: "disconnect", reason, recv: Date.now() }),
);
socket.onAny((event, ...args) =>
  out({ type: "event", event, data: args.length ? args[0] : null, recv: Date.now() }),
);

const rl = readline.createInterface({ input: process.stdin });
rl.on("line", (line) => {
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch (e) {
    out({ type: "bridge_error", message: String(e) });
    return;
  }
  if (cmd.op === "emit") {
    const args = "data" in cmd ? [cmd.data] : [];
    socket.timeout(cmd.timeout ?? 10000).emit(cmd.event, ...args, (err, resp) =>
      out({ type: "ack", id: cmd.id, error: err ? String(err) : null, data: resp ?? null }),
    );
  } else if (cmd.op === "auth") {
    socket.auth = cmd.auth;
    out({ type: "auth_set" });
  } else if (cmd.op === "connect") {
    socket.connect();
  } else if (cmd.op === "close") {
    socket.close();
    out({ type: "closed" });
    setTimeout(() => process.exit(0), 50);
  }
});
rl.on("close", () => {
  socket.close();
  process.exit(0);
});
