/**
 * What the services use of @azure/monitor-opentelemetry-exporter, loaded on the first export of
 * spans (telemetry-export.ts; README.md beside this file).
 */
export { AzureMonitorTraceExporter } from "@azure/monitor-opentelemetry-exporter";
