/**
 * A typed client of the agentfiles API, for browsers and Node.js (20+), with no
 * dependency beyond the platform's fetch and WebSocket.
 *
 *   const client = createClient({ baseUrl, getToken: () => token });
 *   const { file } = await client.files.upload(blob, { onProgress });
 *   const { reply } = await client.messages.send(thread.id, [{ type: "text", text: "Hi" }, { type: "image", fileId: file.id }]);
 *   const final = await client.replies.follow(thread.id, reply!.id, { onText: (text) => render(text) }).done;
 */
import type { components } from "./schema.js";
import { AgentfilesError } from "./errors.js";
import { type TokenSource, type Transport, backoff, request, sleep } from "./http.js";
import { type FileOut, type UploadOptions, type UploadResult, upload, waitForCheck } from "./files.js";
import { type FollowHandlers, type Following, type Frame, type MessageOut, type StreamOut, LiveSocket, follow } from "./live.js";

export { AgentfilesError } from "./errors.js";
export { ENDED, type Delta, type FollowHandlers, type Following, type Frame, type MessageOut, type StreamOut } from "./live.js";
export { mediaTypeOf, type FileOut, type UploadOptions, type UploadProgress, type UploadResult } from "./files.js";
export type { components, paths } from "./schema.js";

type Schemas = components["schemas"];
export type ThreadOut = Schemas["ThreadOut"];
export type Part = Schemas["TextPart"] | Schemas["ImagePart"] | Schemas["FilePart"];
export type UsageOut = Schemas["UsageOut"];
export type ModelsOut = Schemas["ModelsOut"];
export type AccountOut = Schemas["AccountOut"];
export type ErasureOut = Schemas["ErasureOut"];
export type ExportOut = Schemas["ExportOut"];
export interface Page<T> {
  items: T[];
  nextCursor?: string | null;
}
export interface PageOptions {
  limit?: number;
  cursor?: string;
  signal?: AbortSignal;
}
export interface Exchange {
  message: MessageOut;
  reply?: MessageOut | null;
}

export interface ClientOptions {
  /** The HTTP API's URL (the stack output `ApiUrl`; locally http://127.0.0.1:8000). */
  baseUrl: string;
  /** The WebSocket URL (the stack output `WebSocketUrl`). Left out: asked of `GET /health`
   * (the local stack says it); `null`: no socket, replies are polled. */
  websocketUrl?: string | null;
  /** The bearer token (a JWT), asked for on every call so a refreshed one is used. */
  getToken: TokenSource;
  fetch?: typeof fetch;
  WebSocket?: new (url: string) => WebSocket;
}

export interface SendOptions {
  /** Reused on every retry, so the message is saved once; generated when left out. */
  idempotencyKey?: string;
  generate?: boolean;
  model?: string;
  signal?: AbortSignal;
  /** Tries after the first when the API or the network says to try again (default 3). */
  retries?: number;
}

export interface ImageOptions {
  size?: string;
  model?: string;
  idempotencyKey?: string;
  signal?: AbortSignal;
}

function newKey(): string {
  return globalThis.crypto.randomUUID();
}

/** Sends until it is not worth retrying: the same request each time (same key). */
async function withRetries<T>(retries: number, signal: AbortSignal | undefined, call: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      if (!(error instanceof AgentfilesError) || !error.retryable || attempt >= retries) throw error;
      await sleep(backoff(attempt), signal);
    }
  }
}

export function createClient(options: ClientOptions) {
  const transport: Transport = {
    baseUrl: options.baseUrl.replace(/\/+$/, ""),
    getToken: options.getToken,
    fetch: options.fetch ?? globalThis.fetch.bind(globalThis),
  };
  const call = <T>(method: string, path: string, rest: Parameters<typeof request>[3] = {}) => request<T>(transport, method, path, rest);
  let websocketUrl: Promise<string | null> | null = options.websocketUrl !== undefined ? Promise.resolve(options.websocketUrl) : null;
  const socketUrl = () =>
    (websocketUrl ??= call<{ websocketUrl?: string }>("GET", "/health", { anonymous: true }).then(
      (health) => health.websocketUrl ?? null,
      () => null,
    ));
  const live = new LiveSocket(socketUrl, options.getToken, options.WebSocket ?? (globalThis as { WebSocket?: new (url: string) => WebSocket }).WebSocket);

  // Settled uploads as the socket pushes them (heard only while it is open).
  const pushedFiles = (listener: (file: FileOut) => void) =>
    live.onAccount((frame) => {
      if (frame.type === "file") listener(frame.file);
    });

  const files = {
    upload: (blob: Blob, uploadOptions?: UploadOptions): Promise<UploadResult> => upload(transport, blob, uploadOptions, pushedFiles),
    get: async (fileId: string, signal?: AbortSignal) => (await call<{ file: FileOut }>("GET", `/files/${fileId}`, { signal })).file,
    /** The file once checked: ready, or an AgentfilesError with the check's code. */
    waitForCheck: (fileId: string, signal?: AbortSignal) => waitForCheck(transport, fileId, { signal, pushed: pushedFiles }),
    list: (page: PageOptions = {}) => call<Page<FileOut>>("GET", "/files", { query: { limit: page.limit, cursor: page.cursor }, signal: page.signal }),
    delete: (fileId: string) => call<null>("DELETE", `/files/${fileId}`),
  };

  const threads = {
    create: async (title?: string) => (await call<{ thread: ThreadOut }>("POST", "/threads", { body: title ? { title } : {} })).thread,
    get: async (threadId: string) => (await call<{ thread: ThreadOut }>("GET", `/threads/${threadId}`)).thread,
    list: (page: PageOptions = {}) => call<Page<ThreadOut>>("GET", "/threads", { query: { limit: page.limit, cursor: page.cursor }, signal: page.signal }),
    delete: (threadId: string) => call<null>("DELETE", `/threads/${threadId}`),
    /** Every frame pushed for the thread (new messages, status changes, deltas) while the
     * socket is open; `subscribed` again after each reconnect. Returns the unsubscribe. */
    watch: (threadId: string, onFrame: (frame: Frame) => void): (() => void) => {
      live.follow(threadId, onFrame).catch(() => {}); // no socket: nothing is pushed, nothing to hear
      return () => live.unfollow(threadId, onFrame);
    },
  };

  const messages = {
    /** Saves the message (and its pending reply, unless `generate: false`). A network
     * failure or a 409/5xx is retried with the same Idempotency-Key: saved once. */
    send: (threadId: string, content: string | Part[], sendOptions: SendOptions = {}): Promise<Exchange> => {
      const key = sendOptions.idempotencyKey ?? newKey();
      const body: Record<string, unknown> = { content };
      if (sendOptions.generate !== undefined) body.generate = sendOptions.generate;
      if (sendOptions.model) body.model = sendOptions.model;
      return withRetries(sendOptions.retries ?? 3, sendOptions.signal, () =>
        call<Exchange>("POST", `/threads/${threadId}/messages`, { body, headers: { "Idempotency-Key": key }, signal: sendOptions.signal }),
      );
    },
    /** One page, newest first; pass `nextCursor` back as `cursor` for the next. */
    list: (threadId: string, page: PageOptions = {}) =>
      call<Page<MessageOut>>("GET", `/threads/${threadId}/messages`, { query: { limit: page.limit, cursor: page.cursor }, signal: page.signal }),
    /** Every message, newest first, page after page. */
    async *all(threadId: string, page: Omit<PageOptions, "cursor"> = {}): AsyncGenerator<MessageOut> {
      let cursor: string | undefined;
      do {
        const next = await messages.list(threadId, { ...page, cursor });
        yield* next.items;
        cursor = next.nextCursor ?? undefined;
      } while (cursor);
    },
    get: async (threadId: string, messageId: string) => (await call<{ message: MessageOut }>("GET", `/threads/${threadId}/messages/${messageId}`)).message,
    delete: (threadId: string, messageId: string) => call<null>("DELETE", `/threads/${threadId}/messages/${messageId}`),
  };

  const images = {
    create: (threadId: string, prompt: string, imageOptions: ImageOptions = {}): Promise<Exchange> => {
      const key = imageOptions.idempotencyKey ?? newKey();
      const body: Record<string, unknown> = { prompt };
      if (imageOptions.size) body.size = imageOptions.size;
      if (imageOptions.model) body.model = imageOptions.model;
      return withRetries(3, imageOptions.signal, () =>
        call<Exchange>("POST", `/threads/${threadId}/images`, { body, headers: { "Idempotency-Key": key }, signal: imageOptions.signal }),
      );
    },
  };

  const replies = {
    follow: (threadId: string, messageId: string, handlers?: FollowHandlers): Following => follow(transport, live, threadId, messageId, handlers),
    /** The reply ends `stopped` with what streamed so far (or is returned unchanged once ended). */
    stop: async (threadId: string, messageId: string) => (await call<{ message: MessageOut }>("POST", `/threads/${threadId}/messages/${messageId}/stop`)).message,
    /** The reply's deltas after `after`, as kept for catching up. */
    stream: (threadId: string, messageId: string, after = 0) => call<StreamOut>("GET", `/threads/${threadId}/messages/${messageId}/stream`, { query: { after } }),
  };

  return {
    files,
    threads,
    messages,
    images,
    replies,
    usage: () => call<UsageOut>("GET", "/usage"),
    account: {
      get: async () => (await call<{ account: AccountOut }>("GET", "/account")).account,
      /** Erases every thread, message and file of the account, in the background; writes answer 409 `account_erasing` until it is done. */
      erase: async () => (await call<{ erasure: ErasureOut }>("DELETE", "/account")).erasure,
    },
    exports: {
      /** Starts one ZIP of the account (409 `export_running` while another is being made). */
      create: async () => (await call<{ export: ExportOut }>("POST", "/exports")).export,
      /** Its status; once ready, a short-lived `url` of the ZIP. */
      get: async (exportId: string) => (await call<{ export: ExportOut }>("GET", `/exports/${exportId}`)).export,
    },
    models: () => call<ModelsOut>("GET", "/models"),
    /** Whether replies arrive over the socket right now (else they are polled). */
    get live(): boolean {
      return live.open;
    },
    /** Closes the socket (sign out). */
    close: () => live.close(),
  };
}

export type AgentfilesClient = ReturnType<typeof createClient>;
