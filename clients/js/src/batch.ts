/**
 * `printer:batch {ts, items: [[event, payload], ...]}` (a hub client that asked for
 * `printer:subscribe {batch: ms}`): one frame per tick holding, per printer, the
 * newest telemetry and every durable event in seq order. Unpacked here into the
 * single events it stands for, in the order the tick lists them, so callers of the
 * client never see the difference. Pure.
 */

export const BATCH_EVENT = "printer:batch";

export interface BatchEvent {
  ts: number;
  items: Array<[string, Record<string, unknown>]>;
}

export interface Unpacked {
  /** the events, in the tick's order */
  items: Array<[string, Record<string, unknown>]>;
  /** items that were not `[name, object]` (or a batch inside a batch): dropped */
  skipped: number;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function unpackBatch(batch: unknown): Unpacked {
  const items: Array<[string, Record<string, unknown>]> = [];
  if (!isObject(batch) || !Array.isArray(batch.items)) return { items, skipped: 1 };
  let skipped = 0;
  for (const item of batch.items) {
    if (
      Array.isArray(item) &&
      item.length === 2 &&
      typeof item[0] === "string" &&
      item[0] !== BATCH_EVENT &&
      isObject(item[1])
    ) {
      items.push([item[0], item[1]]);
    } else {
      skipped += 1;
    }
  }
  return { items, skipped };
}
