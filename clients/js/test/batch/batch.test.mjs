// printer:subscribe {batch} at a real hub: one printer:batch frame per tick,
// unpacked by the client into the single events, so a batched client sees what an
// unbatched one sees: the same durable events in the same order, statuses and
// temperatures. (Needs the hub's batch support, "The hub at farm scale"; until it is
// there, the hub refuses the subscribe and this test fails on that error.)
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { connect } from "@fluxprint/client";
import { control, DURABLE, FAST, HUB, PRINTER, record, waitFor } from "../live/helpers.mjs";

const clients = [];
after(async () => {
  clients.forEach((c) => c.close());
  await control("octo/operational").catch(() => {});
});

test("a batched client gets what an unbatched one gets, event by event", async () => {
  const batched = connect({ url: HUB(), batch: 250, ...FAST });
  const single = connect({ url: HUB(), ...FAST });
  clients.push(batched, single);
  const b = record(batched);
  const s = record(single);
  await waitFor("both realtime", () => batched.state === "realtime" && single.state === "realtime");
  const refused = () => b.of("error").filter((e) => e.source === "batch" || e.source === "subscribe");
  await waitFor("batch frames (or the hub's refusal)", () => batched.batches > 0 || refused().length, 5000);
  assert.deepEqual(refused().map((e) => e.message), [], "the hub took printer:subscribe {batch}");
  const mark = Date.now();
  const name = await control("octo/print", { lines: 300 });
  await waitFor(
    "job_complete at both",
    () => [b, s].every((r) => r.of("printer:job_complete", mark).some((j) => j.filename === name)),
    60000,
  );
  await control("octo/pause-resume");
  const durable = (r) =>
    r.events
      .filter((e) => e.t >= mark && DURABLE.has(e.event) && e.payload.printer === PRINTER())
      .map((e) => [e.payload.seq, e.event]);
  await waitFor("the same durable events", () => durable(b).length >= durable(s).length && durable(s).length >= 4, 15000);
  assert.deepEqual(durable(b), durable(s));
  assert.ok(b.count("printer:temperature", mark) > 0 && b.count("printer:progress", mark) > 0);
  assert.equal(batched.duplicates, 0);
  console.log(`batched: ${batched.batches} frames for ${b.events.length} events`);
});
