// Resume cursors per printer (pure).
import assert from "node:assert/strict";
import { test } from "node:test";
import { Cursors } from "@fluxprint/client";

class MemoryStorage {
  constructor() { this.map = new Map(); }
  getItem(k) { return this.map.has(k) ? this.map.get(k) : null; }
  setItem(k, v) { this.map.set(k, String(v)); }
  removeItem(k) { this.map.delete(k); }
}

test("durable events move the cursor; one at or below it is a duplicate", () => {
  const c = new Cursors();
  assert.equal(c.get("a"), undefined);
  assert.equal(c.offer("a", 10), true);
  assert.equal(c.offer("a", 10), false);
  assert.equal(c.offer("a", 9), false);
  assert.equal(c.offer("a", 11), true);
  assert.equal(c.offer("b", 3), true);
  assert.deepEqual(c.all(), { a: 11, b: 3 });
});

test("the first message of a printer without a durable event sets a floor below it", () => {
  const c = new Cursors();
  c.seen("a", 100); // its first status
  assert.equal(c.get("a"), 99);
  c.seen("a", 150); // later messages do not move the floor
  assert.equal(c.get("a"), 99);
  assert.equal(c.offer("a", 120), true); // a durable event replaces it
  assert.equal(c.get("a"), 120);
  c.seen("a", 200);
  assert.equal(c.get("a"), 120);
});

test("a resync sets the cursor, drop forgets a printer", () => {
  const c = new Cursors({ a: 5, b: 6 });
  c.set("a", 500);
  assert.equal(c.offer("a", 400), false);
  c.drop("b");
  assert.deepEqual(c.all(), { a: 500 });
});

test("a number given before the printer's id is known becomes that printer's cursor", () => {
  const c = new Cursors(42);
  assert.equal(c.anonymous(), 42);
  assert.deepEqual(c.all(), {});
  c.seen("octopi", 50);
  assert.equal(c.anonymous(), undefined);
  assert.deepEqual(c.all(), { octopi: 42 });
  assert.equal(c.offer("octopi", 42), false);
});

test("cursors persist in a Storage, and an unreadable one is started over", () => {
  const storage = new MemoryStorage();
  const one = new Cursors(undefined, storage, "k");
  one.offer("a", 7);
  one.seen("b", 20);
  assert.deepEqual(JSON.parse(storage.getItem("k")), { a: 7, b: 19 });
  const two = new Cursors(undefined, storage, "k");
  assert.deepEqual(two.all(), { a: 7, b: 19 });
  storage.setItem("k", "{not json");
  assert.deepEqual(new Cursors(undefined, storage, "k").all(), {});
  assert.equal(storage.getItem("k"), null);
  // invalid values are ignored
  storage.setItem("k", JSON.stringify({ a: -1, b: "x", c: 1.5, d: 3 }));
  assert.deepEqual(new Cursors(undefined, storage, "k").all(), { d: 3 });
});
