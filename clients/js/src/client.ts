/**
 * The FluxPrint client: one Socket.IO connection to the plugin or the hub, typed
 * events with the server's names, resume by per-printer cursors, and the seed's
 * connection states with the REST fallback (README "From JavaScript").
 */

import { io, type ManagerOptions, type Socket, type SocketOptions } from "socket.io-client";
import { BATCH_EVENT, unpackBatch } from "./batch.js";
import { type CursorMap, Cursors, DURABLE_EVENTS, type StorageLike } from "./cursors.js";
import type {
  PrintersEvent,
  ProgressEvent,
  ServerEvents,
  StatusEvent,
  TemperatureEvent,
} from "./generated/events.js";
import { type ConnectionState, ConnectionMachine, type Transition } from "./machine.js";
import { type FetchLike, RestClient, restBase } from "./rest.js";

export const NAMESPACE = "/ws/printing";
/** The plugin's Socket.IO path (OctoPrint's own host and port). */
export const PLUGIN_PATH = "/plugin/fluxprint/socket.io/";
/** The hub's default Socket.IO path (its own port, default 5001). */
export const HUB_PATH = "/socket.io/";

/** `apikey`: an OctoPrint API key (the plugin); `token`: a hub token or a JWT. */
export interface Credentials {
  apikey?: string;
  token?: string;
}

/** Credentials, or a function asked on every (re)connect and REST call (a fresh JWT). */
export type AuthOption =
  | Credentials
  | null
  | (() => Credentials | null | undefined | Promise<Credentials | null | undefined>);

export interface ConnectOptions {
  /** `http(s)://host:port` of the hub or of OctoPrint */
  url: string;
  /** Socket.IO path: `/socket.io/` (the hub, default) or `/plugin/fluxprint/socket.io/` */
  path?: string;
  /** none: a hub's trusted network, or OctoPrint's browser session */
  auth?: AuthOption;
  /** hub: only these printers (default: every printer the credential may see) */
  printers?: string[];
  /** hub: one `printer:batch` frame per `batch` ms (unpacked here into single events) */
  batch?: number;
  /** resume cursors to start from: one number (the plugin), or `{printerId: seq}` */
  since?: number | CursorMap;
  /** keep the cursors in a Storage (`true`: the browser's sessionStorage) */
  persist?: boolean | StorageLike;
  /** status keyframe period in seconds (`printer:subscribe {keyframe}`) */
  keyframe?: number;
  /** the seed's options: a socket at all (default true) */
  enableWebSocket?: boolean;
  /** REST polling while the socket is down (default true) */
  enablePolling?: boolean;
  /** polling period in ms (the seed's default: 30000) */
  statusInterval?: number;
  /** failed connect attempts in a row before polling (default 3) */
  pollAfter?: number;
  /** the seed's reconnect delays in ms: 1000 growing to 30000, unlimited attempts */
  reconnectionDelay?: number;
  reconnectionDelayMax?: number;
  /** default ["websocket", "polling"]: websocket first, long-polling if it fails */
  transports?: Array<"websocket" | "polling">;
  /** the REST fallback's base path (default: the path without `socket.io/`) */
  restBase?: string;
  /** fetch for the REST fallback (default: globalThis.fetch) */
  fetch?: FetchLike;
  /** more socket.io-client options (e.g. `ca` for TLS with Node) */
  socketOptions?: Partial<ManagerOptions & SocketOptions>;
  /** the clock of the transitions' timestamps (default Date.now) */
  now?: () => number;
}

export interface ClientError {
  message: string;
  /** true: the client is closed and will not retry (refused, revoked) */
  terminal: boolean;
  source: "refused" | "disconnected" | "rest" | "subscribe" | "batch" | "resync" | "handler";
}

/** What a client emits: the server's events (full payloads: this client never asks
 * for deltas), `printer:batch` unpacked into them, plus `state` and `error`. */
export interface FluxPrintEvents
  extends Omit<ServerEvents, "printer:status" | "printer:temperature" | "printer:progress"> {
  "printer:status": StatusEvent;
  "printer:temperature": TemperatureEvent;
  "printer:progress": ProgressEvent;
  /** a connection state change, with its timestamp and reason */
  state: Transition;
  error: ClientError;
}

export type EventName = keyof FluxPrintEvents;
type Handler<K extends EventName> = (payload: FluxPrintEvents[K]) => void;
type AnyHandler = (event: string, payload: unknown) => void;

/** How many sockets this module opened (one per client that uses a socket). */
export const stats = { clients: 0, sockets: 0 };

// refusals worth retrying: the server is busy or still starting
const RETRY_REFUSALS = ["server is starting", "too many connections"];
const UNKNOWN_CURSOR = /^unknown printer in the cursors: (.+)$/;
const SUBSCRIBE_TRIES = 50;
const ACK_TIMEOUT = 5000;
const EVENT_PAGES = 20;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function defaultStorage(): StorageLike | null {
  try {
    const storage = (globalThis as { sessionStorage?: StorageLike }).sessionStorage;
    return storage ?? null;
  } catch {
    return null; // a sandboxed frame
  }
}

export class FluxPrintClient {
  readonly cursors: Cursors;
  readonly machine: ConnectionMachine;
  readonly rest: RestClient;
  socket: Socket | null = null;
  /** durable events dropped because they were already handled (replay overlaps) */
  duplicates = 0;
  /** REST polls that completed */
  polls = 0;
  /** `printer:batch` frames unpacked */
  batches = 0;
  /** Socket.IO connects so far (the first, then each reconnect) */
  connects = 0;

  private readonly opts: ConnectOptions;
  private readonly handlers = new Map<string, Set<(payload: never) => void>>();
  private readonly any = new Set<AnyHandler>();
  private readonly filter: ReadonlySet<string> | null;
  private readonly known = new Set<string>();
  private pollTimer: ReturnType<typeof setInterval> | null = null;
  private pollRunning = false;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private closingReason: string | null = null;
  private generation = 0;

  constructor(options: ConnectOptions) {
    this.opts = { ...options, url: options.url.replace(/\/+$/, "") };
    const path = this.opts.path ?? HUB_PATH;
    const storage =
      this.opts.persist === true ? defaultStorage() : this.opts.persist || null;
    this.cursors = new Cursors(this.opts.since, storage, `fluxprint:cursors:${this.opts.url}${path}`);
    this.filter = this.opts.printers ? new Set(this.opts.printers) : null;
    this.machine = new ConnectionMachine({
      pollAfter: this.opts.pollAfter ?? 3,
      polling: this.opts.enablePolling ?? true,
      now: this.opts.now ?? Date.now,
      onChange: (t) => this.onState(t),
    });
    const fetchImpl = this.opts.fetch ?? (globalThis.fetch as unknown as FetchLike);
    this.rest = new RestClient(
      this.opts.url,
      this.opts.restBase ?? restBase(path),
      () => this.restHeaders(),
      fetchImpl,
    );
    stats.clients += 1;
    if (this.opts.enableWebSocket ?? true) this.open(path);
    else if (this.opts.enablePolling ?? true) this.machine.pollOnly();
    else this.machine.closed("websocket and polling both disabled");
  }

  // ~~ public

  get state(): ConnectionState {
    return this.machine.state;
  }

  /** Every state change so far (bounded), with timestamps. */
  get transitions(): readonly Transition[] {
    return this.machine.history;
  }

  get connected(): boolean {
    return this.socket?.connected ?? false;
  }

  /** The socket's transport now: "websocket", "polling" (long-polling), or null. */
  get transport(): string | null {
    return this.socket?.connected ? (this.socket.io.engine?.transport?.name ?? null) : null;
  }

  /** Printer ids this client has heard of. */
  get printerIds(): string[] {
    return [...this.known].sort();
  }

  on<K extends EventName>(event: K, handler: Handler<K>): () => void {
    let set = this.handlers.get(event);
    if (!set) this.handlers.set(event, (set = new Set()));
    set.add(handler as (payload: never) => void);
    return () => this.off(event, handler);
  }

  off<K extends EventName>(event: K, handler: Handler<K>): void {
    this.handlers.get(event)?.delete(handler as (payload: never) => void);
  }

  /** Every server event, by name, after unpacking and de-duplication (not `state`
   * or `error`, the client's own). */
  onAny(handler: AnyHandler): () => void {
    this.any.add(handler);
    return () => this.any.delete(handler);
  }

  /** The printers' current statuses: over the socket when connected, else REST. */
  async requestStatus(): Promise<Record<string, StatusEvent>> {
    const socket = this.socket;
    if (socket?.connected) {
      const ack = (await socket.timeout(ACK_TIMEOUT).emitWithAck("printer:request_status")) as {
        ok: boolean;
        error?: string;
        status?: StatusEvent;
        statuses?: Record<string, StatusEvent>;
      };
      if (!ack?.ok) throw new Error(`printer:request_status: ${ack?.error ?? "no answer"}`);
      const statuses = ack.statuses ?? (ack.status ? { [ack.status.printer]: ack.status } : {});
      for (const status of Object.values(statuses)) this.receive("printer:status", status, "socket");
      return statuses;
    }
    const out: Record<string, StatusEvent> = {};
    for (const id of await this.pollIds()) {
      out[id] = await this.rest.status(id);
      this.receive("printer:status", out[id], "rest");
    }
    return out;
  }

  /** Ends everything: the socket, the polling, the retries. */
  close(): void {
    this.generation += 1;
    this.machine.closed("closed by the client");
    this.teardown();
  }

  // ~~ the socket

  private open(path: string): void {
    const transports = this.opts.transports ?? ["websocket", "polling"];
    stats.sockets += 1;
    const socket = io(this.opts.url + NAMESPACE, {
      path,
      transports,
      tryAllTransports: transports.length > 1,
      reconnection: true,
      reconnectionDelay: this.opts.reconnectionDelay ?? 1000,
      reconnectionDelayMax: this.opts.reconnectionDelayMax ?? 30000,
      reconnectionAttempts: Infinity,
      auth: (cb: (data: object) => void) => {
        this.authPayload().then(cb, () => cb({}));
      },
      ...this.opts.socketOptions,
    });
    this.socket = socket;
    socket.on("connect", () => {
      this.closingReason = null;
      this.machine.connected();
      void this.afterConnect(socket, this.generation);
    });
    socket.on("disconnect", (reason) => {
      if (reason === "io client disconnect") return; // ours
      if (reason === "io server disconnect") {
        // socket.io-client does not come back from this: revoked, or told to go
        this.fail(this.closingReason ?? reason, "disconnected");
        return;
      }
      this.machine.lost(reason);
    });
    socket.on("connect_error", (err: Error) => this.onConnectError(socket, err));
    socket.onAny((event: string, payload: unknown) => this.receive(event, payload, "socket"));
  }

  private onConnectError(socket: Socket, err: Error): void {
    if (this.machine.state === "closed") return;
    if (socket.active) {
      // the server is unreachable: socket.io-client retries with its backoff
      this.machine.failed(err.message);
      return;
    }
    // refused by the server at the Socket.IO level: socket.io-client stops here
    const message = err.message;
    const unknown = UNKNOWN_CURSOR.exec(message);
    if (unknown) {
      this.cursors.drop(unknown[1]); // a printer no longer served: resume the others
      this.retry(socket, 0);
      return;
    }
    if (RETRY_REFUSALS.some((r) => message.startsWith(r))) {
      this.machine.failed(message);
      const base = this.opts.reconnectionDelay ?? 1000;
      const max = this.opts.reconnectionDelayMax ?? 30000;
      const delay = Math.min(max, base * 2 ** Math.min(this.machine.failures - 1, 16));
      this.retry(socket, delay * (0.5 + Math.random()));
      return;
    }
    this.fail(`refused: ${message}`, "refused");
  }

  private retry(socket: Socket, delay: number): void {
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (this.machine.state !== "closed" && this.socket === socket) socket.connect();
    }, delay);
  }

  private async authPayload(): Promise<Record<string, unknown>> {
    const payload: Record<string, unknown> = { ...(await this.credentials()) };
    const cursors = this.cursors.all();
    const anonymous = this.cursors.anonymous();
    if (Object.keys(cursors).length > 0) payload.last_seq = cursors;
    else if (anonymous !== undefined) payload.last_seq = anonymous;
    return payload;
  }

  private async credentials(): Promise<Credentials> {
    const auth = this.opts.auth;
    const value = typeof auth === "function" ? await auth() : auth;
    const out: Credentials = {};
    if (value?.apikey) out.apikey = value.apikey;
    if (value?.token) out.token = value.token;
    return out;
  }

  private async restHeaders(): Promise<Record<string, string>> {
    const creds = await this.credentials();
    const headers: Record<string, string> = {};
    if (creds.apikey) headers["X-Api-Key"] = creds.apikey;
    if (creds.token) headers.Authorization = `Bearer ${creds.token}`;
    return headers;
  }

  private async afterConnect(socket: Socket, generation: number): Promise<void> {
    this.connects += 1;
    const { printers, keyframe, batch } = this.opts;
    if (printers || keyframe !== undefined) {
      const request: Record<string, unknown> = {};
      if (printers) request.printers = printers;
      if (keyframe !== undefined) request.keyframe = keyframe;
      const error = await this.subscribe(socket, generation, request);
      if (error) this.error({ message: `printer:subscribe: ${error}`, terminal: false, source: "subscribe" });
    }
    if (batch !== undefined) {
      // its own request: a server without batches refuses it, and the rest stays
      const error = await this.subscribe(socket, generation, { batch });
      if (error) {
        this.error({
          message: `printer:subscribe {batch}: ${error} (single events instead)`,
          terminal: false,
          source: "batch",
        });
      }
    }
    if (this.connects > 1) await this.statusAfterReconnect(socket, generation);
  }

  /** Back after a drop: the status the server holds now, at once. (A resuming
   * client's next status is otherwise the printer's next one, up to a keyframe
   * period away at a hub, and meanwhile the caller would show what it had before.) */
  private async statusAfterReconnect(socket: Socket, generation: number): Promise<void> {
    for (let i = 0; i < SUBSCRIBE_TRIES; i++) {
      if (!socket.connected || generation !== this.generation) return;
      try {
        await this.requestStatus();
        return;
      } catch (err) {
        if (!String((err as Error).message).endsWith("not ready")) return; // it comes by itself
      }
      await sleep(100);
    }
  }

  /** printer:subscribe, retried while the server is still replaying ("not ready"). */
  private async subscribe(
    socket: Socket,
    generation: number,
    request: Record<string, unknown>,
  ): Promise<string | null> {
    for (let i = 0; i < SUBSCRIBE_TRIES; i++) {
      if (!socket.connected || generation !== this.generation) return null;
      let ack: { ok?: boolean; error?: string };
      try {
        ack = await socket.timeout(ACK_TIMEOUT).emitWithAck("printer:subscribe", request);
      } catch (err) {
        return socket.connected ? String((err as Error).message ?? err) : null;
      }
      if (ack?.ok) return null;
      if (ack?.error !== "not ready") return ack?.error ?? "no answer";
      await sleep(100);
    }
    return "not ready";
  }

  // ~~ events

  private receive(event: string, payload: unknown, source: "socket" | "rest"): void {
    if (event === BATCH_EVENT) {
      this.batches += 1;
      const { items, skipped } = unpackBatch(payload);
      if (skipped) {
        this.error({ message: `printer:batch: ${skipped} malformed item(s) dropped`, terminal: false, source: "batch" });
      }
      for (const [name, item] of items) this.receive(name, item, source);
      return;
    }
    if (!isObject(payload)) {
      this.emit(event, payload);
      return;
    }
    const printer = typeof payload.printer === "string" ? payload.printer : undefined;
    if (event === "printer:closing") {
      this.closingReason = typeof payload.reason === "string" ? payload.reason : null;
      this.emit(event, payload);
      return;
    }
    if (event === "printer:printers") {
      const list = payload as unknown as PrintersEvent;
      const entries = (list.printers ?? []).filter((p) => !this.filter || this.filter.has(p.id));
      for (const entry of entries) this.known.add(entry.id);
      this.emit(event, { ...list, printers: entries });
      return;
    }
    if (printer !== undefined) {
      if (this.filter && !this.filter.has(printer)) return; // before the narrowing applies
      this.known.add(printer);
      this.cursors.seen(printer, payload.seq);
      if (DURABLE_EVENTS.has(event) && !this.cursors.offer(printer, payload.seq)) {
        this.duplicates += 1;
        return;
      }
      if (event === "printer:resync") {
        if (typeof payload.lastSeq === "number") this.cursors.set(printer, payload.lastSeq);
        this.emit(event, payload);
        if (source === "socket") void this.refetch(printer);
        return;
      }
    }
    this.emit(event, payload);
  }

  /** After a resync: the printer's status again, so the caller rebuilds from it. */
  private async refetch(printer: string): Promise<void> {
    try {
      await this.requestStatus();
    } catch (err) {
      this.error({
        message: `status after a resync of ${printer}: ${(err as Error).message}`,
        terminal: false,
        source: "resync",
      });
    }
  }

  private emit(event: string, payload: unknown, server = true): void {
    for (const handler of this.handlers.get(event) ?? []) this.call(() => (handler as (p: unknown) => void)(payload));
    // onAny: the server's events only (not the client's own state and error)
    if (server) for (const handler of this.any) this.call(() => handler(event, payload));
  }

  private call(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      // one caller's bug must not stop the others, nor the client
      console.error("FluxPrint client: an event handler threw", err);
    }
  }

  private error(error: ClientError): void {
    this.emit("error", error, false);
  }

  private fail(message: string, source: ClientError["source"]): void {
    this.machine.closed(message);
    this.teardown();
    this.error({ message, terminal: true, source });
  }

  private teardown(): void {
    this.stopPolling();
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const socket = this.socket;
    this.socket = null;
    socket?.disconnect();
  }

  // ~~ the states and polling

  private onState(transition: Transition): void {
    if (transition.to === "polling") this.startPolling();
    else if (transition.to === "realtime" || transition.to === "closed") this.stopPolling();
    this.emit("state", transition, false);
  }

  private startPolling(): void {
    if (this.pollTimer !== null) return;
    this.pollTimer = setInterval(() => void this.poll(), this.opts.statusInterval ?? 30000);
    void this.poll();
  }

  private stopPolling(): void {
    if (this.pollTimer !== null) clearInterval(this.pollTimer);
    this.pollTimer = null;
  }

  private async pollIds(): Promise<string[]> {
    if (this.opts.printers) return this.opts.printers;
    const list = await this.rest.printers();
    this.receive("printer:printers", list, "rest");
    return (list.printers ?? []).map((p) => p.id).filter((id) => !this.filter || this.filter.has(id));
  }

  /** One round of the REST fallback: the durable events after each cursor, then the
   * status, with the socket's payload shapes. Stops as soon as the socket is back. */
  private async poll(): Promise<void> {
    if (this.pollRunning) return;
    this.pollRunning = true;
    const polling = () => this.machine.state === "polling";
    try {
      const ids = await this.pollIds();
      for (const id of ids) {
        let since = this.cursors.get(id);
        for (let page = 0; since !== undefined && page < EVENT_PAGES && polling(); page++) {
          const got = await this.rest.events(id, since);
          if (!polling()) return;
          if (got.resync) {
            this.receive("printer:resync", { ...got.resync, printer: id, ts: Date.now() }, "rest");
            break;
          }
          for (const [event, payload] of got.events) this.receive(event, payload, "rest");
          if (!got.more || got.events.length === 0) break;
          since = got.events[got.events.length - 1][1].seq as number;
        }
        if (!polling()) return;
        const status = await this.rest.status(id);
        if (!polling()) return;
        this.receive("printer:status", status, "rest");
      }
      this.polls += 1;
    } catch (err) {
      if (polling()) {
        this.error({ message: `REST fallback: ${(err as Error).message}`, terminal: false, source: "rest" });
      }
    } finally {
      this.pollRunning = false;
    }
  }
}

/** Connects to a FluxPrint plugin or hub (README "From JavaScript"). */
export function connect(options: ConnectOptions): FluxPrintClient {
  return new FluxPrintClient(options);
}
