// usePrinterStatus under react-test-renderer against a real hub: one socket for the
// component's life however its callbacks are passed (FluxStudio's own hook, mounted
// with inline callbacks, opens a new socket on every render), and what the server
// sends reaches the component.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { createElement as h } from "react";
import TestRenderer from "react-test-renderer";
import { stats } from "@fluxprint/client";
import { usePrinterStatus } from "@fluxprint/client/react";
import { control, FAST, HUB, PRINTER, waitFor } from "../live/helpers.mjs";

const { act, create } = TestRenderer;
globalThis.IS_REACT_ACT_ENVIRONMENT = false; // updates come from a real socket

async function hubClients() {
  const health = await (await fetch(`${HUB()}/health`)).json();
  return health.socketio.clients;
}

const roots = [];
after(() => roots.forEach((r) => r.unmount()));

function Dashboard({ n, calls }) {
  // every render passes new functions and a new auth object, as an inline JSX prop would
  const view = usePrinterStatus({
    url: HUB(),
    printers: [PRINTER()],
    auth: { token: undefined },
    ...FAST,
    onJobComplete: (job) => calls.push(["complete", n, job.filename]),
    onJobFailed: (job) => calls.push(["failed", n, job.reason]),
    onConnectionChange: (change) => calls.push(["state", n, change.state]),
  });
  return h(
    "div",
    null,
    h("span", { id: "state" }, view.connectionState),
    h("span", { id: "printer" }, view.status?.state.text ?? ""),
    h("span", { id: "nozzle" }, String(view.temperature?.tool0?.actual ?? "")),
    h("span", { id: "job" }, view.lastJobEvent ? `${view.lastJobEvent.event} ${view.lastJobEvent.filename}` : ""),
    h("span", { id: "progress" }, String(view.progress?.completion ?? "")),
  );
}

const text = (root, id) => root.root.findByProps({ id }).children.join("");

test("one socket over 500 re-renders with inline callbacks", async () => {
  const before = { ...stats };
  const idle = await hubClients();
  const calls = [];
  let root;
  act(() => {
    root = create(h(Dashboard, { n: 0, calls }));
  });
  roots.push(root);
  await waitFor("realtime in the component", () => text(root, "state") === "realtime");
  for (let n = 1; n <= 500; n++) {
    act(() => root.update(h(Dashboard, { n, calls })));
  }
  assert.equal(stats.sockets - before.sockets, 1, "sockets opened");
  assert.equal(stats.clients - before.clients, 1, "clients made");
  assert.equal(await hubClients(), idle + 1, "connections at the hub");
  assert.equal(text(root, "state"), "realtime");
  act(() => root.unmount());
  roots.pop();
  await waitFor("the socket closed on unmount", async () => (await hubClients()) === idle);
});

test("state changes reach the component, and the latest callbacks are called", async () => {
  const calls = [];
  let root;
  act(() => {
    root = create(h(Dashboard, { n: 0, calls }));
  });
  roots.push(root);
  await waitFor("a status in the component", () => text(root, "printer") !== "");
  await waitFor("a temperature in the component", () => text(root, "nozzle") !== "");
  act(() => root.update(h(Dashboard, { n: 1, calls })));
  const name = await control("octo/print", { lines: 300 });
  await waitFor("progress in the component", () => Number(text(root, "progress")) > 0, 30000);
  await waitFor("job_complete in the component", () => text(root, "job") === `printer:job_complete ${name}`, 60000);
  assert.equal(text(root, "progress"), "100");
  // the callback of the latest render ran, once
  assert.deepEqual(calls.filter((c) => c[0] === "complete"), [["complete", 1, name]]);
  await control("octo/operational");
});
