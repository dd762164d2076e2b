// The seed's Test 4 with timestamps, and resume across a killed hub: 0 durable
// events lost or duplicated, against the plugin's own log (events.db).
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { connect } from "@fluxprint/client";
import { artifact, control, DURABLE, FAST, HUB, PRINTER, record, waitFor } from "./helpers.mjs";

const clients = [];
after(async () => {
  clients.forEach((c) => c.close());
  await control("hub/start").catch(() => {});
  await control("octo/operational").catch(() => {});
});

test("Test 4: hub stopped -> reconnecting -> polling; started -> realtime, no reload", async () => {
  const client = connect({ url: HUB(), ...FAST });
  clients.push(client);
  const rec = record(client);
  await waitFor("realtime", () => client.state === "realtime");
  await waitFor("a status", () => rec.count("printer:status"));

  const stopped = Date.now();
  await control("hub/stop");
  await waitFor("reconnecting", () => client.state !== "realtime");
  await waitFor("polling", () => client.state === "polling");
  // polling keeps trying the REST fallback (the hub is down: it fails) and the socket
  await waitFor("a failed REST poll", () => rec.of("error").some((e) => e.source === "rest"));
  const restarted = Date.now();
  await control("hub/start");
  await waitFor("realtime again", () => client.state === "realtime", 20000);
  const back = Date.now();
  // the status on connect: it may come before the poll above saw realtime (the hub
  // sends a quiet printer's status again only when it changes)
  await waitFor("a status after the restart", () => rec.count("printer:status", restarted));
  await waitFor("a temperature after the restart", () => rec.count("printer:temperature", back));

  const path = client.transitions.map((t) => `${t.from}>${t.to}`);
  assert.deepEqual(path, [
    "connecting>realtime",
    "realtime>reconnecting",
    "reconnecting>polling",
    "polling>realtime",
  ]);
  const at = client.transitions.map((t) => t.at);
  assert.ok(at.every((t, i) => i === 0 || t >= at[i - 1]), "timestamps in order");
  assert.ok(at[1] >= stopped && at[3] >= restarted);
  const report = client.transitions.map((t) => ({ ...t, ms_after_stop: t.at - stopped }));
  console.log("Test 4 transitions:", JSON.stringify(report));
  artifact("js-test4-transitions.json", { stopped, restarted, transitions: report });
});

test("resume after the hub is SIGKILLed: every durable event once, in order", async () => {
  const client = connect({ url: HUB(), ...FAST });
  clients.push(client);
  const rec = record(client);
  await waitFor("realtime", () => client.state === "realtime");
  await waitFor("a status", () => rec.count("printer:status"));
  const log0 = await control("octo/log");
  const since = log0.length ? log0.at(-1)[0] : 0;

  await control("hub/kill");
  await waitFor("not realtime", () => client.state !== "realtime");
  // durable events while the hub is away: a print starts, pauses and resumes
  await control("octo/pause-resume");
  await control("hub/start");
  await waitFor("realtime again", () => client.state === "realtime", 20000);
  await control("octo/pause-resume"); // and some after, live
  await control("octo/operational"); // a cancel: job_failed

  const logged = (await control("octo/log")).filter(([seq]) => seq > since);
  assert.ok(logged.length >= 6, `durable events made: ${JSON.stringify(logged)}`);
  const got = () =>
    rec.events
      .filter((e) => DURABLE.has(e.event) && e.payload.printer === PRINTER() && e.payload.seq > since)
      .map((e) => [e.payload.seq, e.event]);
  await waitFor("every durable event", () => got().length >= logged.length, 20000);
  const received = got();
  const seqs = received.map(([s]) => s);
  const lost = logged.filter(([s, e]) => !received.some(([rs, re]) => rs === s && re === e));
  const duplicated = seqs.length - new Set(seqs).size;
  const report = { compared: logged.length, lost: lost.length, duplicated, dropped_as_duplicate: client.duplicates };
  console.log("resume after SIGKILL:", JSON.stringify(report));
  artifact("js-resume.json", { ...report, logged, received });
  assert.deepEqual(lost, []);
  assert.equal(duplicated, 0);
  assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));
  assert.deepEqual(received, logged);
});
