/**
 * The local Functions host's public entry: run a service's `@azure/functions` registrations in a
 * child process of its own (startHostProcess, what `npm start` does per service) or in this process
 * (startFunctionsHost). README.md next to this folder lists what it plays of the Functions host.
 */
export { hostChildSource, startHostProcess } from "./host-process.js";
export type { HostExit, HostProcess, HostProcessOptions } from "./host-process.js";
export { formatLogRecord, startFunctionsHost } from "./host.js";
export type { FunctionsHost, FunctionsHostOptions, IndexedFunction } from "./host.js";
export type { HostLogRecord, HostLogSink } from "./functions-app.js";
export { parseNcrontab } from "./ncrontab.js";
