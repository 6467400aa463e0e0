import type { components } from "./schema.js";
import { type Transport } from "./http.js";
export type FileOut = components["schemas"]["FileOut"];
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
export declare function mediaTypeOf(name: string, declared?: string): string;
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
export declare function waitForCheck(transport: Transport, fileId: string, options?: WaitOptions): Promise<FileOut>;
/** Register, PUT straight to the bucket (or nothing on a dedup hit), wait for the check
 * (told by the socket where one is open, else polled). */
export declare function upload(transport: Transport, blob: Blob, options?: UploadOptions, pushed?: PushedFiles): Promise<UploadResult>;
