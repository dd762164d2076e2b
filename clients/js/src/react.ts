/**
 * `usePrinterStatus`: the seed's hook (enableWebSocket, enablePolling,
 * statusInterval) on the FluxPrint client, for React 18 and newer.
 *
 * One client, so one socket, for the component's life: the effect depends only on
 * what names the connection (url, path, printers, the seed's switches...), never on
 * callbacks or on an inline `auth` object. Those are read through a ref on every
 * event and every (re)connect, so passing new functions on each render costs
 * nothing. (FluxStudio's own hook puts its callbacks in `connect`'s dependencies:
 * mounted with inline callbacks it opens a new socket on every render.)
 */

import { useEffect, useReducer, useRef } from "react";
import {
  type AuthOption,
  type ClientError,
  connect,
  type FluxPrintClient,
  HUB_PATH,
} from "./client.js";
import type { CursorMap, StorageLike } from "./cursors.js";
import type {
  ConnectionEvent,
  JobCompleteEvent,
  JobEvent,
  JobFailedEvent,
  ProgressEvent,
  StatusEvent,
  TemperatureEvent,
} from "./generated/events.js";
import type { ConnectionState, Transition } from "./machine.js";

export type JobEventName =
  | "printer:job_started"
  | "printer:job_paused"
  | "printer:job_resumed"
  | "printer:job_complete"
  | "printer:job_failed";

/** The last job event, with its name. */
export type JobNotice = (JobEvent | JobCompleteEvent | JobFailedEvent) & { event: JobEventName };

export interface ConnectionChange {
  state: ConnectionState;
  /** the seed's flag: true in realtime */
  connected: boolean;
  reason: string;
  timestamp: number;
}

export interface UsePrinterStatusOptions {
  url: string;
  path?: string;
  auth?: AuthOption;
  /** the printer whose data the top-level fields show (default: the first) */
  printer?: string;
  /** hub: only these printers */
  printers?: string[];
  /** the seed's options */
  enableWebSocket?: boolean;
  enablePolling?: boolean;
  statusInterval?: number;
  pollAfter?: number;
  reconnectionDelay?: number;
  reconnectionDelayMax?: number;
  transports?: Array<"websocket" | "polling">;
  batch?: number;
  since?: number | CursorMap;
  persist?: boolean | StorageLike;
  restBase?: string;
  onJobComplete?: (event: JobCompleteEvent) => void;
  onJobFailed?: (event: JobFailedEvent) => void;
  onConnectionChange?: (change: ConnectionChange) => void;
  onError?: (error: ClientError) => void;
}

export interface PrinterView {
  status: StatusEvent | null;
  temperature: TemperatureEvent | null;
  progress: ProgressEvent | null;
  lastJobEvent: JobNotice | null;
  connection: ConnectionEvent | null;
}

export interface UsePrinterStatusResult extends PrinterView {
  connectionState: ConnectionState;
  /** every printer's view, by id */
  printers: Record<string, PrinterView>;
  error: ClientError | null;
  /** epoch ms of the last event */
  lastUpdate: number | null;
}

const EMPTY: PrinterView = {
  status: null,
  temperature: null,
  progress: null,
  lastJobEvent: null,
  connection: null,
};

const JOB_EVENTS: ReadonlySet<string> = new Set([
  "printer:job_started",
  "printer:job_paused",
  "printer:job_resumed",
  "printer:job_complete",
  "printer:job_failed",
]);

interface Store {
  connectionState: ConnectionState;
  printers: Record<string, PrinterView>;
  error: ClientError | null;
  lastUpdate: number | null;
}

type Action =
  | { kind: "event"; event: string; payload: Record<string, unknown> }
  | { kind: "state"; state: ConnectionState }
  | { kind: "error"; error: ClientError }
  | { kind: "reset"; state: ConnectionState };

function newer(held: { ts: number } | null, ts: number): boolean {
  return held === null || ts >= held.ts;
}

/** Folds one event into the store: pure, so the hook's state is what the events say. */
export function reduce(store: Store, action: Action): Store {
  switch (action.kind) {
    case "reset":
      return { connectionState: action.state, printers: {}, error: null, lastUpdate: null };
    case "state":
      return { ...store, connectionState: action.state };
    case "error":
      return { ...store, error: action.error };
    case "event":
      break;
  }
  const { event, payload } = action;
  const id = payload.printer;
  if (typeof id !== "string" || id === "hub") return store;
  const view = store.printers[id] ?? EMPTY;
  const ts = typeof payload.ts === "number" ? payload.ts : Date.now();
  let next: PrinterView | null = null;
  if (event === "printer:status") {
    const status = payload as unknown as StatusEvent;
    // the status carries the newest temperature and progress too (what polling gets)
    const meta = { seq: status.seq, ts: status.ts, printer: id };
    next = {
      ...view,
      status,
      temperature: newer(view.temperature, ts)
        ? ({ ...status.temperature, ...meta } as TemperatureEvent)
        : view.temperature,
      progress:
        status.progress && newer(view.progress, ts)
          ? ({ ...status.progress, ...meta } as ProgressEvent)
          : view.progress,
    };
  } else if (event === "printer:temperature") {
    if (newer(view.temperature, ts)) next = { ...view, temperature: payload as unknown as TemperatureEvent };
  } else if (event === "printer:progress") {
    if (newer(view.progress, ts)) next = { ...view, progress: payload as unknown as ProgressEvent };
  } else if (JOB_EVENTS.has(event)) {
    next = { ...view, lastJobEvent: { ...(payload as unknown as JobEvent), event: event as JobEventName } };
  } else if (event === "printer:connection") {
    next = { ...view, connection: payload as unknown as ConnectionEvent };
  }
  if (next === null) return store;
  return { ...store, printers: { ...store.printers, [id]: next }, lastUpdate: Date.now() };
}

export function usePrinterStatus(options: UsePrinterStatusOptions): UsePrinterStatusResult {
  // the latest options, for callbacks and auth: read when used, never a dependency
  const latest = useRef(options);
  latest.current = options;
  const [store, dispatch] = useReducer(reduce, undefined, () => ({
    connectionState: "connecting" as ConnectionState,
    printers: {},
    error: null,
    lastUpdate: null,
  }));

  const {
    url,
    path = HUB_PATH,
    printers,
    enableWebSocket = true,
    enablePolling = true,
    statusInterval = 30000,
    pollAfter,
    reconnectionDelay,
    reconnectionDelayMax,
    batch,
    restBase,
  } = options;
  const printersKey = printers ? printers.join("\n") : null;
  const transportsKey = options.transports ? options.transports.join(",") : null;

  useEffect(() => {
    const opts = latest.current;
    const client: FluxPrintClient = connect({
      url,
      path,
      printers: printersKey === null ? undefined : printersKey.split("\n"),
      enableWebSocket,
      enablePolling,
      statusInterval,
      pollAfter,
      reconnectionDelay,
      reconnectionDelayMax,
      batch,
      restBase,
      transports: transportsKey === null ? undefined : (transportsKey.split(",") as Array<"websocket" | "polling">),
      since: opts.since,
      persist: opts.persist,
      // a function: the credentials of the latest render, on every (re)connect
      auth: () => {
        const auth = latest.current.auth;
        return typeof auth === "function" ? auth() : auth;
      },
    });
    dispatch({ kind: "reset", state: client.state });
    const off = [
      client.onAny((event, payload) => {
        if (payload && typeof payload === "object") {
          dispatch({ kind: "event", event, payload: payload as Record<string, unknown> });
        }
      }),
      client.on("printer:job_complete", (e) => latest.current.onJobComplete?.(e)),
      client.on("printer:job_failed", (e) => latest.current.onJobFailed?.(e)),
      client.on("state", (t: Transition) => {
        dispatch({ kind: "state", state: t.to });
        latest.current.onConnectionChange?.({
          state: t.to,
          connected: t.to === "realtime",
          reason: t.reason,
          timestamp: t.at,
        });
      }),
      client.on("error", (error) => {
        dispatch({ kind: "error", error });
        latest.current.onError?.(error);
      }),
    ];
    return () => {
      for (const unsubscribe of off) unsubscribe();
      client.close();
    };
  }, [
    url,
    path,
    printersKey,
    transportsKey,
    enableWebSocket,
    enablePolling,
    statusInterval,
    pollAfter,
    reconnectionDelay,
    reconnectionDelayMax,
    batch,
    restBase,
  ]);

  const ids = Object.keys(store.printers).sort();
  const chosen = options.printer ?? printers?.find((p) => store.printers[p]) ?? ids[0];
  const view = (chosen !== undefined && store.printers[chosen]) || EMPTY;
  return {
    ...view,
    connectionState: store.connectionState,
    printers: store.printers,
    error: store.error,
    lastUpdate: store.lastUpdate,
  };
}

export type { ConnectionState, Transition } from "./machine.js";
