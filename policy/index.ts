/**
 * The policy pack as `pulumi preview --policy-pack policy` loads it. Constructing the pack starts
 * its gRPC server, so nothing else lives here: the rules are in policies.ts (which tests import).
 */
import { PolicyPack } from "@pulumi/policy";
import { policies } from "./policies";

new PolicyPack("azure-serverless-platform", { policies });
