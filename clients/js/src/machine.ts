/**
 * The connection states of the seed's dashboard (green "Real-Time", yellow
 * "Reconnecting", gray "Polling Mode"), plus where a client starts and where it
 * ends. Pure: the clock is injected, and the machine only decides; the client acts.
 *
 *   connecting ──connected──► realtime ──lost──► reconnecting ──N failed──► polling
 *        │                       ▲                    │                       │
 *        └──failed──► reconnecting┴──────connected─────┴───────connected───────┘
 *   any ──closed──► closed (terminal: refused, revoked, or closed by the caller)
 *
 * `pollAfter` failed attempts in a row (counted from the last connect) switch to
 * polling when polling is enabled; the socket keeps trying meanwhile, and a connect
 * goes back to realtime from anywhere but closed.
 */

export type ConnectionState = "connecting" | "realtime" | "reconnecting" | "polling" | "closed";

export interface Transition {
  from: ConnectionState;
  to: ConnectionState;
  /** epoch milliseconds (the injected clock) */
  at: number;
  reason: string;
}

export interface MachineOptions {
  /** failed attempts in a row before polling (0: poll as soon as the link is lost) */
  pollAfter: number;
  /** whether polling is allowed at all (the seed's enablePolling) */
  polling: boolean;
  now: () => number;
  onChange?: (transition: Transition) => void;
  /** transitions kept in `history` (oldest dropped first) */
  keep?: number;
}

export class ConnectionMachine {
  state: ConnectionState = "connecting";
  /** failed attempts since the last connect */
  failures = 0;
  readonly history: Transition[] = [];

  constructor(private readonly opts: MachineOptions) {}

  connected(): void {
    this.failures = 0;
    this.go("realtime", "connected");
  }

  /** The link dropped (a transport close, a ping timeout): the socket reconnects. */
  lost(reason: string): void {
    if (this.state === "realtime" || this.state === "connecting") {
      this.go("reconnecting", reason);
      this.maybePoll(reason);
    }
  }

  /** One attempt failed (the server is unreachable, or asked us to come back later). */
  failed(reason: string): void {
    if (this.state === "closed") return;
    this.failures += 1;
    if (this.state === "connecting" || this.state === "realtime") this.go("reconnecting", reason);
    this.maybePoll(reason);
  }

  /** No socket at all (the seed's enableWebSocket: false): poll from the start. */
  pollOnly(): void {
    this.go("polling", "websocket disabled");
  }

  /** Terminal: a refusal, a server-side disconnect (revoked), or the caller closed. */
  closed(reason: string): void {
    this.go("closed", reason);
  }

  private maybePoll(reason: string): void {
    if (
      this.state === "reconnecting" &&
      this.opts.polling &&
      this.failures >= this.opts.pollAfter
    ) {
      this.go("polling", `${this.failures} failed attempt(s): ${reason}`);
    }
  }

  private go(to: ConnectionState, reason: string): void {
    const from = this.state;
    if (from === to || from === "closed") return;
    this.state = to;
    const transition = { from, to, at: this.opts.now(), reason };
    this.history.push(transition);
    const keep = this.opts.keep ?? 100;
    if (this.history.length > keep) this.history.splice(0, this.history.length - keep);
    this.opts.onChange?.(transition);
  }
}
