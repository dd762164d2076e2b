// The client as FluxStudio's relay (sockets/printing-socket.js) and its dashboard
// hook (src/hooks/usePrinterStatus.ts) would use it, compiled with `tsc --strict`
// against the packed declarations (tests/js/test_package.py). The @ts-expect-error
// lines check that the types refuse what they should.
import {
  connect,
  type ConnectionState,
  type FluxPrintClient,
  type JobCompleteEvent,
  type JobFailedEvent,
  PLUGIN_PATH,
  type StatusEvent,
  type TemperatureEvent,
} from "@fluxprint/client";
import { type JobNotice, usePrinterStatus } from "@fluxprint/client/react";

/** The part of a socket.io server namespace the relay uses. */
interface Namespace {
  emit(event: string, data: unknown): boolean;
}

const FORWARDED = [
  "printer:status",
  "printer:temperature",
  "printer:progress",
  "printer:job_complete",
  "printer:job_failed",
  "printer:connection",
] as const;

/** FluxStudio's relay: the hub at FLUXPRINT_WS_URL, forwarded to its /printing namespace. */
export function relay(namespace: Namespace): FluxPrintClient {
  const url = process.env.FLUXPRINT_WS_URL ?? "http://localhost:5001";
  const client = connect({ url, keyframe: 5, persist: false });
  for (const event of FORWARDED) {
    client.on(event, (data) => namespace.emit(event, data));
  }
  client.on("state", (t) =>
    namespace.emit("printer:connection", {
      connected: t.to === "realtime",
      reason: t.reason,
      timestamp: t.at,
    }),
  );
  client.on("error", (e) => {
    if (e.terminal) console.error("FluxPrint refused the relay:", e.message);
  });
  return client;
}

/** The same against the plugin, with an application key. */
export function relayToPlugin(namespace: Namespace, apikey: string): FluxPrintClient {
  const client = connect({ url: "http://octopi.local", path: PLUGIN_PATH, auth: { apikey } });
  client.on("printer:status", (status: StatusEvent) => namespace.emit("printer:status", status));
  return client;
}

type Badge = "Real-Time" | "Reconnecting" | "Polling Mode" | "Offline";

export function badge(state: ConnectionState): Badge {
  switch (state) {
    case "realtime":
      return "Real-Time";
    case "connecting":
    case "reconnecting":
      return "Reconnecting";
    case "polling":
      return "Polling Mode";
    case "closed":
      return "Offline";
  }
}

/** PrintingDashboard's use of the hook, inline callbacks and all. */
export function useDashboard(token: string) {
  const { status, temperature, progress, lastJobEvent, connectionState } = usePrinterStatus({
    url: "https://hub.example:5001",
    auth: { token },
    enableWebSocket: true,
    enablePolling: true,
    statusInterval: 30000,
    onJobComplete: (job: JobCompleteEvent) => console.log("done", job.filename, job.printTime),
    onJobFailed: (job: JobFailedEvent) => console.warn("failed", job.reason, job.error),
    onConnectionChange: (change) => console.log(change.connected, change.state),
  });
  const text: string = status?.state.text ?? "Unknown";
  const printing: boolean = status?.state.flags.printing ?? false;
  const nozzle: number | null = temperature?.tool0?.actual ?? null;
  const bed: number | null = temperature?.bed?.target ?? null;
  const completion: number | null = progress?.completion ?? null;
  const left: number | null = progress?.printTimeLeft ?? null;
  const last: JobNotice | null = lastJobEvent;
  const lastName: string | null = last?.filename ?? null;
  return { text, printing, nozzle, bed, completion, left, lastName, badge: badge(connectionState) };
}

export function strictness(client: FluxPrintClient, t: TemperatureEvent): void {
  // @ts-expect-error: a status has no such field
  client.on("printer:status", (s) => s.bogus);
  // @ts-expect-error: no such event
  client.on("printer:nope", () => undefined);
  // @ts-expect-error: seq is a number
  const seq: string = t.seq;
  // @ts-expect-error: the actual temperature may be null
  const actual: number = t.tool0!.actual;
  void seq;
  void actual;
}
