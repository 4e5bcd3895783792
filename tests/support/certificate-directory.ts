import { tmpdir } from "node:os";
import { join } from "node:path";

/** Where the tests keep their loopback certificate (outside the repository, reused across runs). */
export const TEST_CERTIFICATE_DIRECTORY = join(tmpdir(), "azure-serverless-platform-test-certificates");
