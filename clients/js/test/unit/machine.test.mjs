// The seed's connection states (pure, with an injected clock).
import assert from "node:assert/strict";
import { test } from "node:test";
import { ConnectionMachine } from "@fluxprint/client";

function machine(opts = {}) {
  let now = 1000;
  const seen = [];
  const m = new ConnectionMachine({
    pollAfter: 3,
    polling: true,
    now: () => now,
    onChange: (t) => seen.push(`${t.from}>${t.to}@${t.at}`),
    ...opts,
  });
  return { m, seen, tick: (ms) => (now += ms) };
}

test("the seed's Test 4: realtime, reconnecting, polling after N failures, realtime again", () => {
  const { m, seen, tick } = machine();
  assert.equal(m.state, "connecting");
  tick(5);
  m.connected();
  tick(100);
  m.lost("transport close");
  assert.equal(m.state, "reconnecting");
  tick(1000);
  m.failed("xhr poll error");
  tick(2000);
  m.failed("xhr poll error");
  assert.equal(m.state, "reconnecting");
  tick(4000);
  m.failed("xhr poll error");
  assert.equal(m.state, "polling");
  tick(8000);
  m.failed("xhr poll error"); // still polling: the socket keeps trying
  assert.equal(m.state, "polling");
  tick(500);
  m.connected();
  assert.equal(m.state, "realtime");
  assert.equal(m.failures, 0);
  assert.deepEqual(seen, [
    "connecting>realtime@1005",
    "realtime>reconnecting@1105",
    "reconnecting>polling@8105",
    "polling>realtime@16605",
  ]);
  assert.equal(m.history.length, 4);
  assert.match(m.history[2].reason, /^3 failed attempt\(s\)/);
});

test("a first connect that fails goes reconnecting, then polling", () => {
  const { m } = machine({ pollAfter: 2 });
  m.failed("refused");
  assert.equal(m.state, "reconnecting");
  m.failed("refused");
  assert.equal(m.state, "polling");
});

test("pollAfter 0 polls as soon as the link is lost; polling off never polls", () => {
  const a = machine({ pollAfter: 0 }).m;
  a.connected();
  a.lost("ping timeout");
  assert.equal(a.state, "polling");
  const b = machine({ polling: false }).m;
  b.connected();
  b.lost("transport close");
  for (let i = 0; i < 10; i++) b.failed("down");
  assert.equal(b.state, "reconnecting");
});

test("closed is terminal", () => {
  const { m, seen } = machine();
  m.connected();
  m.closed("refused: invalid token");
  m.connected();
  m.failed("x");
  m.lost("x");
  assert.equal(m.state, "closed");
  assert.equal(seen.length, 2);
});

test("websocket disabled: polling from the start", () => {
  const { m } = machine();
  m.pollOnly();
  assert.equal(m.state, "polling");
});

test("the history is bounded", () => {
  const { m } = machine({ keep: 3, pollAfter: 1 });
  for (let i = 0; i < 10; i++) {
    m.connected();
    m.lost("x");
  }
  assert.equal(m.history.length, 3);
});
