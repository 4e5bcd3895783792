/**
 * Sends a file straight to Blob Storage with the create-only SAS URL the api issued (the bytes never
 * pass through the api). XMLHttpRequest rather than fetch: only it reports upload progress.
 */
import type { UploadResponse } from "./api-types";

/** The PUT failed: `status` 0 means it never got an answer. */
export class UploadFailed extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "UploadFailed";
  }
}

/** Blob Storage's error code from its XML answer (`<Code>AuthenticationFailed</Code>`), when present. */
function storageErrorCode(body: string): string | undefined {
  return /<Code>([^<]{1,100})<\/Code>/.exec(body)?.[1];
}

/** PUTs `file` as `upload` says; `onProgress` gets the fraction sent, 0 to 1. */
export function uploadFile(file: Blob, upload: UploadResponse, onProgress: (fraction: number) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open(upload.method, upload.uploadUrl);
    for (const [name, value] of Object.entries(upload.headers)) request.setRequestHeader(name, value);
    request.setRequestHeader("content-type", file.type || "text/plain");
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable && event.total > 0) onProgress(event.loaded / event.total);
    });
    request.addEventListener("load", () => {
      if (request.status >= 200 && request.status < 300) {
        onProgress(1);
        resolve();
        return;
      }
      const code = storageErrorCode(request.responseText);
      const reason = request.status === 403 ? "the upload link was refused (it may have expired); try again" : `storage answered ${request.status}`;
      reject(new UploadFailed(request.status, `The upload failed: ${reason}${code ? ` (${code})` : ""}.`));
    });
    request.addEventListener("error", () => reject(new UploadFailed(0, "The upload failed: storage cannot be reached. Check your connection and try again.")));
    request.addEventListener("abort", () => reject(new UploadFailed(0, "The upload was cancelled.")));
    request.send(file);
  });
}
