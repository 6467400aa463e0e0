import type { components } from "./schema.js";
import { AgentfilesError, aborted } from "./errors.js";
import { type Transport, request, sleep } from "./http.js";

export type FileOut = components["schemas"]["FileOut"];
type UploadTicket = components["schemas"]["UploadTicket"];
interface Registered {
  file: FileOut;
  upload: UploadTicket | null;
  deduplicated?: boolean;
}

export interface UploadProgress {
  /** `uploading` while the bytes go to S3, `checking` while the upload check runs. */
  phase: "uploading" | "checking";
  loaded: number;
  total: number;
}

export interface UploadOptions {
  /** Defaults to the File's own name. */
  filename?: string;
  /** Defaults to the Blob's type, else one guessed from the name's extension. */
  mediaType?: string;
  onProgress?: (progress: UploadProgress) => void;
  signal?: AbortSignal;
  /** How long to wait for the check before failing `upload_not_checked` (default 60 s). */
  checkTimeoutMs?: number;
}

export interface UploadResult {
  /** The file, `ready`: the check passed (a refusal is thrown instead). */
  file: FileOut;
  /** The same content was ready already: no bytes were sent. */
  deduplicated: boolean;
}

const EXTENSIONS: Record<string, string> = {
  png: "image/png", jpg: "image/jpeg", jpeg: "image/jpeg", gif: "image/gif", webp: "image/webp",
  pdf: "application/pdf", txt: "text/plain", md: "text/markdown", markdown: "text/markdown",
  csv: "text/csv", json: "application/json",
};

export function mediaTypeOf(name: string, declared = ""): string {
  if (declared) return declared;
  const extension = name.includes(".") ? name.split(".").pop()!.toLowerCase() : "";
  return EXTENSIONS[extension] ?? "application/octet-stream";
}

async function sha256Hex(data: ArrayBuffer): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", data);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** PUT the bytes with exactly the signed headers: XMLHttpRequest where there is one (it
 * reports upload progress), fetch otherwise (progress at the start and the end only). */
async function put(ticket: UploadTicket, data: ArrayBuffer, transport: Transport, options: UploadOptions): Promise<void> {
  const total = data.byteLength;
  const progress = (loaded: number) => options.onProgress?.({ phase: "uploading", loaded, total });
  const headers = ticket.headers as Record<string, string>;
  const XHR = (globalThis as { XMLHttpRequest?: typeof XMLHttpRequest }).XMLHttpRequest;
  progress(0);
  if (XHR) {
    await new Promise<void>((resolve, reject) => {
      const xhr = new XHR();
      xhr.open(ticket.method, ticket.url);
      // A browser sets Content-Length itself and refuses to be told it.
      for (const [name, value] of Object.entries(headers)) {
        if (name.toLowerCase() !== "content-length") xhr.setRequestHeader(name, value);
      }
      xhr.upload.onprogress = (event) => {
        if (event.lengthComputable) progress(event.loaded);
      };
      xhr.onload = () => (xhr.status < 300 ? resolve() : reject(putFailed(xhr.status, xhr.responseText)));
      xhr.onerror = () => reject(new AgentfilesError(0, "network_error", "the upload did not reach the bucket"));
      xhr.onabort = () => reject(aborted());
      options.signal?.addEventListener("abort", () => xhr.abort(), { once: true });
      xhr.send(data);
    });
  } else {
    let response: Response;
    try {
      response = await transport.fetch(ticket.url, { method: ticket.method, headers, body: data, signal: options.signal });
    } catch (error) {
      if (options.signal?.aborted) throw aborted();
      throw new AgentfilesError(0, "network_error", `the upload did not reach the bucket: ${String(error)}`);
    }
    if (!response.ok) throw putFailed(response.status, await response.text());
  }
  progress(total);
}

function putFailed(status: number, body: string): AgentfilesError {
  // S3 answers XML; its <Code> says why (an expired URL, a signed header that differs).
  const code = /<Code>([^<]+)<\/Code>/.exec(body)?.[1];
  return new AgentfilesError(status, "upload_failed", `the bucket refused the upload (${code ?? status})`, { s3Code: code });
}

/** Where settled files are pushed: `listen` calls back with each file frame's file and
 * returns the remover (the client's socket, when one is open). */
export type PushedFiles = (listener: (file: FileOut) => void) => () => void;

export interface WaitOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
  /** The file as pushed ends the wait at once; polling goes on beside it, in case the
   * socket drops or the frame is lost. */
  pushed?: PushedFiles;
}

/** Poll the file with backoff until the check decided: ready, or rejected (thrown); a
 * pushed frame for it ends the wait at once, even while a poll is still on its way. */
export async function waitForCheck(transport: Transport, fileId: string, options: WaitOptions = {}): Promise<FileOut> {
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  let stop: (() => void) | undefined;
  const pushed = new Promise<FileOut>((resolve) => {
    stop = options.pushed?.((file) => {
      if (file.id === fileId && (file.status === "ready" || file.status === "rejected")) resolve(file);
    });
  });
  try {
    for (let attempt = 0; ; attempt++) {
      const polled = request<{ file: FileOut }>(transport, "GET", `/files/${fileId}`, { signal: options.signal }).then((r) => r.file);
      polled.catch(() => {}); // a poll overtaken by the frame may still fail: nobody waits for it
      const file = await Promise.race([polled, pushed]);
      if (file.status === "ready") return file;
      if (file.status === "rejected") throw rejected(file);
      if (Date.now() > deadline) throw new AgentfilesError(0, "upload_not_checked", `file ${fileId} is still ${file.status}`, { file });
      const woken = await Promise.race([sleep(Math.min(2000, 150 * 1.6 ** attempt), options.signal), pushed]);
      if (woken) {
        if (woken.status === "ready") return woken;
        throw rejected(woken);
      }
    }
  } finally {
    stop?.();
  }
}

function rejected(file: FileOut): AgentfilesError {
  const rejection = (file as { rejection?: { code?: string; message?: string } | null }).rejection ?? {};
  return new AgentfilesError(422, rejection.code ?? "rejected", rejection.message ?? "the upload check refused the file", { file });
}

/** Register, PUT straight to the bucket (or nothing on a dedup hit), wait for the check
 * (told by the socket where one is open, else polled). */
export async function upload(transport: Transport, blob: Blob, options: UploadOptions = {}, pushed?: PushedFiles): Promise<UploadResult> {
  const filename = options.filename ?? (blob as Blob & { name?: string }).name;
  if (!filename) throw new AgentfilesError(0, "validation_error", "a Blob needs a filename");
  const data = await blob.arrayBuffer();
  if (options.signal?.aborted) throw aborted();
  const registered = await request<Registered>(transport, "POST", "/files/uploads", {
    body: { filename, mediaType: mediaTypeOf(filename, options.mediaType ?? blob.type), size: data.byteLength, sha256: await sha256Hex(data) },
    signal: options.signal,
  });
  if (!registered.upload) return { file: registered.file, deduplicated: true };
  await put(registered.upload, data, transport, options);
  options.onProgress?.({ phase: "checking", loaded: data.byteLength, total: data.byteLength });
  const file = await waitForCheck(transport, registered.file.id, { signal: options.signal, timeoutMs: options.checkTimeoutMs, pushed });
  return { file, deduplicated: false };
}
