/**
 * The bootstrap program (bootstrap/Pulumi.yaml `main`): read and validate the configuration, create
 * the CI backend and identity, export what the repository needs.
 */
import * as pulumi from "@pulumi/pulumi";
import * as authorization from "@pulumi/azure-native/authorization";
import { createBootstrap } from "./bootstrap";
import { readBootstrapConfig } from "./config";

const bootstrap = createBootstrap(readBootstrapConfig(), { stack: pulumi.getStack(), client: authorization.getClientConfigOutput() });

export const resourceGroupName = bootstrap.outputs.resourceGroupName;
export const ciClientId = bootstrap.outputs.ciClientId;
export const ciPrincipalId = bootstrap.outputs.ciPrincipalId;
export const federatedSubjects = bootstrap.outputs.federatedSubjects;
/** The repository variables (none is a secret). */
export const variables = bootstrap.outputs.variables;
/** Run these with the GitHub CLI: `pulumi stack output ghCommands | sh`. */
export const ghCommands = bootstrap.outputs.ghCommands;
