// One printer's tile: name, state badge, nozzle and bed (actual/target) with a live
// uPlot chart of the last minutes, progress, file, time left, the last job event.

import uPlot from "uplot";
import type {
  HeaterReading,
  JobEvent,
  PrinterEntry,
  ProgressEvent,
  StatusEvent,
  TemperatureEvent,
} from "../src/index.js";
import { type Lang, stateText, t } from "./i18n.js";

export const WINDOW_S = 5 * 60; // the chart's last minutes
const MAX_POINTS = 1200;

export type Colour = "green" | "yellow" | "gray" | "red";

/** The seed's badge colours for a printer's state. */
export function stateColour(status: StatusEvent | null, link: PrinterEntry["state"] | null): Colour {
  if (link === "offline" || !status) return "gray";
  const flags = status.state.flags;
  if (flags.error || status.connection.state === "error") return "red";
  if (link === "stale") return "yellow";
  if (flags.closedOrError || status.connection.state !== "connected") return "gray";
  if (flags.paused || flags.pausing || flags.cancelling || flags.resuming || flags.finishing) {
    return "yellow";
  }
  return "green";
}

export function duration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return "";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (h > 0) return `${h} h ${String(m).padStart(2, "0")} min`;
  if (m > 0) return `${m} min`;
  return `${s} s`;
}

function reading(value: HeaterReading | undefined | null): [number | null, number | null] {
  return [value?.actual ?? null, value?.target ?? null];
}

function fmt(value: number | null): string {
  return value === null ? "–" : value.toFixed(1);
}

function q<T extends Element = HTMLElement>(root: Element, selector: string): T {
  const found = root.querySelector<T>(selector);
  if (!found) throw new Error(`tile template: ${selector} missing`);
  return found;
}

export class Tile {
  readonly el: HTMLElement;
  private status: StatusEvent | null = null;
  private link: PrinterEntry | null = null;
  private lastTempTs = 0;
  private lastProgressTs = 0;
  private readonly data: [number[], Array<number | null>, Array<number | null>, Array<number | null>, Array<number | null>] = [[], [], [], [], []];
  private chart: uPlot | null = null;
  private redraw = 0;

  constructor(
    readonly id: string,
    template: HTMLTemplateElement,
    private readonly lang: Lang,
  ) {
    const fragment = template.content.cloneNode(true) as DocumentFragment;
    this.el = fragment.firstElementChild as HTMLElement;
    this.el.dataset.printer = id;
    q(this.el, ".name").textContent = id;
    q(this.el, ".nozzle .label").textContent = t(lang, "nozzle");
    q(this.el, ".bed .label").textContent = t(lang, "bed");
    q(this.el, ".lastevent .label").textContent = `${t(lang, "lastEvent")}:`;
    q(this.el, ".lastevent .value").textContent = t(lang, "none");
    this.renderState();
  }

  /** After the tile is in the document (uPlot measures its box). */
  mount(): void {
    const box = q(this.el, ".chart");
    const width = Math.max(200, box.clientWidth || 320);
    const dash = [6, 4];
    const points = { show: false };
    this.chart = new uPlot(
      {
        width,
        height: 140,
        legend: { show: false },
        cursor: { show: false },
        // from the first sample, then the last WINDOW_S seconds
        scales: {
          x: { time: true, range: (_u, min, max) => [Math.min(max - 10, Math.max(min, max - WINDOW_S)), max] },
          y: { auto: true },
        },
        axes: [
          { stroke: "#667", grid: { stroke: "#eee" }, size: 24 },
          { stroke: "#667", grid: { stroke: "#eee" }, size: 36 },
        ],
        series: [
          {},
          { label: "nozzle", stroke: "#d9480f", width: 2, spanGaps: true, points },
          { label: "nozzle target", stroke: "#d9480f", width: 1, dash, spanGaps: true, points },
          { label: "bed", stroke: "#1971c2", width: 2, spanGaps: true, points },
          { label: "bed target", stroke: "#1971c2", width: 1, dash, spanGaps: true, points },
        ],
      },
      this.data,
      box,
    );
  }

  setLink(entry: PrinterEntry): void {
    this.link = entry;
    this.renderState();
  }

  onStatus(status: StatusEvent): void {
    this.status = status;
    this.renderState();
    // a status carries the newest temperature and progress too (all polling gets)
    this.onTemperature({ ...status.temperature, seq: status.seq, ts: status.ts, printer: status.printer } as TemperatureEvent);
    if (status.progress) this.onProgress({ ...status.progress, seq: status.seq, ts: status.ts, printer: status.printer } as ProgressEvent);
  }

  onTemperature(temp: TemperatureEvent): void {
    if (temp.ts < this.lastTempTs) return;
    const [nozzle, nozzleTarget] = reading(temp.tool0);
    const [bed, bedTarget] = reading(temp.bed);
    q(this.el, ".nozzle .actual").textContent = fmt(nozzle);
    q(this.el, ".nozzle .target").textContent = fmt(nozzleTarget);
    q(this.el, ".bed .actual").textContent = fmt(bed);
    q(this.el, ".bed .target").textContent = fmt(bedTarget);
    this.el.dataset.nozzle = nozzle === null ? "" : String(nozzle);
    if (temp.ts === this.lastTempTs) return; // the same sample again (a status)
    this.lastTempTs = temp.ts;
    const x = temp.ts / 1000;
    const d = this.data;
    d[0].push(x);
    d[1].push(nozzle);
    d[2].push(nozzleTarget);
    d[3].push(bed);
    d[4].push(bedTarget);
    let drop = 0;
    while (drop < d[0].length && (d[0][drop] < x - WINDOW_S || d[0].length - drop > MAX_POINTS)) drop++;
    if (drop) for (const series of d) series.splice(0, drop);
    this.el.dataset.points = String(d[0].length);
    this.schedule();
  }

  onProgress(progress: ProgressEvent): void {
    if (progress.ts < this.lastProgressTs) return;
    this.lastProgressTs = progress.ts;
    const completion = progress.completion;
    const fill = q(this.el, ".fill");
    fill.style.width = `${Math.max(0, Math.min(100, completion ?? 0))}%`;
    q(this.el, ".completion").textContent = completion === null ? "–" : `${completion.toFixed(1)} %`;
    q(this.el, ".file").textContent = progress.file?.name ?? t(this.lang, "noJob");
    const left = (progress.printTimeLeft ?? 0) > 0 ? duration(progress.printTimeLeft) : "";
    q(this.el, ".left").textContent = left ? `${left} ${t(this.lang, "left")}` : "";
    this.el.dataset.completion = completion === null ? "" : String(completion);
  }

  onJob(event: string, job: JobEvent): void {
    const name = t(this.lang, event as "printer:job_complete");
    const when = new Date(job.ts).toLocaleTimeString(this.lang);
    q(this.el, ".lastevent .value").textContent = `${name}: ${job.filename ?? "?"} (${when})`;
    this.el.dataset.lastEvent = event;
  }

  private renderState(): void {
    const badge = q(this.el, ".state");
    const link = this.link?.state ?? null;
    const colour = stateColour(this.status, link);
    badge.className = `state badge badge-${colour}`;
    const text = this.status ? stateText(this.lang, this.status.state.text) : "–";
    badge.textContent = link === "offline" ? t(this.lang, "offline") : text;
    this.el.dataset.state = this.status?.state.text ?? "";
    q(this.el, ".link").textContent = link ? t(this.lang, link) : "";
  }

  private schedule(): void {
    if (this.redraw || !this.chart) return;
    this.redraw = requestAnimationFrame(() => {
      this.redraw = 0;
      this.chart?.setData(this.data);
    });
  }
}
