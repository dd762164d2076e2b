#!/usr/bin/env node
// A browser-side client of relay.mjs, run in Node: it connects the way FluxStudio's
// usePrintWebSocket hook does and reads each payload the way that hook and
// usePrinterStatus do (kentin0-fiz0l/FluxStudio src/hooks/usePrintWebSocket.ts,
// src/hooks/usePrinterStatus.ts, src/types/printing.ts; line references in
// FIELDS.md). Written for the tests, not taken from FluxStudio.
//
// Environment:
//   RELAY_URL       the relay (the hook's VITE_WEBSOCKET_URL; default http://localhost:3001)
//   BROWSER_TOKEN   sent as auth: {token} (the hook sends localStorage auth_token)
//   BROWSER_PATH    optional socket.io path (the hook passes none: /socket.io/)
//   AUTO_RECONNECT  "false" for the hook's autoReconnect: false (default true)
//
// stdout, one JSON line per received event:
//   {"event": name, "t": epoch_ms_received, "payload": raw, "view": {...}}
// where view is what the hooks derive and store from it, plus "problems": the
// fields FluxStudio's types declare and read that the payload lacks or has in
// another type. Socket life-cycle events are reported as "connect", "disconnect"
// (payload: reason) and "connect_error" (payload: message); events the hook does
// not listen to come with "handled": false.
//
// stdin, one JSON command per line:
//   {"cmd":"request_status"}   the hook's requestStatus() (emits only when connected)
//   {"cmd":"connect"}          the hook's connect()
//   {"cmd":"disconnect"}       the hook's disconnect()
//   {"cmd":"subscribe"}        emit printer:subscribe again (the hook does it on connect)
//   {"cmd":"unsubscribe"}      emit printer:unsubscribe (the relay answers it; the hook never sends it)
//   {"cmd":"emit","event":name,"data":x}  any other emit (not something the hook does)
//   {"cmd":"state"}            print {"event":"_state", ...} with everything the hooks hold
//   {"cmd":"close"}            disconnect and exit (also on stdin EOF)
// Each command is answered with {"event":"_cmd","cmd":...,"t":...,...}.

import { createInterface } from "node:readline";
import { io } from "socket.io-client";

const WEBSOCKET_URL = process.env.RELAY_URL || "http://localhost:3001";
const TOKEN = process.env.BROWSER_TOKEN || "fluxstudio-test-token";
const PATH = process.env.BROWSER_PATH || "";
const AUTO_RECONNECT = process.env.AUTO_RECONNECT !== "false";
const MAX_TEMP_READINGS = 100; // usePrinterStatus DEFAULT_OPTIONS.maxTempReadings

// src/types/printing.ts PrinterState
const PRINTER_STATES = [
  "Operational", "Printing", "Paused", "Pausing", "Cancelling",
  "Error", "Offline", "Closed", "Detecting", "Unknown",
];
// src/types/printing.ts PrinterStatus.state.flags
const FLAGS = ["operational", "printing", "cancelling", "paused", "ready", "error", "closedOrError"];

// ~~ what the hooks hold

// usePrintWebSocket
let connectionStatus = { connected: false, connecting: false, error: null, reconnectAttempts: 0 };
let data = { status: null, temperature: null, progress: null, lastUpdate: null };
// usePrinterStatus (the WebSocket part of it; job, queue and files come from REST)
const dashboard = { status: null, temperatureReadings: [], isServiceAvailable: false, job: null };
const callbacks = []; // onJobComplete / onJobFailed / onConnectionChange calls, in order

let socket = null;

function print(obj) {
  process.stdout.write(JSON.stringify(obj, (k, v) => (v === undefined ? null : v)) + "\n");
}
function emitLine(event, payload, view, extra = {}) {
  print({ event, t: Date.now(), payload: payload === undefined ? null : payload, view, ...extra });
}

// ~~ field checks against FluxStudio's types

function kind(v) {
  if (v === undefined) return "missing";
  if (v === null) return "null";
  return Array.isArray(v) ? "array" : typeof v;
}
function expect(problems, path, value, type) {
  const k = kind(value);
  if (k !== type) problems.push(`${path}: ${k}, FluxStudio expects ${type}`);
}
function checkHeater(problems, path, h, optional = false) {
  if (h === undefined && optional) return;
  if (kind(h) !== "object") return expect(problems, path, h, "object");
  for (const key of ["actual", "target", "offset"]) expect(problems, `${path}.${key}`, h[key], "number");
}
function checkStatus(status) {
  const problems = [];
  if (kind(status) !== "object") return [`payload: ${kind(status)}, FluxStudio expects object`];
  if (status.delta) problems.push("delta payload: FluxStudio replaces its status with it whole");
  const state = status.state;
  if (kind(state) !== "object") expect(problems, "state", state, "object");
  else {
    expect(problems, "state.text", state.text, "string");
    if (typeof state.text === "string" && !PRINTER_STATES.includes(state.text))
      problems.push(`state.text: "${state.text}" is not a FluxStudio PrinterState`);
    if (kind(state.flags) !== "object") expect(problems, "state.flags", state.flags, "object");
    else for (const f of FLAGS) expect(problems, `state.flags.${f}`, state.flags[f], "boolean");
  }
  const temp = status.temperature;
  if (kind(temp) !== "object") expect(problems, "temperature", temp, "object");
  else {
    checkHeater(problems, "temperature.bed", temp.bed);
    checkHeater(problems, "temperature.tool0", temp.tool0);
    checkHeater(problems, "temperature.tool1", temp.tool1, true);
  }
  return problems;
}
function checkTemperature(t) {
  const problems = [];
  if (t?.delta) problems.push("delta payload: FluxStudio reads it as a full reading");
  checkHeater(problems, "bed", t?.bed);
  checkHeater(problems, "tool0", t?.tool0);
  checkHeater(problems, "tool1", t?.tool1, true);
  return problems;
}
function checkJobEvent(e) {
  const problems = [];
  expect(problems, "filename", e?.filename, "string");
  expect(problems, "timestamp", e?.timestamp, "number");
  if (e?.printTime !== undefined) expect(problems, "printTime", e.printTime, "number");
  if (e?.reason !== undefined) expect(problems, "reason", e.reason, "string");
  return problems;
}
function checkConnectionEvent(e) {
  const problems = [];
  expect(problems, "connected", e?.connected, "boolean");
  expect(problems, "timestamp", e?.timestamp, "number");
  if (e?.error != null) expect(problems, "error", e.error, "string");
  return problems;
}

// ~~ what the hooks derive

function typedStatus(s) {
  // the part of the payload PrinterStatus declares
  return {
    state: {
      text: s?.state?.text,
      flags: Object.fromEntries(FLAGS.map((f) => [f, s?.state?.flags?.[f]])),
    },
    temperature: { bed: s?.temperature?.bed, tool0: s?.temperature?.tool0, tool1: s?.temperature?.tool1 },
  };
}

function onConnectionChange(event) {
  // usePrinterStatus: setIsServiceAvailable(event.connected)
  callbacks.push({ callback: "onConnectionChange", event });
  dashboard.isServiceAvailable = event.connected;
}

function dashboardView() {
  return {
    isServiceAvailable: dashboard.isServiceAvailable,
    serviceShownAvailable: Boolean(dashboard.isServiceAvailable),
    temperatureReadings: dashboard.temperatureReadings.length,
    // usePrinterStatus polls the REST job faster while this is true
    printing: dashboard.status?.state?.flags?.printing ?? null,
  };
}

function attach(s) {
  s.on("connect", () => {
    connectionStatus = { connected: true, connecting: false, error: null, reconnectAttempts: 0 };
    s.emit("printer:subscribe");
    emitLine("connect", null, { connectionStatus, sent: ["printer:subscribe"], transport: s.io.engine?.transport?.name });
  });

  s.on("disconnect", (reason) => {
    connectionStatus = { ...connectionStatus, connected: false, connecting: false, error: `Disconnected: ${reason}` };
    const event = { connected: false, reason, timestamp: Date.now() };
    onConnectionChange(event);
    emitLine("disconnect", reason, { connectionStatus, onConnectionChange: event, dashboard: dashboardView() }, { willReconnect: s.active });
  });

  s.on("connect_error", (error) => {
    connectionStatus = {
      ...connectionStatus,
      connected: false,
      connecting: false,
      error: error.message,
      reconnectAttempts: connectionStatus.reconnectAttempts + 1,
    };
    emitLine("connect_error", error.message, { connectionStatus }, { willReconnect: s.active });
  });

  s.on("printer:status", (status) => {
    data = { ...data, status, lastUpdate: Date.now() };
    if (connectionStatus.connected) {
      dashboard.status = status;
      dashboard.isServiceAvailable = true;
    }
    emitLine("printer:status", status, {
      status: typedStatus(status),
      stateText: status?.state?.text,
      dashboard: dashboardView(),
      problems: checkStatus(status),
    });
  });

  s.on("printer:temperature", (temperature) => {
    const reading = { time: Date.now(), bed: temperature?.bed, tool0: temperature?.tool0, tool1: temperature?.tool1 };
    data = { ...data, temperature: reading, lastUpdate: Date.now() };
    if (connectionStatus.connected) {
      dashboard.temperatureReadings.push(reading);
      if (dashboard.temperatureReadings.length > MAX_TEMP_READINGS) dashboard.temperatureReadings.shift();
    }
    const heaters = Object.keys(temperature ?? {}).filter((k) => !["seq", "ts", "printer", "trace", "delta", "removed"].includes(k));
    emitLine("printer:temperature", temperature, {
      reading,
      ignoredHeaters: heaters.filter((h) => !["bed", "tool0", "tool1"].includes(h)),
      dashboard: dashboardView(),
      problems: checkTemperature(temperature),
    });
  });

  s.on("printer:progress", (progressData) => {
    data = { ...data, progress: progressData?.completion, lastUpdate: Date.now() };
    const problems = [];
    if (progressData?.delta && !("completion" in progressData))
      problems.push("delta payload without completion: FluxStudio stores progress undefined");
    emitLine("printer:progress", progressData, {
      progress: data.progress,
      // usePrinterStatus copies it into job.progress.completion only when a REST job is held
      jobCompletion: data.progress !== null && dashboard.job ? data.progress || 0 : null,
      problems,
    });
  });

  for (const [name, callback] of [["printer:job_complete", "onJobComplete"], ["printer:job_failed", "onJobFailed"]]) {
    s.on(name, (event) => {
      callbacks.push({ callback, event });
      data = { ...data, progress: null, lastUpdate: Date.now() };
      emitLine(name, event, {
        jobEvent: { filename: event?.filename, printTime: event?.printTime, reason: event?.reason, timestamp: event?.timestamp },
        callback,
        // usePrinterStatus then refetches over REST: /printing/queue and /printing/job
        refetch: ["queue", "job"],
        progress: null,
        problems: checkJobEvent(event),
      });
    });
  }

  s.on("printer:connection", (event) => {
    onConnectionChange(event);
    if (event?.error) connectionStatus = { ...connectionStatus, error: event.error || null };
    emitLine("printer:connection", event, {
      connectionEvent: {
        connected: event?.connected,
        error: event?.error,
        reason: event?.reason,
        reconnectAttempts: event?.reconnectAttempts,
        timestamp: event?.timestamp,
      },
      connectionStatus,
      dashboard: dashboardView(),
      problems: checkConnectionEvent(event),
    });
  });

  s.on("printer:subscribed", (payload) => {
    emitLine("printer:subscribed", payload, {});
  });

  s.onAny((event, ...args) => {
    const handled = ["printer:status", "printer:temperature", "printer:progress", "printer:job_complete",
      "printer:job_failed", "printer:connection", "printer:subscribed"].includes(event);
    if (!handled) emitLine(event, args.length <= 1 ? args[0] : args, null, { handled: false });
  });
}

// the hook's connect(): a new socket unless the current one is connected
function connect() {
  if (socket?.connected) return false;
  connectionStatus = { ...connectionStatus, connecting: true, error: null };
  const options = {
    auth: { token: TOKEN },
    reconnection: AUTO_RECONNECT,
    reconnectionDelay: 1000,
    reconnectionDelayMax: 30000,
    reconnectionAttempts: Infinity,
    transports: ["websocket", "polling"],
  };
  if (PATH) options.path = PATH;
  socket = io(`${WEBSOCKET_URL}/printing`, options);
  attach(socket);
  return true;
}

// the hook's disconnect()
function disconnect() {
  if (socket) {
    socket.disconnect();
    socket = null;
  }
  connectionStatus = { connected: false, connecting: false, error: null, reconnectAttempts: 0 };
}

function state() {
  return {
    connectionStatus,
    data,
    dashboard: { ...dashboard, temperatureReadings: dashboard.temperatureReadings.length },
    callbacks: callbacks.map((c) => c.callback),
  };
}

function close() {
  disconnect();
  setTimeout(() => process.exit(0), 100);
}

const rl = createInterface({ input: process.stdin });
rl.on("line", (line) => {
  if (!line.trim()) return;
  let msg;
  try {
    msg = JSON.parse(line);
  } catch {
    return print({ event: "_cmd", t: Date.now(), error: "not JSON", line });
  }
  const reply = { event: "_cmd", cmd: msg.cmd, t: Date.now() };
  switch (msg.cmd) {
    case "request_status":
      reply.sent = Boolean(socket?.connected);
      if (reply.sent) socket.emit("printer:request_status");
      break;
    case "subscribe":
    case "unsubscribe":
      reply.sent = Boolean(socket);
      if (socket) socket.emit(`printer:${msg.cmd}`);
      break;
    case "emit":
      reply.sent = Boolean(socket);
      if (socket) msg.data === undefined ? socket.emit(msg.event) : socket.emit(msg.event, msg.data);
      break;
    case "connect":
      reply.created = connect();
      break;
    case "disconnect":
      disconnect();
      break;
    case "state":
      return print({ event: "_state", t: Date.now(), ...state() });
    case "close":
      print(reply);
      return close();
    default:
      reply.error = "unknown command";
  }
  print(reply);
});
rl.on("close", close);

connect(); // the hook connects on mount when enabled
