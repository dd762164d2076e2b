// The page's strings, English and German (as the plugin's panel has both).

export type Lang = "en" | "de";

const STRINGS = {
  en: {
    realtime: "Real-Time",
    reconnecting: "Reconnecting",
    polling: "Polling Mode",
    connecting: "Connecting",
    closed: "Disconnected",
    printers: (n: number) => (n === 1 ? "1 printer" : `${n} printers`),
    nozzle: "Nozzle",
    bed: "Bed",
    left: "left",
    noJob: "No job",
    lastEvent: "Last job event",
    none: "none yet",
    online: "online",
    stale: "stale",
    offline: "offline",
    tokenTitle: "This hub needs a token",
    tokenLabel: "Hub token",
    tokenSubmit: "Connect",
    tokenNote: "The token stays in this tab (sessionStorage) and is sent in the connection's auth, never in a URL.",
    forget: "Forget token",
    empty: "No printer visible with these credentials.",
    "printer:job_started": "Started",
    "printer:job_paused": "Paused",
    "printer:job_resumed": "Resumed",
    "printer:job_complete": "Complete",
    "printer:job_failed": "Failed",
  },
  de: {
    realtime: "Echtzeit",
    reconnecting: "Verbinde neu",
    polling: "Abfragemodus",
    connecting: "Verbinde",
    closed: "Getrennt",
    printers: (n: number) => (n === 1 ? "1 Drucker" : `${n} Drucker`),
    nozzle: "Düse",
    bed: "Bett",
    left: "verbleibend",
    noJob: "Kein Auftrag",
    lastEvent: "Letztes Auftragsereignis",
    none: "noch keines",
    online: "online",
    stale: "veraltet",
    offline: "offline",
    tokenTitle: "Dieser Hub verlangt ein Token",
    tokenLabel: "Hub-Token",
    tokenSubmit: "Verbinden",
    tokenNote: "Das Token bleibt in diesem Tab (sessionStorage) und wird in der Anmeldung der Verbindung gesendet, nie in einer URL.",
    forget: "Token vergessen",
    empty: "Mit diesen Zugangsdaten ist kein Drucker sichtbar.",
    "printer:job_started": "Gestartet",
    "printer:job_paused": "Pausiert",
    "printer:job_resumed": "Fortgesetzt",
    "printer:job_complete": "Abgeschlossen",
    "printer:job_failed": "Fehlgeschlagen",
  },
} as const;

export type Key = keyof (typeof STRINGS)["en"];

// OctoPrint's state texts that the page translates (others are shown as they are)
const STATES_DE: Record<string, string> = {
  Operational: "Betriebsbereit",
  Printing: "Druckt",
  "Printing from SD": "Druckt von SD",
  Paused: "Pausiert",
  Pausing: "Pausiere",
  Resuming: "Setze fort",
  Cancelling: "Breche ab",
  Finishing: "Beende",
  Offline: "Offline",
  Error: "Fehler",
  "Opening serial connection": "Öffne serielle Verbindung",
  Connecting: "Verbinde",
  "Detecting serial connection": "Suche serielle Verbindung",
};

export function pickLang(search: string, languages: readonly string[]): Lang {
  const asked = new URLSearchParams(search).get("lang");
  if (asked === "de" || asked === "en") return asked;
  return languages.some((l) => l.toLowerCase().startsWith("de")) ? "de" : "en";
}

export function t(lang: Lang, key: Exclude<Key, "printers">): string {
  return STRINGS[lang][key] as string;
}

export function printersLabel(lang: Lang, n: number): string {
  return STRINGS[lang].printers(n);
}

export function stateText(lang: Lang, text: string): string {
  if (lang !== "de") return text;
  return STATES_DE[text] ?? STATES_DE[text.replace(/^Offline.*/, "Offline")] ?? text;
}
