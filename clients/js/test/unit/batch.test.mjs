// printer:batch unpacked into single events, in order (pure).
import assert from "node:assert/strict";
import { test } from "node:test";
import { unpackBatch } from "@fluxprint/client";

test("a tick's items come out as single events, in the tick's order", () => {
  const batch = {
    ts: 1000,
    items: [
      ["printer:temperature", { printer: "a", seq: 12, ts: 990, tool0: { actual: 200, target: 200, offset: 0 } }],
      ["printer:job_paused", { printer: "a", seq: 10, ts: 980 }],
      ["printer:job_resumed", { printer: "a", seq: 11, ts: 985 }],
      ["printer:progress", { printer: "b", seq: 7, ts: 995, completion: 50 }],
    ],
  };
  const { items, skipped } = unpackBatch(batch);
  assert.equal(skipped, 0);
  assert.deepEqual(items.map(([e, p]) => [e, p.printer, p.seq]), [
    ["printer:temperature", "a", 12],
    ["printer:job_paused", "a", 10],
    ["printer:job_resumed", "a", 11],
    ["printer:progress", "b", 7],
  ]);
  // the payloads are the items' own objects, untouched
  assert.equal(items[0][1], batch.items[0][1]);
});

test("malformed items are dropped and counted, the rest delivered", () => {
  const { items, skipped } = unpackBatch({
    ts: 1,
    items: [
      ["printer:status", { printer: "a", seq: 1 }],
      "printer:status",
      ["printer:status"],
      [42, {}],
      ["printer:status", null],
      ["printer:status", [1, 2]],
      ["printer:batch", { ts: 1, items: [] }],
      ["printer:job_complete", { printer: "a", seq: 2 }, "extra"],
      ["printer:job_complete", { printer: "a", seq: 3 }],
    ],
  });
  assert.equal(skipped, 7);
  assert.deepEqual(items.map(([e, p]) => [e, p.seq]), [
    ["printer:status", 1],
    ["printer:job_complete", 3],
  ]);
});

test("a batch that is not an object with items is one skipped item", () => {
  for (const bad of [null, 7, "x", [], {}, { items: {} }]) {
    assert.deepEqual(unpackBatch(bad), { items: [], skipped: 1 });
  }
  assert.deepEqual(unpackBatch({ ts: 1, items: [] }), { items: [], skipped: 0 });
});
