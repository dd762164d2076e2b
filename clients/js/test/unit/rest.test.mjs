// The REST base beside the Socket.IO path, and the hook's reducer (pure).
import assert from "node:assert/strict";
import { test } from "node:test";
import { restBase } from "@fluxprint/client";
import { reduce } from "@fluxprint/client/react";

test("the REST routes live beside the Socket.IO path", () => {
  assert.equal(restBase("/socket.io/"), "");
  assert.equal(restBase("/socket.io"), "");
  assert.equal(restBase("/plugin/fluxprint/socket.io/"), "/plugin/fluxprint");
  assert.equal(restBase("/farm/socket.io/"), "/farm");
  assert.equal(restBase("/custom/path/"), "/custom");
});

test("the hook's store: statuses bring temperature and progress, job events the last job event", () => {
  let s = { connectionState: "connecting", printers: {}, error: null, lastUpdate: null };
  const status = {
    printer: "a", seq: 5, ts: 1000,
    state: { text: "Printing" },
    temperature: { tool0: { actual: 200, target: 210, offset: 0 } },
    progress: { completion: 10 },
  };
  s = reduce(s, { kind: "event", event: "printer:status", payload: status });
  assert.equal(s.printers.a.temperature.tool0.actual, 200);
  assert.equal(s.printers.a.progress.completion, 10);
  // a newer temperature wins; an older status does not roll it back
  s = reduce(s, { kind: "event", event: "printer:temperature", payload: { printer: "a", seq: 6, ts: 2000, tool0: { actual: 205 } } });
  s = reduce(s, { kind: "event", event: "printer:status", payload: { ...status, ts: 1500 } });
  assert.equal(s.printers.a.temperature.tool0.actual, 205);
  s = reduce(s, { kind: "event", event: "printer:job_complete", payload: { printer: "a", seq: 7, ts: 3000, filename: "x.gcode" } });
  assert.equal(s.printers.a.lastJobEvent.event, "printer:job_complete");
  assert.equal(s.printers.a.lastJobEvent.filename, "x.gcode");
  // the hub's own messages and unknown events leave the store as it is
  const same = reduce(s, { kind: "event", event: "printer:closing", payload: { printer: "hub", reason: "x" } });
  assert.equal(same, s);
  s = reduce(s, { kind: "state", state: "realtime" });
  assert.equal(s.connectionState, "realtime");
});
