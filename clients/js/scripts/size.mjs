// The package's weight, as the README reports it: the packed tarball (given), and a
// browser bundle of the client plus the hook (esbuild, minified; React left out: the
// app has it), raw and gzipped. Prints JSON.
//   node scripts/size.mjs [tarball]
import { stat } from "node:fs/promises";
import { gzipSync } from "node:zlib";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = (p) => fileURLToPath(new URL(p, import.meta.url));

async function bundle(contents) {
  const result = await esbuild.build({
    stdin: { contents, resolveDir: here(".."), loader: "js" },
    bundle: true,
    write: false,
    minify: true,
    format: "esm",
    platform: "browser",
    target: ["es2020"],
    external: ["react"],
    legalComments: "none",
  });
  const code = result.outputFiles[0].contents;
  return { bytes: code.length, gzip: gzipSync(code, { level: 9 }).length };
}

const out = {
  client_and_hook: await bundle(
    'export * from "./src/index.ts"; export { usePrinterStatus } from "./src/react.ts";',
  ),
  socket_io_client_alone: await bundle('export { io } from "socket.io-client";'),
};
const tarball = process.argv[2];
if (tarball) out.packed = (await stat(tarball)).size;
console.log(JSON.stringify(out));
