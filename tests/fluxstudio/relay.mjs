#!/usr/bin/env node
// A FluxStudio-style relay: one socket.io-client connection up to FluxPrint, one
// Socket.IO server namespace "/printing" down to browsers.
//
// It behaves toward FluxPrint the way FluxStudio's backend does
// (kentin0-fiz0l/FluxStudio sockets/printing-socket.js, see README.md and FIELDS.md
// in this folder for the line references): same io() URL and option values, an
// un-acknowledged printer:request_status on every connect, the same six events
// forwarded under their own names, the same idea of what a browser may ask. It is
// written for the tests, not taken from FluxStudio.
//
// Environment:
//   FLUXPRINT_WS_URL  FluxPrint base URL (default http://localhost:5001, as FluxStudio)
//   FLUXPRINT_PATH    optional socket.io path, e.g. /plugin/fluxprint/socket.io/
//   FLUXPRINT_APIKEY  optional API key, sent as auth: {apikey}
//   RELAY_PORT        port to listen on, 0 = any free port (default 0)
//   RELAY_HOST        address to listen on (default 127.0.0.1)
//   RELAY_PATH        socket.io path for browsers (default /socket.io, what the hook's
//                     io() call without a path option uses)
//   RELAY_TOKEN       optional: browsers must send auth: {token: RELAY_TOKEN}
//                     (FluxStudio verifies a JWT there; any non-empty token passes
//                     when this is unset)
//   RELAY_IDLE_MS     how long after the last browser left to drop FluxPrint
//                     (default 60000, FluxStudio's value)
//   ENABLE_FLUXPRINT  "false" keeps the relay away from FluxPrint (default "true";
//                     FluxStudio's default is off, which would make this relay useless)
//
// stdout: JSON lines. First {"listening": port}; then one line per thing the relay
// does toward FluxPrint: {"relay": "upstream_connecting" | "upstream_connect" |
// "upstream_disconnect" | "upstream_connect_error" | "upstream_dropped" |
// "request_status" | "browser_connect" | "browser_disconnect", "t": ms, ...}.
// With RELAY_LOG_FORWARD=1 also {"relay": "forward", "event", "seq", "t"} per
// forwarded message. Diagnostics go to stderr.

import { createServer } from "node:http";
import { Server } from "socket.io";
import { io } from "socket.io-client";

const env = process.env;
const FLUXPRINT_WS_URL = env.FLUXPRINT_WS_URL || "http://localhost:5001";
const FLUXPRINT_PATH = env.FLUXPRINT_PATH || "";
const FLUXPRINT_APIKEY = env.FLUXPRINT_APIKEY || "";
const RELAY_PORT = Number(env.RELAY_PORT || 0);
const RELAY_HOST = env.RELAY_HOST || "127.0.0.1";
const RELAY_PATH = env.RELAY_PATH || "/socket.io";
const RELAY_TOKEN = env.RELAY_TOKEN || "";
const IDLE_MS = env.RELAY_IDLE_MS ? Number(env.RELAY_IDLE_MS) : 60000;
const ENABLED = (env.ENABLE_FLUXPRINT ?? "true") === "true";
const LOG_FORWARD = env.RELAY_LOG_FORWARD === "1";

// The events FluxStudio forwards, under the same names, payload untouched.
const FORWARDED = [
  "printer:status",
  "printer:temperature",
  "printer:progress",
  "printer:job_complete",
  "printer:job_failed",
  "printer:connection",
];

function out(obj) {
  process.stdout.write(JSON.stringify({ ...obj, t: obj.t ?? Date.now() }) + "\n");
}

// FluxStudio's io() options toward FluxPrint, values unchanged; path and auth are the
// optional additions FluxPrint the plugin needs (a standalone hub needs neither).
function upstreamOptions() {
  const options = {
    reconnection: true,
    reconnectionDelay: 2000,
    reconnectionDelayMax: 10000,
    reconnectionAttempts: Infinity,
    transports: ["websocket", "polling"],
  };
  if (FLUXPRINT_PATH) options.path = FLUXPRINT_PATH;
  if (FLUXPRINT_APIKEY) options.auth = { apikey: FLUXPRINT_APIKEY };
  return options;
}

// Per socket and event sliding window, like FluxStudio's checkSocketRateLimit: a
// refused attempt still counts, and the browser gets an "error" event.
const windows = new Map();
function withinRate(socket, event, max, windowMs) {
  const key = `${socket.id}:${event}`;
  const now = Date.now();
  const kept = (windows.get(key) || []).filter((t) => t > now - windowMs);
  kept.push(now);
  windows.set(key, kept);
  if (kept.length > max) {
    socket.emit("error", {
      code: "RATE_LIMIT",
      message: `Too many ${event} events. Please slow down.`,
    });
    return false;
  }
  return true;
}
function forgetRates(socketId) {
  for (const key of windows.keys()) if (key.startsWith(socketId + ":")) windows.delete(key);
}

const httpServer = createServer();
const ioServer = new Server(httpServer, {
  path: RELAY_PATH,
  cors: { origin: true, credentials: true },
  transports: ["websocket", "polling"],
  allowEIO3: true,
});
const printing = ioServer.of("/printing");

const activeClients = new Set();
let fluxprintClient = null;
let reconnectAttempts = 0;
let upstreamCount = 0; // sockets ever created toward FluxPrint (FluxStudio may make several)

function connectToFluxPrint() {
  if (!ENABLED) return;
  if (fluxprintClient && fluxprintClient.connected) return;

  const url = `${FLUXPRINT_WS_URL}/ws/printing`;
  const options = upstreamOptions();
  const id = ++upstreamCount;
  out({
    relay: "upstream_connecting",
    id,
    url,
    options: { ...options, reconnectionAttempts: String(options.reconnectionAttempts), auth: options.auth ? { apikey: "***" } : undefined },
    // like FluxStudio, a previous socket that is still reconnecting is not closed
    replaced: fluxprintClient ? { connected: fluxprintClient.connected, active: fluxprintClient.active } : null,
  });
  const client = io(url, options);
  fluxprintClient = client;

  client.on("connect", () => {
    reconnectAttempts = 0;
    out({ relay: "upstream_connect", id, sid: client.id, transport: client.io.engine?.transport?.name });
    printing.emit("printer:connection", { connected: true, timestamp: Date.now() });
    client.emit("printer:request_status"); // no ack callback, as FluxStudio
    out({ relay: "request_status", id, from: "connect" });
  });

  client.on("disconnect", (reason) => {
    // FluxStudio does nothing more here: after "io server disconnect" socket.io-client
    // does not reconnect by itself, and neither does this relay.
    out({ relay: "upstream_disconnect", id, reason, willReconnect: client.active });
    printing.emit("printer:connection", { connected: false, reason, timestamp: Date.now() });
  });

  client.on("connect_error", (error) => {
    reconnectAttempts++;
    out({
      relay: "upstream_connect_error",
      id,
      message: error.message,
      attempt: reconnectAttempts,
      willReconnect: client.active,
    });
    if (activeClients.size > 0) {
      printing.emit("printer:connection", {
        connected: false,
        error: error.message,
        reconnectAttempts,
        timestamp: Date.now(),
      });
    }
  });

  for (const event of FORWARDED) {
    client.on(event, (data) => {
      if (LOG_FORWARD) out({ relay: "forward", id, event, seq: data?.seq });
      printing.emit(event, data);
    });
  }
  if (LOG_FORWARD) {
    client.onAny((event, data) => {
      if (!FORWARDED.includes(event)) out({ relay: "dropped", id, event, seq: data?.seq });
    });
  }
}

function disconnectFromFluxPrint() {
  if (fluxprintClient) {
    out({ relay: "upstream_dropped", id: upstreamCount });
    fluxprintClient.disconnect();
    fluxprintClient = null;
  }
}

// Browser side: FluxStudio checks a JWT in auth.token.
printing.use((socket, next) => {
  const token = socket.handshake.auth?.token;
  if (!token) return next(new Error("Authentication required"));
  if (RELAY_TOKEN && token !== RELAY_TOKEN) return next(new Error("Invalid or expired token"));
  next();
});

printing.on("connection", (socket) => {
  activeClients.add(socket.id);
  out({ relay: "browser_connect", sid: socket.id, clients: activeClients.size });

  if (activeClients.size === 1 && ENABLED && (!fluxprintClient || !fluxprintClient.connected)) {
    connectToFluxPrint();
  }

  socket.emit("printer:connection", {
    connected: fluxprintClient ? fluxprintClient.connected : false,
    timestamp: Date.now(),
  });

  socket.on("printer:request_status", () => {
    if (!withinRate(socket, "printer:request_status", 20, 10000)) return;
    if (fluxprintClient && fluxprintClient.connected) {
      fluxprintClient.emit("printer:request_status"); // no ack: FluxPrint's answer is lost
      out({ relay: "request_status", id: upstreamCount, from: socket.id });
    } else {
      socket.emit("printer:connection", {
        connected: false,
        error: "FluxPrint service not available",
        timestamp: Date.now(),
      });
    }
  });

  // Answered by the relay itself; nothing goes to FluxPrint.
  socket.on("printer:subscribe", () => {
    if (!withinRate(socket, "printer:subscribe", 20, 10000)) return;
    socket.emit("printer:subscribed", { success: true });
  });
  socket.on("printer:unsubscribe", () => {
    if (!withinRate(socket, "printer:unsubscribe", 20, 10000)) return;
    socket.emit("printer:unsubscribed", { success: true });
  });

  socket.on("disconnect", (reason) => {
    forgetRates(socket.id);
    activeClients.delete(socket.id);
    out({ relay: "browser_disconnect", sid: socket.id, reason, clients: activeClients.size });
    if (activeClients.size === 0) {
      setTimeout(() => {
        if (activeClients.size === 0 && fluxprintClient) disconnectFromFluxPrint();
      }, IDLE_MS).unref();
    }
  });
});

function shutdown(signal) {
  process.stderr.write(`relay: ${signal}, closing\n`);
  disconnectFromFluxPrint();
  ioServer.close();
  setTimeout(() => process.exit(0), 200).unref();
}
process.on("SIGINT", () => shutdown("SIGINT"));
process.on("SIGTERM", () => shutdown("SIGTERM"));
process.stdin.on("end", () => {
  if (env.RELAY_EXIT_ON_STDIN_EOF === "1") shutdown("stdin closed");
});
if (env.RELAY_EXIT_ON_STDIN_EOF === "1") process.stdin.resume();

httpServer.listen(RELAY_PORT, RELAY_HOST, () => {
  process.stdout.write(JSON.stringify({ listening: httpServer.address().port }) + "\n");
  // FluxStudio connects at start-up when enabled, before any browser.
  if (ENABLED) connectToFluxPrint();
});
