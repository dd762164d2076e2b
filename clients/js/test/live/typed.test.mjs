// Events arrive typed, with the server's names, from the hub (no credential from a
// trusted network, or a token) and from the plugin (its path and an API key); a
// refusal is terminal, not a loop.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { connect, PLUGIN_PATH, stats } from "@fluxprint/client";
import { APIKEY, control, FAST, HUB, OCTO, PRINTER, record, TOKEN, TOKEN_HUB, waitFor } from "./helpers.mjs";

const clients = [];
after(() => clients.forEach((c) => c.close()));

function open(options) {
  const client = connect({ ...FAST, ...options });
  clients.push(client);
  return client;
}

function assertStatus(status, printer) {
  assert.equal(status.printer, printer);
  assert.equal(typeof status.seq, "number");
  assert.equal(typeof status.ts, "number");
  assert.equal(typeof status.state.text, "string");
  assert.equal(typeof status.state.flags.operational, "boolean");
  assert.ok(["connecting", "connected", "disconnected", "error"].includes(status.connection.state));
}

test("the hub, from a trusted network: status, temperatures, a print to job_complete", async () => {
  const client = open({ url: HUB() });
  const rec = record(client);
  await waitFor("realtime", () => client.state === "realtime");
  assert.equal(client.transport, "websocket");
  const [status] = await waitFor("a status", () => rec.of("printer:status").length && rec.of("printer:status"));
  assertStatus(status, PRINTER());
  await waitFor("printer:printers", () => rec.count("printer:printers"));
  assert.deepEqual(rec.of("printer:printers")[0].printers.map((p) => p.id), [PRINTER()]);
  const temp = await waitFor("a temperature", () => rec.of("printer:temperature")[0]);
  assert.equal(typeof temp.tool0.actual, "number");
  assert.equal(temp.printer, PRINTER());

  const mark = Date.now();
  const name = await control("octo/print", { lines: 300 });
  const done = await waitFor(
    "job_complete",
    () => rec.of("printer:job_complete", mark).find((j) => j.filename === name),
    60000,
  );
  assert.equal(done.file.name, name);
  assert.equal(typeof done.printTime, "number");
  const started = rec.of("printer:job_started", mark).find((j) => j.filename === name);
  assert.ok(started && started.seq < done.seq, "job_started before job_complete");
  const completions = rec
    .of("printer:progress", mark)
    .filter((p) => p.file.name === name && p.completion !== null)
    .map((p) => p.completion);
  assert.ok(completions.length >= 2, `progress: ${completions}`);
  assert.deepEqual(completions, [...completions].sort((a, b) => a - b));
  assert.equal(completions.at(-1), 100);
  // seq strictly increases per printer at the client
  const seqs = rec.events.filter((e) => e.payload?.printer === PRINTER()).map((e) => e.payload.seq);
  assert.ok(seqs.every((s, i) => i === 0 || s > seqs[i - 1]), "seq strictly increasing");
  assert.ok(client.cursors.get(PRINTER()) >= done.seq);
  await control("octo/operational");
});

test("the hub with a token; a wrong token is refused once, terminally", async () => {
  const good = open({ url: TOKEN_HUB(), auth: { token: TOKEN() } });
  const rec = record(good);
  await waitFor("a status with a token", () => rec.count("printer:status"));
  const before = stats.sockets;
  const bad = open({ url: TOKEN_HUB(), auth: { token: "not-the-token" } });
  const errors = [];
  bad.on("error", (e) => errors.push(e));
  await waitFor("closed", () => bad.state === "closed");
  assert.equal(stats.sockets, before + 1);
  assert.deepEqual(errors.map((e) => [e.message, e.terminal, e.source]), [
    ["refused: invalid token", true, "refused"],
  ]);
  assert.deepEqual(bad.transitions.map((t) => t.to), ["closed"]);
  // and it stays closed: no retries
  await new Promise((r) => setTimeout(r, 600));
  assert.equal(bad.state, "closed");
  assert.equal(errors.length, 1);
  const none = open({ url: TOKEN_HUB() });
  await waitFor("refused without credentials", () => none.state === "closed");
  assert.match(none.transitions.at(-1).reason, /^refused: missing credentials/);
});

test("the plugin: its path and an API key, and its REST fallback", async () => {
  const client = open({ url: OCTO(), path: PLUGIN_PATH, auth: { apikey: APIKEY() } });
  const rec = record(client);
  const [status] = await waitFor("a status from the plugin", () => rec.of("printer:status").length && rec.of("printer:status"));
  assertStatus(status, status.printer);
  assert.equal(rec.count("printer:printers"), 0, "printer:printers is the hub's");
  const polled = open({ url: OCTO(), path: PLUGIN_PATH, auth: { apikey: APIKEY() }, enableWebSocket: false });
  const prec = record(polled);
  assert.equal(polled.state, "polling");
  await waitFor("two polls", () => polled.polls >= 2);
  const [rest] = prec.of("printer:status");
  assertStatus(rest, status.printer);
  assert.deepEqual(Object.keys(rest).sort(), Object.keys(status).sort());
  assert.equal(polled.socket, null);
});

test("a revoked key: io server disconnect is terminal, and no retry loop", async () => {
  const { app, key } = await control("octo/appkey");
  const client = open({ url: OCTO(), path: PLUGIN_PATH, auth: { apikey: key } });
  const rec = record(client);
  await waitFor("realtime with an application key", () => client.state === "realtime");
  const sockets = stats.sockets;
  await control("octo/revoke", { app });
  await waitFor("closed after the revocation", () => client.state === "closed", 20000);
  const errors = rec.of("error");
  assert.deepEqual(errors.map((e) => [e.message, e.terminal, e.source]), [
    ["API key revoked", true, "disconnected"],
  ]);
  assert.equal(rec.of("printer:closing").at(-1).reason, "API key revoked");
  assert.deepEqual(client.transitions.map((t) => t.to), ["realtime", "closed"]);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(client.state, "closed");
  assert.equal(client.socket, null);
  assert.equal(stats.sockets, sockets);
});

test("a cursor the hub cannot serve: printer:resync, the cursor moves, the status is fetched", async () => {
  const future = 2 ** 52;
  const client = open({ url: HUB(), since: { [PRINTER()]: future } });
  const rec = record(client);
  const resync = await waitFor("printer:resync", () => rec.of("printer:resync")[0]);
  assert.equal(resync.printer, PRINTER());
  assert.equal(resync.requested, future);
  assert.equal(client.cursors.get(PRINTER()), resync.lastSeq);
  const at = rec.events.findIndex((e) => e.event === "printer:resync");
  // the server's status after the resync, and the one the client asked for
  await waitFor("two statuses after the resync", () => rec.events.slice(at).filter((e) => e.event === "printer:status").length >= 2);
  assert.deepEqual(rec.of("error"), []);
});

test("the hub with a JWT (auth: {token}): the socket, and the REST fallback with it", async () => {
  const jwt = process.env.FLUXPRINT_JWT;
  assert.ok(jwt, "FLUXPRINT_JWT");
  const client = open({ url: TOKEN_HUB(), auth: { token: jwt } });
  const rec = record(client);
  const [status] = await waitFor("a status with a JWT", () => rec.of("printer:status").length && rec.of("printer:status"));
  assertStatus(status, PRINTER());
  // a function: asked on every (re)connect and REST call (a fresh token each time)
  let asked = 0;
  const polled = open({ url: TOKEN_HUB(), auth: () => (asked++, { token: jwt }), enableWebSocket: false });
  const prec = record(polled);
  await waitFor("REST statuses with the JWT", () => prec.count("printer:status") >= 2);
  assert.ok(asked >= 2);
  assert.deepEqual(prec.of("error"), []);
});
