// Fails (exit 1) when a committed generated file is stale relative to its sources:
// src/generated/events.ts (from the JSON Schema) and the hub page's bundle in
// octoprint_fluxprint/hub/static (from page/ and src/). CI runs it through
// tests/js/test_package.py. Fix: `npm run gen` and `npm run build:page`.
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildPage, STATIC } from "./build-page.mjs";
import { generate, OUT } from "./gen-types.mjs";

const stale = [];
if ((await generate()) !== (await readFile(OUT, "utf8").catch(() => ""))) {
  stale.push("src/generated/events.ts (run: npm run gen)");
}
const dir = await mkdtemp(join(tmpdir(), "fluxprint-page-"));
try {
  await buildPage(dir);
  const built = (await readdir(dir)).sort();
  for (const name of built) {
    const fresh = await readFile(join(dir, name));
    const committed = await readFile(join(STATIC, name)).catch(() => null);
    if (committed === null || !fresh.equals(committed)) {
      stale.push(`octoprint_fluxprint/hub/static/${name} (run: npm run build:page)`);
    }
  }
  for (const name of await readdir(STATIC)) {
    if (!built.includes(name)) stale.push(`octoprint_fluxprint/hub/static/${name}: not built from page/`);
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
if (stale.length) {
  console.error("Stale generated files:\n  " + stale.join("\n  "));
  process.exit(1);
}
console.log("generated types and the page bundle are fresh");
