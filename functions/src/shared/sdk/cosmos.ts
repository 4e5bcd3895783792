/** What the services use of @azure/cosmos, loaded on first use (README.md beside this file). */
export { CosmosClient } from "@azure/cosmos";
