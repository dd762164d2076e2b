// Shared by the live tests: the real parts come from pytest (tests/js), which starts
// OctoPrint with the Virtual Printer and the hubs, and passes their addresses here.
import { writeFileSync } from "node:fs";
import { join } from "node:path";

export function env(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set: the live tests run through pytest (tests/js/test_package.py)`);
  }
  return value;
}

export const HUB = () => env("FLUXPRINT_HUB_URL");
export const PRINTER = () => env("FLUXPRINT_PRINTER");
export const OCTO = () => env("FLUXPRINT_OCTO_URL");
export const APIKEY = () => env("FLUXPRINT_OCTO_APIKEY");
export const TOKEN_HUB = () => env("FLUXPRINT_TOKEN_HUB_URL");
export const TOKEN = () => env("FLUXPRINT_TOKEN");

/** Runs an action of the pytest side's control server (stop the hub, print...). */
export async function control(action, args = {}) {
  const response = await fetch(`${env("FLUXPRINT_CONTROL")}/${action}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(args),
  });
  const body = await response.json();
  if (!body.ok) throw new Error(`control ${action}: ${body.error}`);
  return body.result;
}

/** Polls a condition (every 20 ms) until it holds; the error names what was awaited. */
export async function waitFor(what, predicate, timeout = 15000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Everything a client emits, with the time it arrived. */
export function record(client) {
  const events = [];
  client.onAny((event, payload) => events.push({ t: Date.now(), event, payload }));
  client.on("state", (s) => events.push({ t: Date.now(), event: "state", payload: s }));
  client.on("error", (e) => events.push({ t: Date.now(), event: "error", payload: e }));
  return {
    events,
    of: (event, after = 0) => events.filter((e) => e.event === event && e.t >= after).map((e) => e.payload),
    count: (event, after = 0) => events.filter((e) => e.event === event && e.t >= after).length,
  };
}

/** A JSON report for test-artifacts/ (the directory pytest passes). */
export function artifact(name, data) {
  const dir = process.env.FLUXPRINT_ARTIFACTS;
  if (!dir) return;
  writeFileSync(join(dir, name), JSON.stringify(data, null, 2));
}

/** The seed's delays, shrunk so a scenario takes seconds. */
export const FAST = {
  reconnectionDelay: 100,
  reconnectionDelayMax: 400,
  pollAfter: 2,
  statusInterval: 500,
};

export const DURABLE = new Set([
  "printer:job_started",
  "printer:job_paused",
  "printer:job_resumed",
  "printer:job_complete",
  "printer:job_failed",
  "printer:connection",
]);
