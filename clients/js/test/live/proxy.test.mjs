// Behind a proxy that refuses websocket upgrades, the client drops to long-polling
// and stays realtime; behind one that lets only the REST routes through, it drops
// to the REST fallback (the polling state) and keeps getting the status.
import assert from "node:assert/strict";
import http from "node:http";
import { after, test } from "node:test";
import { connect } from "@fluxprint/client";
import { FAST, HUB, PRINTER, record, waitFor } from "./helpers.mjs";

const closers = [];
after(async () => {
  for (const close of closers) await close();
});

/** An HTTP proxy in front of the hub: no websocket upgrades; `block` refuses paths. */
async function proxy(block = () => false) {
  const target = new URL(HUB());
  const counts = { upgrades: 0, refused: 0, forwarded: 0 };
  const server = http.createServer((req, res) => {
    if (block(req.url)) {
      counts.refused += 1;
      res.writeHead(403, { "Content-Type": "text/plain" }).end("blocked by the proxy");
      return;
    }
    counts.forwarded += 1;
    const upstream = http.request(
      { host: target.hostname, port: target.port, path: req.url, method: req.method, headers: { ...req.headers, host: target.host } },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on("error", () => res.writeHead(502).end());
    req.pipe(upstream);
  });
  server.on("upgrade", (_req, socket) => {
    counts.upgrades += 1;
    socket.end("HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  closers.push(() => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }));
  return { url: `http://127.0.0.1:${server.address().port}`, counts };
}

test("websocket upgrades refused: long-polling, realtime, statuses and temperatures", async () => {
  const p = await proxy();
  const client = connect({ url: p.url, ...FAST });
  const rec = record(client);
  closers.unshift(async () => client.close());
  await waitFor("realtime", () => client.state === "realtime");
  assert.equal(client.transport, "polling");
  assert.ok(p.counts.upgrades >= 1, "the websocket was tried first");
  await waitFor("a status", () => rec.count("printer:status"));
  await waitFor("two temperatures", () => rec.count("printer:temperature") >= 2);
  assert.equal(rec.of("printer:temperature")[0].printer, PRINTER());
});

test("only REST gets through: the polling state, and statuses keep coming", async () => {
  const p = await proxy((url) => url.startsWith("/socket.io/"));
  const client = connect({ url: p.url, ...FAST });
  const rec = record(client);
  closers.unshift(async () => client.close());
  await waitFor("polling", () => client.state === "polling");
  const entered = Date.now();
  await waitFor("three REST statuses", () => rec.count("printer:status", entered) >= 3);
  const statuses = rec.of("printer:status", entered);
  assert.equal(statuses[0].printer, PRINTER());
  assert.ok(statuses.at(-1).ts >= statuses[0].ts);
  assert.ok(p.counts.refused >= FAST.pollAfter);
  assert.equal(client.state, "polling", "and the socket keeps trying in the background");
  assert.deepEqual(client.transitions.map((t) => t.to), ["reconnecting", "polling"]);
});
