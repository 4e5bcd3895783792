/**
 * Reading an uploaded blob for analysis, behind a thin interface (the domain logic is tested with an
 * in-memory reader as well as against Azurite). The Azure implementation streams the download:
 * nothing holds the whole blob in memory.
 */
import type { ContainerClient } from "@azure/storage-blob";

/** The blob does not exist (never uploaded, or deleted): permanent, the job fails at once. */
export class BlobNotFound extends Error {
  constructor(readonly blobName: string) {
    super(`the uploaded blob ${blobName} does not exist`);
    this.name = "BlobNotFound";
  }
}

/**
 * The job names a blob outside its owner's upload prefix. The api never accepts such a job; this is
 * the agent's own check, so a forged or corrupted message cannot make it read another user's file.
 */
export class UploadNotOwned extends Error {
  constructor(readonly blobName: string) {
    super(`blob ${blobName} is not an upload of the job's owner`);
    this.name = "UploadNotOwned";
  }
}

export interface OpenedBlob {
  /** Size announced by the service; the stream is capped independently of it. */
  readonly contentLength: number | undefined;
  readonly content: AsyncIterable<Uint8Array>;
  /** Stops the download early (size over the limit, or the reader gave up). */
  cancel(): void;
}

export interface UploadsReader {
  /** Starts a download from the beginning. Throws {@link BlobNotFound}. */
  open(blobName: string): Promise<OpenedBlob>;
}

function statusCodeOf(error: unknown): number | undefined {
  const statusCode = (error as { statusCode?: unknown } | null)?.statusCode;
  return typeof statusCode === "number" ? statusCode : undefined;
}

export class BlobUploadsReader implements UploadsReader {
  constructor(private readonly container: ContainerClient) {}

  async open(blobName: string): Promise<OpenedBlob> {
    try {
      const response = await this.container.getBlobClient(blobName).download();
      const body = response.readableStreamBody;
      if (!body) throw new Error(`download of ${blobName} returned no body stream`);
      return {
        contentLength: response.contentLength,
        content: body as AsyncIterable<Uint8Array>,
        cancel: () => (body as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.(),
      };
    } catch (error) {
      if (statusCodeOf(error) === 404) throw new BlobNotFound(blobName);
      throw error;
    }
  }
}
