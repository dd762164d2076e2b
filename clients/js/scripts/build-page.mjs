// Builds the hub's live page (clients/js/page) into the Python package
// (octoprint_fluxprint/hub/static): esbuild bundles the page, the client and uPlot
// into page.js and page.css; index.html is copied. The output is committed (the
// wheel serves it; no CDN) and check-fresh.mjs fails when it is stale.
//   node scripts/build-page.mjs [outdir]
import { copyFile, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
export const STATIC = here("../../../octoprint_fluxprint/hub/static");

export async function buildPage(outdir = STATIC) {
  await mkdir(outdir, { recursive: true });
  await esbuild.build({
    entryPoints: { page: here("../page/main.ts") },
    outdir,
    bundle: true,
    format: "esm",
    target: ["es2020", "chrome100", "firefox100", "safari15"],
    minify: true,
    legalComments: "eof",
    sourcemap: false,
    charset: "utf8",
    logLevel: "warning",
  });
  await copyFile(here("../page/index.html"), join(outdir, "index.html"));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await buildPage(process.argv[2] ?? STATIC);
}
