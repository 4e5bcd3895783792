/**
 * The Pulumi program (Pulumi.yaml `main`): read and validate the stack configuration, build the
 * platform, deploy the code of every service and the web app, export the stack outputs.
 */
import * as pulumi from "@pulumi/pulumi";
import * as authorization from "@pulumi/azure-native/authorization";
import { perService } from "../functions/src/services";
import { readConfig } from "./config";
import { createPlatform } from "./platform";
import { deployContent } from "./deploy/platform-deployments";

const config = readConfig();
const platform = createPlatform(config, {
  project: pulumi.getProject(),
  stack: pulumi.getStack(),
  client: authorization.getClientConfigOutput(),
});
// The code of every service and the web/ frontend, built now and deployed when their hashes change.
const content = deployContent(platform);

export const resourceGroupName = platform.outputs.resourceGroupName;
/** The api's Function App. */
export const apiUrl = platform.outputs.appUrls.api;
/** Where the web app calls the api: the API gateway when it is on (gatewayEnabled), else the api's Function App. */
export const apiBaseUrl = platform.outputs.apiBaseUrl;
export const webUrl = platform.outputs.webUrl;
export const webPubSubEndpoint = platform.outputs.webPubSubEndpoint;
export const appNames = platform.outputs.appNames;
export const appUrls = platform.outputs.appUrls;
export const dataStorageAccountName = platform.outputs.dataStorageAccountName;
export const webContainerName = platform.outputs.webContainerName;
export const hostStorageAccountName = platform.outputs.hostStorageAccountName;
export const deploymentContainerUrls = platform.outputs.deploymentContainerUrls;
/** The api registration's client ID when sign-in is on (CI asks for tokens for `api://<it>`), else "". */
export const signInApiClientId = platform.outputs.signInApiClientId;
/** Content hashes of what is deployed: each service's package and the static site. */
export const deployedContentHashes = { ...perService((service) => content.code[service].packageHash), web: content.site.siteHash };
