/** What the services use of @azure/service-bus, loaded on first use (README.md beside this file). */
export { ServiceBusClient } from "@azure/service-bus";
