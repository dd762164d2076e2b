// Generates src/generated/events.ts from the plugin's JSON Schema
// (octoprint_fluxprint/schemas/events.schema.json) with json-schema-to-typescript.
//   node scripts/gen-types.mjs            write the file
//   node scripts/gen-types.mjs --stdout   print it (check-fresh.mjs compares)
import { readFile, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { compile } from "json-schema-to-typescript";

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
export const SCHEMA = here("../../../octoprint_fluxprint/schemas/events.schema.json");
export const OUT = here("../src/generated/events.ts");

const BANNER = `/* Generated from octoprint_fluxprint/schemas/events.schema.json by
 * json-schema-to-typescript (clients/js/scripts/gen-types.mjs). Do not edit:
 * run \`npm run gen\` in clients/js after the schema changes. */`;

function map(title, description, names, schema) {
  return {
    title,
    description,
    type: "object",
    additionalProperties: false,
    required: names,
    properties: Object.fromEntries(names.map((n) => [n, schema[n]])),
  };
}

// pydantic titles every field ("Seq", "Error"...): json-schema-to-typescript would
// turn each into a named alias (Seq1, Seq2..., one shadowing the global Error); only
// the models' own titles (the $defs) name types
function untitle(node, keep) {
  if (Array.isArray(node)) return node.map((n) => untitle(n, false));
  if (node === null || typeof node !== "object") return node;
  const out = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === "title" && !keep) continue;
    out[key] = key === "$defs"
      ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, untitle(v, true)]))
      : untitle(value, false);
  }
  return out;
}

export async function generate() {
  const schema = untitle(JSON.parse(await readFile(SCHEMA, "utf8")), false);
  // the schema's "events" and "client_events" are maps of event name -> payload
  // schema; one wrapper object per map becomes an interface keyed by event name
  const server = Object.keys(schema.events).sort();
  const client = Object.keys(schema.client_events).sort();
  const wrapper = {
    title: "FluxPrintSchema",
    type: "object",
    additionalProperties: false,
    properties: {
      server: { $ref: "#/$defs/ServerEvents" },
      client: { $ref: "#/$defs/ClientEvents" },
    },
    $defs: {
      ...schema.$defs,
      ServerEvents: map(
        "ServerEvents",
        "Server -> client: the payload of each event, by name",
        server,
        schema.events,
      ),
      ClientEvents: map(
        "ClientEvents",
        "Client -> server: the payload of each event, by name",
        client,
        schema.client_events,
      ),
    },
  };
  const ts = await compile(wrapper, "FluxPrintSchema", {
    bannerComment: BANNER,
    additionalProperties: false,
    unreachableDefinitions: true,
    strictIndexSignatures: true,
    maxItems: -1, // channels: string[], not a union of every tuple up to 5
    format: true,
    style: { printWidth: 90 },
  });
  return heaters(ts);
}

// A temperature payload is its metadata (seq, ts, printer...) plus one key per
// heater. TypeScript refuses a string index signature beside properties of other
// types, so the heaters get template-literal and named keys instead: tool0..toolN,
// bed and chamber are typed; custom heaters are reached through a cast
const HEATER_INDEX = "  [k: string]: HeaterReading | undefined;\n}";
const HEATER_KEYS =
  "  [tool: `tool${number}`]: HeaterReading | undefined;\n" +
  "  bed?: HeaterReading;\n  chamber?: HeaterReading;\n}";

function heaters(ts) {
  let out = ts;
  for (const name of ["TemperatureEvent", "TemperatureDelta"]) {
    const at = out.indexOf(`export interface ${name} {`);
    const index = at < 0 ? -1 : out.indexOf(HEATER_INDEX, at);
    const next = out.indexOf("export interface", at + 1);
    if (index < 0 || (next >= 0 && index > next)) {
      throw new Error(`heater keys: no heater index signature in ${name}`);
    }
    out = out.slice(0, index) + HEATER_KEYS + out.slice(index + HEATER_INDEX.length);
  }
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const ts = await generate();
  if (process.argv.includes("--stdout")) process.stdout.write(ts);
  else await writeFile(OUT, ts);
}
