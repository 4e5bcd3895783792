/**
 * The Pulumi program (Pulumi.yaml `main`): read and validate the stack configuration, build the
 * platform, export the stack outputs.
 */
import * as pulumi from "@pulumi/pulumi";
import * as authorization from "@pulumi/azure-native/authorization";
import { readConfig } from "./config";
import { createPlatform } from "./platform";
import { deployContent } from "./deploy/platform-deployments";

const config = readConfig();
const platform = createPlatform(config, {
  project: pulumi.getProject(),
  stack: pulumi.getStack(),
  client: authorization.getClientConfigOutput(),
});
// The code of both services and the web/ frontend, built now and deployed when their hashes change.
const content = deployContent(platform);

export const resourceGroupName = platform.outputs.resourceGroupName;
export const apiUrl = platform.outputs.apiUrl;
export const webUrl = platform.outputs.webUrl;
export const webPubSubEndpoint = platform.outputs.webPubSubEndpoint;
export const webPubSubHub = platform.outputs.webPubSubHub;
export const apiAppName = platform.outputs.apiAppName;
export const agentAppName = platform.outputs.agentAppName;
export const dataStorageAccountName = platform.outputs.dataStorageAccountName;
export const webContainerName = platform.outputs.webContainerName;
export const hostStorageAccountName = platform.outputs.hostStorageAccountName;
export const deploymentContainerUrls = platform.outputs.deploymentContainerUrls;
/** Content hashes of what is deployed: the api and agent packages and the static site. */
export const deployedContentHashes = { api: content.code.api.packageHash, agent: content.code.agent.packageHash, web: content.site.siteHash };
