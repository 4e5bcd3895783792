/** What the services use of @azure/identity, loaded on first use (README.md beside this file). */
export { DefaultAzureCredential, ManagedIdentityCredential } from "@azure/identity";
