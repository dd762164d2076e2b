/**
 * Resume cursors, one per printer: the highest durable seq seen (the README's
 * resume pattern), kept across reconnects and presented as `auth.last_seq` on every
 * connect, optionally kept in a `Storage` (a browser's `sessionStorage`) so a page
 * reload resumes too. Pure apart from the storage given.
 *
 * A printer from which no durable event came yet gets a *floor*: the seq of the
 * first message received from it, minus one. Every client receives a printer's
 * messages in seq order (README: "All messages ... reach each client in seq
 * order"), so nothing durable for this client lies at or below it, and a resume
 * from it misses nothing that happened while the link was down.
 */

export const DURABLE_EVENTS: ReadonlySet<string> = new Set([
  "printer:job_started",
  "printer:job_paused",
  "printer:job_resumed",
  "printer:job_complete",
  "printer:job_failed",
  "printer:connection",
]);

export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export type CursorMap = Record<string, number>;

function validSeq(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

export class Cursors {
  private durable = new Map<string, number>();
  private floors = new Map<string, number>();

  constructor(
    initial?: number | CursorMap | null,
    private readonly storage?: StorageLike | null,
    private readonly key = "fluxprint:cursors",
  ) {
    if (storage) {
      try {
        const saved: unknown = JSON.parse(storage.getItem(key) ?? "null");
        if (saved && typeof saved === "object") {
          for (const [printer, seq] of Object.entries(saved)) {
            if (validSeq(seq)) this.durable.set(printer, seq);
          }
        }
      } catch {
        storage.removeItem(key); // unreadable: start over rather than fail
      }
    }
    if (typeof initial === "number") {
      if (validSeq(initial)) this.durable.set("", initial); // one printer, id unknown yet
    } else if (initial) {
      for (const [printer, seq] of Object.entries(initial)) {
        if (validSeq(seq)) this.durable.set(printer, Math.max(seq, this.durable.get(printer) ?? 0));
      }
    }
  }

  /** The cursor to resume `printer` from (undefined: nothing seen yet). */
  get(printer: string): number | undefined {
    return this.durable.get(printer) ?? this.floors.get(printer) ?? this.durable.get("");
  }

  /** Every printer's resume cursor: what goes into `auth.last_seq`. */
  all(): CursorMap {
    const out: CursorMap = {};
    for (const [printer, seq] of this.floors) out[printer] = seq;
    for (const [printer, seq] of this.durable) if (printer !== "") out[printer] = seq;
    return out;
  }

  /** The one-printer cursor given as a number before the printer's id was known. */
  anonymous(): number | undefined {
    return this.durable.get("");
  }

  /** Any message from `printer` (seq order per client): sets its floor the first time. */
  seen(printer: string, seq: unknown): void {
    if (!validSeq(seq) || this.durable.has(printer) || this.floors.has(printer)) return;
    const anonymous = this.durable.get("");
    if (anonymous !== undefined) {
      // a number given for the one printer: now we know whose it is
      this.durable.delete("");
      this.durable.set(printer, anonymous);
      this.save();
      return;
    }
    this.floors.set(printer, Math.max(0, seq - 1));
    this.save();
  }

  /** A durable event: true when it is new (above the cursor), which moves the cursor;
   * false for one already handled (a replay overlapping what arrived). */
  offer(printer: string, seq: unknown): boolean {
    if (!validSeq(seq)) return true; // not ours to judge: deliver it
    const known = this.durable.get(printer);
    if (known !== undefined && seq <= known) return false;
    this.durable.set(printer, seq);
    this.floors.delete(printer);
    this.save();
    return true;
  }

  /** `printer:resync`: the cursor jumps to what the server holds now. */
  set(printer: string, seq: number): void {
    if (!validSeq(seq)) return;
    this.durable.set(printer, seq);
    this.floors.delete(printer);
    this.save();
  }

  /** A cursor the server refused (a printer it no longer serves). */
  drop(printer: string): void {
    this.durable.delete(printer);
    this.floors.delete(printer);
    this.save();
  }

  private save(): void {
    if (!this.storage) return;
    try {
      this.storage.setItem(this.key, JSON.stringify(this.all()));
    } catch {
      // quota or privacy mode: the cursors live on in memory
    }
  }
}
