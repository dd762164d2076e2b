// The hub's live page (GET /): one tile per printer the viewer may see, and the
// seed's connection badge, on the npm client. Served from the hub's own files.

import "uplot/dist/uPlot.min.css";
import "./page.css";
import {
  type ClientError,
  connect,
  type ConnectionState,
  type FluxPrintClient,
  type JobEvent,
} from "../src/index.js";
import { type Lang, pickLang, printersLabel, t } from "./i18n.js";
import { Tile } from "./tile.js";

const TOKEN_KEY = "fluxprint:hub-token";
const JOB_EVENTS = [
  "printer:job_started",
  "printer:job_paused",
  "printer:job_resumed",
  "printer:job_complete",
  "printer:job_failed",
] as const;
// refusals that a token can cure: ask for one
const NEEDS_TOKEN = ["refused: missing credentials", "refused: invalid token", "refused: token"];

interface PageConfig {
  path: string;
  restBase: string;
}

function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} missing`);
  return el as T;
}

function config(): PageConfig {
  const meta = document.querySelector<HTMLMetaElement>('meta[name="fluxprint-config"]');
  try {
    const parsed = JSON.parse(meta?.content ?? "{}") as Partial<PageConfig>;
    return { path: parsed.path ?? "/socket.io/", restBase: parsed.restBase ?? "" };
  } catch {
    return { path: "/socket.io/", restBase: "" };
  }
}

/** Tuning in the query string (tests shrink the seed's delays): bounded integers. */
function tuning(search: string): Record<string, number> {
  const params = new URLSearchParams(search);
  const out: Record<string, number> = {};
  const bounds: Record<string, [string, number, number]> = {
    statusInterval: ["statusInterval", 500, 3_600_000],
    pollAfter: ["pollAfter", 0, 100],
    delay: ["reconnectionDelay", 50, 60_000],
    delayMax: ["reconnectionDelayMax", 50, 600_000],
  };
  for (const [name, [option, low, high]] of Object.entries(bounds)) {
    const raw = params.get(name);
    if (raw !== null && /^\d{1,7}$/.test(raw)) out[option] = Math.min(high, Math.max(low, Number(raw)));
  }
  return out;
}

const BADGE: Record<ConnectionState, [string, "realtime" | "reconnecting" | "polling" | "connecting" | "closed"]> = {
  realtime: ["green", "realtime"],
  reconnecting: ["yellow", "reconnecting"],
  connecting: ["yellow", "connecting"],
  polling: ["gray", "polling"],
  closed: ["red", "closed"],
};

class Page {
  private client: FluxPrintClient | null = null;
  private readonly tiles = new Map<string, Tile>();
  private readonly template = byId<HTMLTemplateElement>("tile-template");
  private token: string | null = sessionStorage.getItem(TOKEN_KEY);

  constructor(
    private readonly lang: Lang,
    private readonly cfg: PageConfig,
    private readonly tune: Record<string, number>,
  ) {
    document.documentElement.lang = lang;
    byId("token-title").textContent = t(lang, "tokenTitle");
    byId("token-label").textContent = t(lang, "tokenLabel");
    byId("token-submit").textContent = t(lang, "tokenSubmit");
    byId("token-note").textContent = t(lang, "tokenNote");
    byId("forget-token").textContent = t(lang, "forget");
    byId("empty").textContent = t(lang, "empty");
    byId("token-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const value = byId<HTMLInputElement>("token-input").value.trim();
      if (!value) return;
      byId<HTMLInputElement>("token-input").value = "";
      this.token = value;
      sessionStorage.setItem(TOKEN_KEY, value);
      this.start();
    });
    byId("forget-token").addEventListener("click", () => {
      this.token = null;
      sessionStorage.removeItem(TOKEN_KEY);
      this.start();
    });
    this.badge("connecting");
  }

  start(): void {
    this.client?.close();
    byId("token-form").hidden = true;
    byId("forget-token").hidden = this.token === null;
    const client = (this.client = connect({
      url: location.origin,
      path: this.cfg.path,
      restBase: this.cfg.restBase,
      // read on every (re)connect and REST call; never put into a URL
      auth: () => (this.token ? { token: this.token } : null),
      persist: true,
      ...this.tune,
    }));
    (window as unknown as { fluxprint: FluxPrintClient }).fluxprint = client;
    this.badge(client.state);
    client.on("state", (tr) => this.badge(tr.to));
    client.on("error", (err) => this.onError(err));
    client.on("printer:printers", (list) => {
      for (const entry of list.printers) this.tile(entry.id).setLink(entry);
      this.count();
    });
    client.on("printer:status", (s) => this.tile(s.printer).onStatus(s));
    client.on("printer:temperature", (temp) => this.tile(temp.printer).onTemperature(temp));
    client.on("printer:progress", (p) => this.tile(p.printer).onProgress(p));
    for (const name of JOB_EVENTS) {
      client.on(name, (job: JobEvent) => this.tile(job.printer).onJob(name, job));
    }
  }

  private badge(state: ConnectionState): void {
    const [colour, key] = BADGE[state];
    const el = byId("connection-badge");
    el.className = `badge badge-${colour}`;
    el.dataset.state = state;
    document.body.dataset.connection = state; // tiles dim while not live
    el.textContent = t(this.lang, key);
  }

  private onError(err: ClientError): void {
    if (!err.terminal) return; // shown by the badge; the client keeps going
    if (NEEDS_TOKEN.some((p) => err.message.startsWith(p))) {
      const form = byId("token-form");
      byId("token-reason").textContent = err.message.replace(/^refused: /, "");
      form.hidden = false;
      byId<HTMLInputElement>("token-input").focus();
    } else if (err.message.includes("no printer")) {
      byId("empty").hidden = false;
    }
  }

  private tile(id: string): Tile {
    let tile = this.tiles.get(id);
    if (!tile) {
      tile = new Tile(id, this.template, this.lang);
      this.tiles.set(id, tile);
      const container = byId("tiles");
      const after = [...this.tiles.keys()].sort().find((k) => k > id);
      container.insertBefore(tile.el, after ? (this.tiles.get(after)?.el ?? null) : null);
      tile.mount();
      this.count();
    }
    return tile;
  }

  private count(): void {
    byId("printer-count").textContent = printersLabel(this.lang, this.tiles.size);
    byId("empty").hidden = true;
  }
}

const page = new Page(pickLang(location.search, navigator.languages ?? []), config(), tuning(location.search));
page.start();
