import type { FileOut } from "./files.js";
import type { components } from "./schema.js";
import { AgentfilesError, aborted } from "./errors.js";
import { type Transport, backoff, request, sleep } from "./http.js";

export type MessageOut = components["schemas"]["MessageOut"];
export type StreamOut = components["schemas"]["StreamOut"];
export type Delta = components["schemas"]["DeltaOut"];

/** The WebSocket protocol's server frames (the README's frames table). */
export type Frame =
  | { type: "subscribed"; threadId: string }
  | { type: "unsubscribed"; threadId: string }
  | { type: "delta"; threadId: string; messageId: string; seq: number; text: string; reset?: boolean }
  | { type: "message"; threadId: string; message: MessageOut; contentOmitted?: boolean }
  | { type: "thread_deleted"; threadId: string }
  /** To every open socket of the owner: an upload was settled (ready or rejected). */
  | { type: "file"; file: FileOut }
  | { type: "export"; export: { id: string; status: string } }
  | { type: "account_erased" }
  | { type: "error"; threadId?: string; error: { code: string; message: string } };

export const ENDED: readonly string[] = ["success", "failed", "stopped"];
// How long a followed reply may stay silent on an open socket before its stream is read.
const QUIET_MS = 10_000;

type WebSocketClass = new (url: string) => WebSocket;
type Listener = (frame: Frame) => void;

/** One WebSocket for the whole client, opened when something follows a thread and
 * reopened with backoff when it drops; each thread followed is subscribed again on every
 * open, and its listeners hear `subscribed` again (their cue to catch up by seq). */
export class LiveSocket {
  private socket: WebSocket | null = null;
  private opening: Promise<boolean> | null = null;
  private readonly listeners = new Map<string, Set<Listener>>();
  /** Who hears the frames of the account (a settled upload, an export), thread or not. */
  private readonly accountListeners = new Set<Listener>();
  private attempt = 0;
  private closed = false;
  /** Set once a connection could not be opened at all: followers poll instead. */
  unavailable = false;

  constructor(
    private readonly url: () => Promise<string | null>,
    private readonly getToken: () => string | Promise<string>,
    private readonly WebSocketImpl: WebSocketClass | undefined,
  ) {}

  get open(): boolean {
    return this.socket !== null;
  }

  /** Follow a thread's frames; returns whether a socket is open for it. */
  async follow(threadId: string, listener: Listener): Promise<boolean> {
    let set = this.listeners.get(threadId);
    const first = !set;
    if (!set) this.listeners.set(threadId, (set = new Set()));
    set.add(listener);
    const open = await this.connect();
    if (open && first) this.send({ action: "subscribe", threadId });
    else if (open) listener({ type: "subscribed", threadId });
    return open;
  }

  unfollow(threadId: string, listener: Listener): void {
    const set = this.listeners.get(threadId);
    if (!set) return;
    set.delete(listener);
    if (set.size) return;
    this.listeners.delete(threadId);
    this.send({ action: "unsubscribe", threadId });
  }

  /** Hear the account's frames while the socket is open (it is not opened for this);
   * returns the remover. */
  onAccount(listener: Listener): () => void {
    this.accountListeners.add(listener);
    return () => this.accountListeners.delete(listener);
  }

  /** Close the socket for good (signing out). */
  close(): void {
    this.closed = true;
    this.socket?.close();
    this.socket = null;
  }

  private send(frame: object): void {
    if (this.socket && this.socket.readyState === 1) this.socket.send(JSON.stringify(frame));
  }

  private connect(): Promise<boolean> {
    if (this.socket) return Promise.resolve(true);
    if (this.unavailable || this.closed || !this.WebSocketImpl) return Promise.resolve(false);
    this.opening ??= this.openOnce().finally(() => (this.opening = null));
    return this.opening;
  }

  private async openOnce(): Promise<boolean> {
    const base = await this.url().catch(() => null);
    if (!base || !this.WebSocketImpl) {
      this.unavailable = true;
      return false;
    }
    let token: string;
    try {
      token = await this.getToken();
    } catch {
      return false; // no token yet: the HTTP calls will say why
    }
    const Impl = this.WebSocketImpl;
    return new Promise<boolean>((resolve) => {
      let opened = false;
      let socket: WebSocket;
      try {
        socket = new Impl(`${base.replace(/\/$/, "")}/?token=${encodeURIComponent(token)}`);
      } catch {
        this.unavailable = true; // not a URL this platform can open: poll
        return resolve(false);
      }
      socket.onopen = () => {
        opened = true;
        this.attempt = 0;
        this.socket = socket;
        for (const threadId of this.listeners.keys()) this.send({ action: "subscribe", threadId });
        resolve(true);
      };
      socket.onmessage = (event: MessageEvent) => {
        let frame: Frame;
        try {
          frame = JSON.parse(String(event.data)) as Frame;
        } catch {
          return;
        }
        this.dispatch(frame);
      };
      let refused = false;
      const refuse = () => {
        // Refused or unreachable at the upgrade (some platforms report it as an error and
        // never close): nobody waits for it; replies are polled.
        if (opened || refused) return;
        refused = true;
        if (this.attempt === 0) this.unavailable = true;
        resolve(false);
      };
      socket.onerror = refuse;
      socket.onclose = () => {
        if (this.socket === socket) this.socket = null;
        if (!opened) return refuse();
        if (!this.closed && this.listeners.size) this.reconnect();
      };
    });
  }

  private reconnect(): void {
    const delay = backoff(this.attempt++);
    setTimeout(() => {
      if (this.closed || this.socket) return;
      this.connect().then((open) => {
        if (!open && !this.closed && this.listeners.size) {
          // The socket came back refused or unreachable: the followers poll until it does.
          for (const [threadId, set] of this.listeners) for (const listener of set) listener({ type: "unsubscribed", threadId });
          this.unavailable = false;
          this.reconnect();
        }
      });
    }, delay);
  }

  private dispatch(frame: Frame): void {
    const threadId = (frame as { threadId?: string }).threadId;
    const targets = threadId ? [this.listeners.get(threadId)] : [...this.listeners.values(), this.accountListeners];
    for (const set of targets) for (const listener of set ?? []) listener(frame);
  }
}

export interface FollowHandlers {
  /** The reply's text so far, after each delta applied in seq order. */
  onText?: (text: string, delta: Delta) => void;
  /** Each delta once, in seq order, with no gap (a `reset` one starts the text over). */
  onDelta?: (delta: Delta) => void;
  /** The reply as the server last said it (status changes, the final message). */
  onMessage?: (message: MessageOut) => void;
  signal?: AbortSignal;
}

export interface Following {
  /** The ended reply (`success`, `failed` or `stopped`), with its whole content. */
  readonly done: Promise<MessageOut>;
  /** The text merged from the deltas so far. */
  readonly text: string;
  readonly lastSeq: number;
  /** Stop listening (the reply goes on). */
  close(): void;
}

/** Subscribes, merges deltas by seq (buffering what arrives early, asking the catch-up
 * route for what is missing), keeps following through dropped connections, polls with
 * backoff while there is no socket, and ends on the final message. */
export function follow(transport: Transport, socket: LiveSocket, threadId: string, messageId: string, handlers: FollowHandlers = {}): Following {
  let seq = 0;
  let text = "";
  const early = new Map<number, Delta>();
  let finished = false;
  let ending = false; // the final message is in: no more catching up
  let catching: Promise<void> | null = null;
  let again = false;
  let live = false;
  let resolveDone!: (message: MessageOut) => void;
  let rejectDone!: (error: unknown) => void;
  const done = new Promise<MessageOut>((resolve, reject) => {
    resolveDone = resolve;
    rejectDone = reject;
  });
  const base = `/threads/${threadId}/messages/${messageId}`;

  const apply = (delta: Delta) => {
    if (delta.seq <= seq) return; // had it already
    early.set(delta.seq, delta);
    while (early.has(seq + 1)) {
      const next = early.get(seq + 1)!;
      early.delete(seq + 1);
      seq = next.seq;
      text = next.reset ? next.text : text + next.text;
      handlers.onDelta?.(next);
      handlers.onText?.(text, next);
    }
    if (early.size && !ending) void catchUp(); // a frame went missing: the table has it
  };

  const fail = (error: unknown) => {
    if (finished) return;
    finished = true;
    socket.unfollow(threadId, onFrame);
    rejectDone(error);
  };

  const finish = async (message: MessageOut) => {
    if (finished || ending) return;
    ending = true;
    const last = (message as { lastSeq?: number | null }).lastSeq ?? 0;
    if (last > seq) {
      // Every delta, in order, before the end (one read: what is no longer kept is not waited for).
      try {
        const stream = await request<StreamOut>(transport, "GET", `${base}/stream`, { query: { after: seq }, signal: handlers.signal });
        for (const delta of stream.deltas) apply(delta);
      } catch (error) {
        ending = false;
        return fail(error);
      }
    }
    if (finished) return;
    finished = true;
    socket.unfollow(threadId, onFrame);
    handlers.onMessage?.(message);
    resolveDone(message);
  };

  const readMessage = async () => (await request<{ message: MessageOut }>(transport, "GET", base, { signal: handlers.signal })).message;

  // One catch-up at a time; asked for again while one runs, it runs once more after.
  const catchUp = (): Promise<void> => {
    if (catching) {
      again = true;
      return catching;
    }
    catching = (async () => {
      do {
        again = false;
        const stream = await request<StreamOut>(transport, "GET", `${base}/stream`, { query: { after: seq }, signal: handlers.signal });
        for (const delta of stream.deltas) apply(delta);
        if (ENDED.includes(stream.status) && !finished && !ending) {
          const message = await readMessage();
          catching = null;
          await finish(message);
          return;
        }
      } while (again && !finished);
    })()
      .catch(fail)
      .finally(() => (catching = null));
    return catching;
  };

  const onFrame = (frame: Frame) => {
    if (finished) return;
    quietSince = Date.now();
    if (frame.type === "subscribed") {
      live = true;
      void catchUp(); // whatever was written while not subscribed
    } else if (frame.type === "unsubscribed") {
      live = false;
      void poll();
    } else if (frame.type === "delta" && frame.messageId === messageId) {
      apply(frame);
    } else if (frame.type === "message" && frame.message.id === messageId) {
      if (!ENDED.includes(frame.message.status)) return handlers.onMessage?.(frame.message);
      if (frame.contentOmitted) readMessage().then(finish, fail);
      else void finish(frame.message);
    } else if (frame.type === "thread_deleted") {
      fail(new AgentfilesError(404, "thread_not_found", "the thread was deleted"));
    } else if (frame.type === "error" && frame.threadId === threadId) {
      fail(new AgentfilesError(404, frame.error.code, frame.error.message));
    }
  };

  let polling = false;
  const poll = async () => {
    if (polling) return;
    polling = true;
    try {
      for (let attempt = 0; !finished && !live; attempt++) {
        await catchUp();
        if (finished || live) break;
        await sleep(Math.min(2000, 200 * 1.5 ** attempt), handlers.signal);
      }
    } catch (error) {
      fail(error);
    } finally {
      polling = false;
    }
  };

  // Pushing is best effort: a follower that hears nothing for a while reads the stream.
  let quietSince = Date.now();
  const watchdog = setInterval(() => {
    if (finished) return clearInterval(watchdog);
    if (live && Date.now() - quietSince > QUIET_MS) {
      quietSince = Date.now();
      void catchUp();
    }
  }, QUIET_MS / 2);
  done.then(() => clearInterval(watchdog), () => clearInterval(watchdog));

  handlers.signal?.addEventListener("abort", () => fail(aborted()), { once: true });
  socket.follow(threadId, onFrame).then((open) => {
    if (!open) void poll();
  }, fail);

  return {
    done,
    get text() {
      return text;
    },
    get lastSeq() {
      return seq;
    },
    close() {
      clearInterval(watchdog);
      if (finished) return;
      finished = true;
      socket.unfollow(threadId, onFrame);
    },
  };
}
