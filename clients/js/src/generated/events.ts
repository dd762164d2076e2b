/* Generated from octoprint_fluxprint/schemas/events.schema.json by
 * json-schema-to-typescript (clients/js/scripts/gen-types.mjs). Do not edit:
 * run `npm run gen` in clients/js after the schema changes. */

export interface FluxPrintSchema {
  server?: ServerEvents;
  client?: ClientEvents;
}
/**
 * Server -> client: the payload of each event, by name
 *
 * This interface was referenced by `FluxPrintSchema`'s JSON-Schema
 * via the `definition` "ServerEvents".
 */
export interface ServerEvents {
  "printer:batch": BatchEvent;
  "printer:closing": ClosingEvent;
  "printer:connection": ConnectionEvent;
  "printer:job_complete": JobCompleteEvent;
  "printer:job_failed": JobFailedEvent;
  "printer:job_paused": JobEvent;
  "printer:job_resumed": JobEvent;
  "printer:job_started": JobEvent;
  "printer:printers": PrintersEvent;
  "printer:progress": ProgressEvent | ProgressDelta;
  "printer:resync": ResyncEvent;
  "printer:status": StatusEvent | StatusDelta;
  "printer:temperature": TemperatureEvent | TemperatureDelta;
}
/**
 * Opt-in (``printer:subscribe {batch: ms}``): everything of the client's
 * printers that carries a seq, at most once per tick. Per printer, items are in
 * seq order; a tick holds each printer's newest status, temperature and progress
 * (older ones of the same tick are left out) and every durable event, never
 * coalesced. Each item is ``[event, payload]``, the payload as that event has it
 * on its own.
 *
 * This interface was referenced by `FluxPrintSchema`'s JSON-Schema
 * via the `definition` "BatchEvent".
 */
export interface BatchEvent {
  /**
   * [event, payload] pairs, in the order the events happened
   */
  items: [unknown, unknown, ...unknown[]][];
  /**
   * Epoch milliseconds at which the tick went out
   */
  ts: number;
}
/**
 * Sent right before the server ends a client's connection, with the reason.
 * For a shutdown or an over-budget client only the transport closes, so standard
 * clients reconnect and resume by themselves; a revoked, deactivated or flooding
 * client is disconnected at the Socket.IO level and is not expected back.
 *
 * This interface was referenced by `FluxPrintSchema`'s JSON-Schema
 * via the `definition` "ClosingEvent".
 */
export interface ClosingEvent {
  /**
   * This instance's printer id
   */
  printer: string;
  reason: string;
  /**
   * Strictly increasing per printer, across restarts
   */
  seq: number;
  /**
   * Benchmark instrumentation only (FLUXPRINT_TRACE=1): cb_ns, emit_ns
   */
  trace?: {
    [k: string]: number | undefined;
  } | null;
  /**
   * Epoch milliseconds at which the data was observed
   */
  ts: number;
}
/**
 * This interface was referenced by `FluxPrintSchema`'s JSON-Schema
 * via the `definition` "ConnectionEvent".
 */
export interface ConnectionEvent {
  baudrate: number | null;
  /**
   * state == "connected"
   */
  connected: boolean;
  error: string | null;
  port: string | null;
  /**
   * This instance's printer id
   */
  printer: string;
  /**
   * Strictly increasing per printer, across restarts
   */
  seq: number;
  state: "connecting" | "connected" | "disconnected" | "error";
  /**
   * Epoch milliseconds, the same as ts
   */
  timestamp: number;
  /**
   * Benchmark instrumentation only (FLUXPRINT_TRACE=1): cb_ns, emit_ns
   */
  trace?: {
    [k: string]: number | undefined;
  } | null;
  /**
   * Epoch milliseconds at which the data was observed
   */
  ts: number;
}
/**
 * This interface was referenced by `FluxPrintSchema`'s JSON-Schema
 * via the `definition` "JobCompleteEvent".
 */
export interface JobCompleteEvent {
  file: JobFile;
  /**
   * The file's name (file.name)
   */
  filename: string | null;
  printTime: number | null;
  /**
   * This instance's printer id
   */
  printer: string;
  /**
   * Strictly increasing per printer, across restarts
   */
  seq: number;
  /**
   * Epoch milliseconds, the same as ts
   */
  timestamp: number;
  /**
   * Benchmark instrumentation only (FLUXPRINT_TRACE=1): cb_ns, emit_ns
   */
  trace?: {
    [k: string]: number | undefined;
  } | null;
  /**
   * Epoch milliseconds at which the data was observed
   */
  ts: number;
  user: string | null;
}
/**
 * This interface was referenced by `FluxPrintSchema`'s JSON-Schema
 * via the `definition` "JobFile".
 */
export interface JobFile {
  name: string | null;
  origin: string | null;
  path: string | null;
  size: number | null;
}
/**
 * This interface was referenced by `FluxPrintSchema`'s JSON-Schema
 * via the `definition` "JobFailedEvent".
 */
export interface JobFailedEvent {
  error: string | null;
  file: JobFile;
  /**
   * The file's name (file.name)
   */
  filename: string | null;
  printTime: number | null;
  /**
   * This instance's printer id
   */
  printer: string;
  progress: number | null;
  reason: "error" | "cancelled" | "interrupted";
  /**
   * Strictly increasing per printer, across restarts
   */
  seq: number;
  /**
   * Epoch milliseconds, the same as ts
   */
  timestamp: number;
  /**
   * Benchmark instrumentation only (FLUXPRINT_TRACE=1): cb_ns, emit_ns
   */
  trace?: {
    [k: string]: number | undefined;
  } | null;
  /**
   * Epoch milliseconds at which the data was observed
   */
  ts: number;
  user: string | null;
}
/**
 * This interface was referenced by `FluxPrintSchema`'s JSON-Schema
 * via the `definition` "JobEvent".
 */
export interface JobEvent {
  file: JobFile;
  /**
   * The file's name (file.name)
   */
  filename: string | null;
  /**
   * This instance's printer id
   */
  printer: string;
  /**
   * Strictly increasing per printer, across restarts
   */
  seq: number;
  /**
   * Epoch milliseconds, the same as ts
   */
  timestamp: number;
  /**
   * Benchmark instrumentation only (FLUXPRINT_TRACE=1): cb_ns, emit_ns
   */
  trace?: {
    [k: string]: number | undefined;
  } | null;
  /**
   * Epoch milliseconds at which the data was observed
   */
  ts: number;
  user: string | null;
}
/**
 * The hub only: the printers a client may see, on connect and on change.
 *
 * This interface was referenced by `FluxPrintSchema`'s JSON-Schema
 * via the `definition` "PrintersEvent".
 */
export interface PrintersEvent {
  printers: PrinterEntry[];
  /**
   * Epoch milliseconds
   */
  ts: number;
}
/**
 * This interface was referenced by `FluxPrintSchema`'s JSON-Schema
 * via the `definition` "PrinterEntry".
 */
export interface PrinterEntry {
  /**
   * OctoPrint's serial link, if known
   */
  connection: string | null;
  /**
   * The printer id, as in every payload's printer
   */
  id: string;
  /**
   * The highest seq the hub relayed
   */
  lastSeq: number;
  /**
   * The hub's link
   */
  state: "online" | "stale" | "offline";
  /**
   * The hub's mirror holds the plugin's log
   */
  synced: boolean;
}
/**
 * This interface was referenced by `FluxPrintSchema`'s JSON-Schema
 * via the `definition` "ProgressEvent".
 */
export interface ProgressEvent {
  completion: number | null;
  file: ProgressFile;
  filepos: number | null;
  printTime: number | null;
  printTimeLeft: number | null;
  printTimeLeftOrigin: string | null;
  /**
   * This instance's printer id
   */
  printer: string;
  /**
   * Strictly increasing per printer, across restarts
   */
  seq: number;
  state: string;
  /**
   * Benchmark instrumentation only (FLUXPRINT_TRACE=1): cb_ns, emit_ns
   */
  trace?: {
    [k: string]: number | undefined;
  } | null;
  /**
   * Epoch milliseconds at which the data was observed
   */
  ts: number;
}
/**
 * This interface was referenced by `FluxPrintSchema`'s JSON-Schema
 * via the `definition` "ProgressFile".
 */
export interface ProgressFile {
  name: string | null;
  path: string | null;
}
/**
 * This interface was referenced by `FluxPrintSchema`'s JSON-Schema
 * via the `definition` "ProgressDelta".
 */
export interface ProgressDelta {
  completion?: number | null;
  delta: true;
  file?: ProgressFile | null;
  filepos?: number | null;
  printTime?: number | null;
  printTimeLeft?: number | null;
  printTimeLeftOrigin?: string | null;
  /**
   * This instance's printer id
   */
  printer: string;
  /**
   * Top-level fields that no longer exist
   */
  removed?: string[];
  /**
   * Strictly increasing per printer, across restarts
   */
  seq: number;
  state?: string | null;
  /**
   * Benchmark instrumentation only (FLUXPRINT_TRACE=1): cb_ns, emit_ns
   */
  trace?: {
    [k: string]: number | undefined;
  } | null;
  /**
   * Epoch milliseconds at which the data was observed
   */
  ts: number;
}
/**
 * The ``last_seq`` a client presented is older than what the log retains (or
 * unknown here): rebuild state from the status that follows.
 *
 * This interface was referenced by `FluxPrintSchema`'s JSON-Schema
 * via the `definition` "ResyncEvent".
 */
export interface ResyncEvent {
  lastSeq: number;
  oldestSeq: number | null;
  /**
   * This instance's printer id
   */
  printer: string;
  requested: number;
  /**
   * Strictly increasing per printer, across restarts
   */
  seq: number;
  /**
   * Benchmark instrumentation only (FLUXPRINT_TRACE=1): cb_ns, emit_ns
   */
  trace?: {
    [k: string]: number | undefined;
  } | null;
  /**
   * Epoch milliseconds at which the data was observed
   */
  ts: number;
}
/**
 * This interface was referenced by `FluxPrintSchema`'s JSON-Schema
 * via the `definition` "StatusEvent".
 */
export interface StatusEvent {
  connection: Connection;
  job: Job;
  /**
   * This instance's printer id
   */
  printer: string;
  progress: Progress;
  /**
   * Strictly increasing per printer, across restarts
   */
  seq: number;
  state: State;
  temperature: {
    [k: string]: HeaterReading | undefined;
  };
  /**
   * Benchmark instrumentation only (FLUXPRINT_TRACE=1): cb_ns, emit_ns
   */
  trace?: {
    [k: string]: number | undefined;
  } | null;
  /**
   * Epoch milliseconds at which the data was observed
   */
  ts: number;
}
/**
 * This interface was referenced by `FluxPrintSchema`'s JSON-Schema
 * via the `definition` "Connection".
 */
export interface Connection {
  baudrate: number | null;
  error: string | null;
  port: string | null;
  state: "connecting" | "connected" | "disconnected" | "error";
}
/**
 * This interface was referenced by `FluxPrintSchema`'s JSON-Schema
 * via the `definition` "Job".
 */
export interface Job {
  estimatedPrintTime: number | null;
  file: JobFile;
  user: string | null;
}
/**
 * This interface was referenced by `FluxPrintSchema`'s JSON-Schema
 * via the `definition` "Progress".
 */
export interface Progress {
  completion: number | null;
  file: ProgressFile;
  filepos: number | null;
  printTime: number | null;
  printTimeLeft: number | null;
  printTimeLeftOrigin: string | null;
  state: string;
}
/**
 * This interface was referenced by `FluxPrintSchema`'s JSON-Schema
 * via the `definition` "State".
 */
export interface State {
  error: string | null;
  flags: StateFlags;
  text: string;
}
/**
 * This interface was referenced by `FluxPrintSchema`'s JSON-Schema
 * via the `definition` "StateFlags".
 */
export interface StateFlags {
  cancelling: boolean;
  closedOrError: boolean;
  error: boolean;
  finishing: boolean;
  operational: boolean;
  paused: boolean;
  pausing: boolean;
  printing: boolean;
  ready: boolean;
  resuming: boolean;
  sdReady: boolean;
}
/**
 * This interface was referenced by `FluxPrintSchema`'s JSON-Schema
 * via the `definition` "HeaterReading".
 */
export interface HeaterReading {
  actual: number | null;
  offset: number;
  target: number | null;
}
/**
 * This interface was referenced by `FluxPrintSchema`'s JSON-Schema
 * via the `definition` "StatusDelta".
 */
export interface StatusDelta {
  connection?: Connection | null;
  delta: true;
  job?: Job | null;
  /**
   * This instance's printer id
   */
  printer: string;
  progress?: Progress | null;
  /**
   * Top-level fields that no longer exist
   */
  removed?: string[];
  /**
   * Strictly increasing per printer, across restarts
   */
  seq: number;
  state?: State | null;
  temperature?: {
    [k: string]: HeaterReading | undefined;
  } | null;
  /**
   * Benchmark instrumentation only (FLUXPRINT_TRACE=1): cb_ns, emit_ns
   */
  trace?: {
    [k: string]: number | undefined;
  } | null;
  /**
   * Epoch milliseconds at which the data was observed
   */
  ts: number;
}
/**
 * One key per heater present (tool0…toolN, bed, chamber, custom heaters).
 *
 * This interface was referenced by `FluxPrintSchema`'s JSON-Schema
 * via the `definition` "TemperatureEvent".
 */
export interface TemperatureEvent {
  /**
   * This instance's printer id
   */
  printer: string;
  /**
   * Strictly increasing per printer, across restarts
   */
  seq: number;
  /**
   * Benchmark instrumentation only (FLUXPRINT_TRACE=1): cb_ns, emit_ns
   */
  trace?: {
    [k: string]: number | undefined;
  } | null;
  /**
   * Epoch milliseconds at which the data was observed
   */
  ts: number;
  [tool: `tool${number}`]: HeaterReading | undefined;
  bed?: HeaterReading;
  chamber?: HeaterReading;
}
/**
 * This interface was referenced by `FluxPrintSchema`'s JSON-Schema
 * via the `definition` "TemperatureDelta".
 */
export interface TemperatureDelta {
  delta: true;
  /**
   * This instance's printer id
   */
  printer: string;
  /**
   * Top-level fields that no longer exist
   */
  removed?: string[];
  /**
   * Strictly increasing per printer, across restarts
   */
  seq: number;
  /**
   * Benchmark instrumentation only (FLUXPRINT_TRACE=1): cb_ns, emit_ns
   */
  trace?: {
    [k: string]: number | undefined;
  } | null;
  /**
   * Epoch milliseconds at which the data was observed
   */
  ts: number;
  [tool: `tool${number}`]: HeaterReading | undefined;
  bed?: HeaterReading;
  chamber?: HeaterReading;
}
/**
 * Client -> server: the payload of each event, by name
 *
 * This interface was referenced by `FluxPrintSchema`'s JSON-Schema
 * via the `definition` "ClientEvents".
 */
export interface ClientEvents {
  "printer:subscribe": SubscribeRequest;
  "printer:unsubscribe": UnsubscribeRequest;
}
/**
 * This interface was referenced by `FluxPrintSchema`'s JSON-Schema
 * via the `definition` "SubscribeRequest".
 */
export interface SubscribeRequest {
  /**
   * Milliseconds (50 to 10000): everything with a seq comes as printer:batch, at most once per tick; 0: single events again
   */
  batch?: number | null;
  channels?: ("status" | "temperature" | "progress" | "jobs" | "connection")[] | null;
  /**
   * true: printer:status, printer:temperature and printer:progress come as deltas (only the top-level fields that changed, nothing when nothing did), each channel starting from a full message; false: full objects again (the default)
   */
  delta?: boolean | null;
  /**
   * Minutes of temperature history to return in the ack
   */
  history?: number | null;
  intervals?: Intervals | null;
  /**
   * Seconds: printer:status at least this often, even when nothing changed (for relays whose late joiners cannot ask); 0: only on change. Not below the status interval; delta subscribers get nothing extra
   */
  keyframe?: number | null;
  /**
   * Hub only: the printers to receive (default: all the client may see)
   */
  printers?: string[] | null;
  /**
   * Replay durable events after this seq; at a hub, one cursor per printer ({printerId: seq})
   */
  since?:
    | number
    | {
        [k: string]: number | undefined;
      }
    | null;
}
/**
 * This interface was referenced by `FluxPrintSchema`'s JSON-Schema
 * via the `definition` "Intervals".
 */
export interface Intervals {
  progress?: number | null;
  status?: number | null;
  temperature?: number | null;
}
/**
 * This interface was referenced by `FluxPrintSchema`'s JSON-Schema
 * via the `definition` "UnsubscribeRequest".
 */
export interface UnsubscribeRequest {
  channels?: ("status" | "temperature" | "progress" | "jobs" | "connection")[] | null;
}
