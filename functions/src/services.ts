/**
 * THE service registry: each service, declared once. Every service becomes its own Function App
 * (own Flex Consumption plan, identity and least-privilege role assignments from its links), its
 * own bundle, and its own process on the local platform; its code lives in
 * functions/src/<service>/index.ts. The settings contract (settings.ts), the bundler, naming, the
 * Pulumi program, the stack outputs and the local platform all read this object.
 *
 * To add a service: `npm run new:service -- <name> --trigger http|queue`, or a folder with an
 * index.ts plus an entry here; the compiler and the tests name anything else.
 */
import { concurrentJobsFor } from "./agent/capacity";
import { SWAGGER_UI_ASSET_FILES } from "./api/docs-assets";
import { MAX_REQUEST_BODY_BYTES } from "./api/request-limits";
import { linksTo } from "./platform/links";
import { defineServices, type ServiceDeclaration } from "./platform/service-kinds";
import { integer, flag, httpUrl, ncrontab } from "./platform/setting-parsers";
import { resources } from "./resources";

const link = linksTo(resources);

export const services = defineServices({
  api: {
    description: "HTTP API for the browser: uploads, jobs, live-update tokens, health and docs; re-sends jobs left without a message",
    http: {
      localPort: 7071,
      browserFacing: true,
      anonymousRoutes: ["health", "openapi.json", "docs", "docs/*"],
      alwaysReadyConfig: "apiAlwaysReadyInstances",
    },
    links: [
      link.cosmosContainer("jobs", "readWrite"),
      link.cosmosContainer("quotas", "readWrite"),
      link.queue("jobs", "send"),
      link.blobContainer("uploads", "delegatedWrite"),
      link.hub("jobs", "publish"),
    ],
    settings: {
      UPLOAD_MAX_BYTES: {
        from: { config: "uploadMaxBytes" },
        parse: integer(1, 256 * 1024 * 1024),
        description: "Largest upload a SAS URL allows, in bytes",
      },
      UPLOAD_URL_TTL_SECONDS: {
        from: { config: "uploadUrlTtlSeconds" },
        parse: integer(60, 3600),
        description: "Lifetime of an upload SAS URL, in seconds",
      },
      QUOTA_UPLOAD_URLS_PER_HOUR: {
        from: { config: "quotaUploadUrlsPerHour" },
        parse: integer(1, 10_000),
        description: "Upload URLs one user may obtain in any 60 minutes (429 beyond)",
      },
      QUOTA_JOBS_PER_HOUR: {
        from: { config: "quotaJobsPerHour" },
        parse: integer(1, 10_000),
        description: "Jobs one user may submit in any 60 minutes (429 beyond)",
      },
      QUOTA_JOBS_IN_FLIGHT: {
        from: { config: "quotaJobsInFlight" },
        parse: integer(1, 1000),
        description: "Jobs of one user that may be queued or running at once (429 beyond)",
      },
      APP_SERVICE_AUTHENTICATION: {
        from: { config: "signInEnabled" },
        parse: flag,
        description:
          'Whether App Service Authentication runs in front of the api ("true" only then): the x-ms-client-principal headers identify callers only because it strips and sets them; without it anyone could forge them, so they are ignored',
      },
      API_GATEWAY: {
        from: { config: "gatewayEnabled" },
        parse: flag,
        description:
          'Whether the API gateway is in front of the api ("true" only then): App Service Authentication then admits only the gateway\'s identity, and the user is the one the gateway names in x-gateway-user-id',
      },
      JOB_SWEEP_SCHEDULE: {
        from: { config: "jobSweepSchedule" },
        parse: ncrontab,
        description: "When the requeueStuckJobs timer runs (NCRONTAB, six fields, UTC): it re-sends jobs left queued or running without a message",
      },
      JOB_REQUEUE_AFTER_SECONDS: {
        from: { config: "jobRequeueAfterSeconds" },
        parse: integer(5, 86_400),
        description:
          "How long a queued job (or a running job past its lease) waits before the sweeper sends it a new message; doubled for each further requeue of the same job",
      },
      MAX_CONCURRENT_REQUESTS: {
        from: { config: "apiMaxConcurrentRequests" },
        parse: integer(1, 10_000),
        description: "Requests one api instance serves at once; more get 503 with Retry-After instead of queueing until they time out",
      },
      ALLOW_DEVELOPMENT_IDENTITY: {
        scope: "local",
        local: "true",
        optional: true,
        parse: flag,
        description: "Accept the x-dev-user header as the caller's identity (local platform only; never in Azure)",
      },
    },
    assets: [{ package: "swagger-ui-dist", files: SWAGGER_UI_ASSET_FILES, into: "swagger-ui" }],
    // The host refuses a larger body before any function runs, on every route, anonymous or not.
    host: { requestBodyLimitBytes: MAX_REQUEST_BODY_BYTES },
  },
  agent: {
    description: "Analyses each job from the jobs queue and fails the dead-lettered ones",
    links: [
      link.cosmosContainer("jobs", "readWrite"),
      link.queue("jobs", "receive"),
      link.blobContainer("uploads", "read"),
      link.hub("jobs", "publish"),
    ],
    settings: {
      UPLOAD_MAX_BYTES: {
        from: { config: "uploadMaxBytes" },
        parse: integer(1, 256 * 1024 * 1024),
        optional: true,
        description:
          "Largest blob the agent analyses, in bytes: the api's limit (a SAS URL cannot enforce a size, the agent does); 16 MiB when unset",
      },
      EXTERNAL_PROCESSOR_URL: {
        from: { config: "externalProcessorUrl" },
        parse: httpUrl,
        optional: true,
        description: "Optional external analysis service; the built-in analysis is used without it",
      },
    },
    // As many concurrent jobs as the instance's memory holds (agent/capacity.ts).
    host: { serviceBusConcurrency: concurrentJobsFor },
  },
});

export type ServiceName = keyof typeof services;
/** Every service, in declaration order. */
export const serviceNames = Object.keys(services) as ServiceName[];

/**
 * One value per service of the registry. The one place a per-service record is built, from the
 * list itself, so no such record can miss a service.
 */
export function perService<T>(make: (service: ServiceName) => T): Record<ServiceName, T> {
  return Object.fromEntries(serviceNames.map((service) => [service, make(service)])) as Record<ServiceName, T>;
}

/** A service's declaration as the general shape, for code that handles any service. */
export function declarationOf(service: ServiceName): ServiceDeclaration {
  return services[service];
}
