export {
  connect,
  FluxPrintClient,
  HUB_PATH,
  NAMESPACE,
  PLUGIN_PATH,
  stats,
  type AuthOption,
  type ClientError,
  type ConnectOptions,
  type Credentials,
  type EventName,
  type FluxPrintEvents,
} from "./client.js";
export { BATCH_EVENT, unpackBatch, type BatchEvent, type Unpacked } from "./batch.js";
export { Cursors, DURABLE_EVENTS, type CursorMap, type StorageLike } from "./cursors.js";
export {
  ConnectionMachine,
  type ConnectionState,
  type MachineOptions,
  type Transition,
} from "./machine.js";
export { RestClient, RestError, restBase, type EventsPage, type FetchLike } from "./rest.js";
export type * from "./generated/events.js";
