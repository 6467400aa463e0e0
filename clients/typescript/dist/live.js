import { AgentfilesError, aborted } from "./errors.js";
import { backoff, request, sleep } from "./http.js";
export const ENDED = ["success", "failed", "stopped"];
// How long a followed reply may stay silent on an open socket before its stream is read.
const QUIET_MS = 10_000;
/** One WebSocket for the whole client, opened when something follows a thread and
 * reopened with backoff when it drops; each thread followed is subscribed again on every
 * open, and its listeners hear `subscribed` again (their cue to catch up by seq). */
export class LiveSocket {
    url;
    getToken;
    WebSocketImpl;
    socket = null;
    opening = null;
    listeners = new Map();
    /** Who hears the frames of the account (a settled upload, an export), thread or not. */
    accountListeners = new Set();
    attempt = 0;
    closed = false;
    /** Set once a connection could not be opened at all: followers poll instead. */
    unavailable = false;
    constructor(url, getToken, WebSocketImpl) {
        this.url = url;
        this.getToken = getToken;
        this.WebSocketImpl = WebSocketImpl;
    }
    get open() {
        return this.socket !== null;
    }
    /** Follow a thread's frames; returns whether a socket is open for it. */
    async follow(threadId, listener) {
        let set = this.listeners.get(threadId);
        const first = !set;
        if (!set)
            this.listeners.set(threadId, (set = new Set()));
        set.add(listener);
        const open = await this.connect();
        if (open && first)
            this.send({ action: "subscribe", threadId });
        else if (open)
            listener({ type: "subscribed", threadId });
        return open;
    }
    unfollow(threadId, listener) {
        const set = this.listeners.get(threadId);
        if (!set)
            return;
        set.delete(listener);
        if (set.size)
            return;
        this.listeners.delete(threadId);
        this.send({ action: "unsubscribe", threadId });
    }
    /** Hear the account's frames while the socket is open (it is not opened for this);
     * returns the remover. */
    onAccount(listener) {
        this.accountListeners.add(listener);
        return () => this.accountListeners.delete(listener);
    }
    /** Close the socket for good (signing out). */
    close() {
        this.closed = true;
        this.socket?.close();
        this.socket = null;
    }
    send(frame) {
        if (this.socket && this.socket.readyState === 1)
            this.socket.send(JSON.stringify(frame));
    }
    connect() {
        if (this.socket)
            return Promise.resolve(true);
        if (this.unavailable || this.closed || !this.WebSocketImpl)
            return Promise.resolve(false);
        this.opening ??= this.openOnce().finally(() => (this.opening = null));
        return this.opening;
    }
    async openOnce() {
        const base = await this.url().catch(() => null);
        if (!base || !this.WebSocketImpl) {
            this.unavailable = true;
            return false;
        }
        let token;
        try {
            token = await this.getToken();
        }
        catch {
            return false; // no token yet: the HTTP calls will say why
        }
        const Impl = this.WebSocketImpl;
        return new Promise((resolve) => {
            let opened = false;
            let socket;
            try {
                socket = new Impl(`${base.replace(/\/$/, "")}/?token=${encodeURIComponent(token)}`);
            }
            catch {
                this.unavailable = true; // not a URL this platform can open: poll
                return resolve(false);
            }
            socket.onopen = () => {
                opened = true;
                this.attempt = 0;
                this.socket = socket;
                for (const threadId of this.listeners.keys())
                    this.send({ action: "subscribe", threadId });
                resolve(true);
            };
            socket.onmessage = (event) => {
                let frame;
                try {
                    frame = JSON.parse(String(event.data));
                }
                catch {
                    return;
                }
                this.dispatch(frame);
            };
            let refused = false;
            const refuse = () => {
                // Refused or unreachable at the upgrade (some platforms report it as an error and
                // never close): nobody waits for it; replies are polled.
                if (opened || refused)
                    return;
                refused = true;
                if (this.attempt === 0)
                    this.unavailable = true;
                resolve(false);
            };
            socket.onerror = refuse;
            socket.onclose = () => {
                if (this.socket === socket)
                    this.socket = null;
                if (!opened)
                    return refuse();
                if (!this.closed && this.listeners.size)
                    this.reconnect();
            };
        });
    }
    reconnect() {
        const delay = backoff(this.attempt++);
        setTimeout(() => {
            if (this.closed || this.socket)
                return;
            this.connect().then((open) => {
                if (!open && !this.closed && this.listeners.size) {
                    // The socket came back refused or unreachable: the followers poll until it does.
                    for (const [threadId, set] of this.listeners)
                        for (const listener of set)
                            listener({ type: "unsubscribed", threadId });
                    this.unavailable = false;
                    this.reconnect();
                }
            });
        }, delay);
    }
    dispatch(frame) {
        const threadId = frame.threadId;
        const targets = threadId ? [this.listeners.get(threadId)] : [...this.listeners.values(), this.accountListeners];
        for (const set of targets)
            for (const listener of set ?? [])
                listener(frame);
    }
}
/** Subscribes, merges deltas by seq (buffering what arrives early, asking the catch-up
 * route for what is missing), keeps following through dropped connections, polls with
 * backoff while there is no socket, and ends on the final message. */
export function follow(transport, socket, threadId, messageId, handlers = {}) {
    let seq = 0;
    let text = "";
    const early = new Map();
    let finished = false;
    let ending = false; // the final message is in: no more catching up
    let catching = null;
    let again = false;
    let live = false;
    let resolveDone;
    let rejectDone;
    const done = new Promise((resolve, reject) => {
        resolveDone = resolve;
        rejectDone = reject;
    });
    const base = `/threads/${threadId}/messages/${messageId}`;
    const apply = (delta) => {
        if (delta.seq <= seq)
            return; // had it already
        early.set(delta.seq, delta);
        while (early.has(seq + 1)) {
            const next = early.get(seq + 1);
            early.delete(seq + 1);
            seq = next.seq;
            text = next.reset ? next.text : text + next.text;
            handlers.onDelta?.(next);
            handlers.onText?.(text, next);
        }
        if (early.size && !ending)
            void catchUp(); // a frame went missing: the table has it
    };
    const fail = (error) => {
        if (finished)
            return;
        finished = true;
        socket.unfollow(threadId, onFrame);
        rejectDone(error);
    };
    const finish = async (message) => {
        if (finished || ending)
            return;
        ending = true;
        const last = message.lastSeq ?? 0;
        if (last > seq) {
            // Every delta, in order, before the end (one read: what is no longer kept is not waited for).
            try {
                const stream = await request(transport, "GET", `${base}/stream`, { query: { after: seq }, signal: handlers.signal });
                for (const delta of stream.deltas)
                    apply(delta);
            }
            catch (error) {
                ending = false;
                return fail(error);
            }
        }
        if (finished)
            return;
        finished = true;
        socket.unfollow(threadId, onFrame);
        handlers.onMessage?.(message);
        resolveDone(message);
    };
    const readMessage = async () => (await request(transport, "GET", base, { signal: handlers.signal })).message;
    // One catch-up at a time; asked for again while one runs, it runs once more after.
    const catchUp = () => {
        if (catching) {
            again = true;
            return catching;
        }
        catching = (async () => {
            do {
                again = false;
                const stream = await request(transport, "GET", `${base}/stream`, { query: { after: seq }, signal: handlers.signal });
                for (const delta of stream.deltas)
                    apply(delta);
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
    const onFrame = (frame) => {
        if (finished)
            return;
        quietSince = Date.now();
        if (frame.type === "subscribed") {
            live = true;
            void catchUp(); // whatever was written while not subscribed
        }
        else if (frame.type === "unsubscribed") {
            live = false;
            void poll();
        }
        else if (frame.type === "delta" && frame.messageId === messageId) {
            apply(frame);
        }
        else if (frame.type === "message" && frame.message.id === messageId) {
            if (!ENDED.includes(frame.message.status))
                return handlers.onMessage?.(frame.message);
            if (frame.contentOmitted)
                readMessage().then(finish, fail);
            else
                void finish(frame.message);
        }
        else if (frame.type === "thread_deleted") {
            fail(new AgentfilesError(404, "thread_not_found", "the thread was deleted"));
        }
        else if (frame.type === "error" && frame.threadId === threadId) {
            fail(new AgentfilesError(404, frame.error.code, frame.error.message));
        }
    };
    let polling = false;
    const poll = async () => {
        if (polling)
            return;
        polling = true;
        try {
            for (let attempt = 0; !finished && !live; attempt++) {
                await catchUp();
                if (finished || live)
                    break;
                await sleep(Math.min(2000, 200 * 1.5 ** attempt), handlers.signal);
            }
        }
        catch (error) {
            fail(error);
        }
        finally {
            polling = false;
        }
    };
    // Pushing is best effort: a follower that hears nothing for a while reads the stream.
    let quietSince = Date.now();
    const watchdog = setInterval(() => {
        if (finished)
            return clearInterval(watchdog);
        if (live && Date.now() - quietSince > QUIET_MS) {
            quietSince = Date.now();
            void catchUp();
        }
    }, QUIET_MS / 2);
    done.then(() => clearInterval(watchdog), () => clearInterval(watchdog));
    handlers.signal?.addEventListener("abort", () => fail(aborted()), { once: true });
    socket.follow(threadId, onFrame).then((open) => {
        if (!open)
            void poll();
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
            if (finished)
                return;
            finished = true;
            socket.unfollow(threadId, onFrame);
        },
    };
}
