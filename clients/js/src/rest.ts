/**
 * The REST fallback, the same routes and payloads at the plugin and the hub
 * (README "REST fallback"): beside the Socket.IO path, so its base is the path
 * without its trailing `socket.io/` — `/api/...` at a hub on the default path,
 * `/plugin/fluxprint/api/...` at the plugin.
 *
 *   GET <base>/api/printers                         printer:printers' shape
 *   GET <base>/api/printers/<id>/status             printer:status's shape
 *   GET <base>/api/printers/<id>/events?since=&limit= durable events after a cursor
 */

import type { PrintersEvent, ResyncEvent, StatusEvent } from "./generated/events.js";

export interface EventsPage {
  printer: string;
  /** `[event, payload]` in seq order, as in a batch */
  events: Array<[string, Record<string, unknown>]>;
  /** more events follow: ask again from the last seq */
  more: boolean;
  /** the cursor is older than the log keeps (the body of printer:resync), else null */
  resync: Omit<ResyncEvent, "seq" | "ts" | "printer"> | null;
}

export class RestError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = "RestError";
  }
}

export type FetchLike = (input: string, init?: { headers?: Record<string, string>; signal?: AbortSignal }) => Promise<{
  ok: boolean;
  status: number;
  json(): Promise<unknown>;
  text(): Promise<string>;
}>;

/** The REST base for a Socket.IO path: `/socket.io/` -> "", `/plugin/fluxprint/socket.io/` -> `/plugin/fluxprint`. */
export function restBase(path: string): string {
  const trimmed = path.replace(/\/+$/, "");
  const cut = trimmed.endsWith("/socket.io") ? trimmed.slice(0, -"/socket.io".length) : trimmed.replace(/\/[^/]*$/, "");
  return cut;
}

export class RestClient {
  constructor(
    private readonly origin: string,
    private readonly base: string,
    private readonly headers: () => Promise<Record<string, string>>,
    private readonly fetchImpl: FetchLike,
    private readonly timeoutMs = 10_000,
  ) {}

  printers(): Promise<PrintersEvent> {
    return this.get("/api/printers") as Promise<PrintersEvent>;
  }

  status(printer: string): Promise<StatusEvent> {
    return this.get(`/api/printers/${encodeURIComponent(printer)}/status`) as Promise<StatusEvent>;
  }

  events(printer: string, since: number, limit = 500): Promise<EventsPage> {
    return this.get(
      `/api/printers/${encodeURIComponent(printer)}/events?since=${since}&limit=${limit}`,
    ) as Promise<EventsPage>;
  }

  private async get(route: string): Promise<unknown> {
    const controller = typeof AbortController === "function" ? new AbortController() : undefined;
    const timer = controller ? setTimeout(() => controller.abort(), this.timeoutMs) : undefined;
    try {
      const response = await this.fetchImpl(this.origin + this.base + route, {
        headers: { Accept: "application/json", ...(await this.headers()) },
        signal: controller?.signal,
      });
      if (!response.ok) {
        let detail = "";
        try {
          const body = (await response.json()) as { error?: unknown };
          detail = typeof body?.error === "string" ? `: ${body.error}` : "";
        } catch {
          // not JSON
        }
        throw new RestError(`GET ${this.base}${route}: HTTP ${response.status}${detail}`, response.status);
      }
      return await response.json();
    } finally {
      if (timer !== undefined) clearTimeout(timer);
    }
  }
}
