/**
 * Reading an uploaded blob for analysis, behind a thin interface (the domain logic is tested with an
 * in-memory reader as well as against Azurite). The Azure implementation streams the download:
 * nothing holds the whole blob in memory. A pinned job reads exactly the version the api accepted
 * (If-Match on its ETag), and a blob whose content came from Copy Blob is refused, as the api
 * refuses it: the agent's own check, for jobs accepted before the api checked.
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

/** The blob is no longer the version the api accepted (overwritten or replaced since): permanent. */
export class UploadChanged extends Error {
  constructor(readonly blobName: string) {
    super(`the uploaded blob ${blobName} changed after its job was accepted`);
    this.name = "UploadChanged";
  }
}

/** The blob's content came from a copy of another blob, not from an upload through its URL: permanent. */
export class UploadCopied extends Error {
  constructor(readonly blobName: string) {
    super(`the uploaded blob ${blobName} was filled by a copy, not uploaded`);
    this.name = "UploadCopied";
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
  /**
   * Starts a download from the beginning, of exactly the version `etag` names when given. Throws
   * {@link BlobNotFound}, {@link UploadChanged}, {@link UploadCopied}.
   */
  open(blobName: string, etag?: string): Promise<OpenedBlob>;
}

function statusCodeOf(error: unknown): number | undefined {
  const statusCode = (error as { statusCode?: unknown } | null)?.statusCode;
  return typeof statusCode === "number" ? statusCode : undefined;
}

export class BlobUploadsReader implements UploadsReader {
  constructor(private readonly container: ContainerClient) {}

  async open(blobName: string, etag?: string): Promise<OpenedBlob> {
    let response: Awaited<ReturnType<ReturnType<ContainerClient["getBlobClient"]>["download"]>>;
    try {
      response = await this.container.getBlobClient(blobName).download(0, undefined, etag === undefined ? {} : { conditions: { ifMatch: etag } });
    } catch (error) {
      if (statusCodeOf(error) === 404) throw new BlobNotFound(blobName);
      if (statusCodeOf(error) === 412) throw new UploadChanged(blobName);
      throw error;
    }
    const body = response.readableStreamBody;
    const cancel = () => (body as (NodeJS.ReadableStream & { destroy?: () => void }) | undefined)?.destroy?.();
    if (response.copyId !== undefined || response.copySource !== undefined || response.copyStatus !== undefined) {
      cancel();
      throw new UploadCopied(blobName);
    }
    if (!body) throw new Error(`download of ${blobName} returned no body stream`);
    return { contentLength: response.contentLength, content: body as AsyncIterable<Uint8Array>, cancel };
  }
}
