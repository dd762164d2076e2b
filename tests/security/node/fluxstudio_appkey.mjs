// FluxStudio: obtain an OctoPrint application key through OctoPrint's Application
// Keys workflow, then connect to FluxPrint with it. (The README's example; the
// security tests run this very file against a real OctoPrint.) Node 18+.
import { io } from "socket.io-client"; // socket.io-client 4

const OCTOPRINT = process.env.OCTOPRINT_URL ?? "http://octopi.local";
const APP = process.env.APP_NAME ?? "FluxStudio";

async function obtainAppKey(user) {
  // 1. probe: 204 when the Application Keys plugin is available
  const probe = await fetch(`${OCTOPRINT}/plugin/appkeys/probe`);
  if (probe.status !== 204) throw new Error("OctoPrint offers no application keys");

  // 2. ask for a key for this app (optionally for one user)
  const request = await fetch(`${OCTOPRINT}/plugin/appkeys/request`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(user ? { app: APP, user } : { app: APP }),
  });
  if (request.status !== 201) throw new Error(`request refused: ${request.status}`);
  const { app_token, auth_dialog } = await request.json();

  // 3. a logged-in user approves in OctoPrint's UI (a dialog pops up there;
  //    auth_dialog is a page for it, too)
  console.log(JSON.stringify({ type: "pending", auth_dialog }));

  // 4. poll: 202 while pending, 200 with the key once approved, 404 when denied
  //    or expired (keep polling at least every 5 s, or the request expires)
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const poll = await fetch(`${OCTOPRINT}/plugin/appkeys/request/${app_token}`);
    if (poll.status === 200) return (await poll.json()).api_key;
    if (poll.status !== 202) throw new Error("access denied or request expired");
  }
}

// store the key (it stays valid until revoked in OctoPrint) and reuse it next time
const apikey = process.env.FLUXPRINT_APIKEY || (await obtainAppKey(process.env.OCTOPRINT_USER));

const socket = io(`${OCTOPRINT}/ws/printing`, {
  path: "/plugin/fluxprint/socket.io/",
  auth: { apikey },
  transports: ["websocket"],
  reconnection: false,
});
socket.on("connect_error", (err) => {
  console.log(JSON.stringify({ type: "refused", message: err.message }));
  process.exit(1);
});
socket.once("printer:status", (status) =>
  console.log(JSON.stringify({ type: "status", state: status.state.text })),
);
// FluxPrint says why before it disconnects (key revoked, user deactivated, ...)
socket.on("printer:closing", ({ reason }) =>
  console.log(JSON.stringify({ type: "closing", reason })),
);
socket.on("disconnect", () => process.exit(0));
