// The local stack's web page: a plain client of the HTTP API (no framework, no CDN).
// Files go straight to S3 through presigned PUTs; messages show at once and are
// reconciled with what the server saved; replies arrive over the WebSocket as they are
// written (deltas merged by seq, caught up after a dropped connection), and are polled
// only when no socket can be had.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  token: null,
  sub: null,
  threads: [],
  thread: null,
  messages: [],
  local: [], // optimistic messages not yet confirmed: {key, role, text, images, files, error}
  attachments: [], // {key, name, mediaType, size, progress, status, fileId, previewUrl, reason}
  pollTimer: null,
  socket: null, // the WebSocket while open
  live: false, // pushed frames are arriving: no polling
  socketUrl: null,
  closing: false,
  streams: new Map(), // messageId -> {seq, text} while a reply streams
};

const ENDED = ["success", "failed", "stopped"];

class ApiError extends Error {
  constructor(status, code, message, details) {
    super(`${code}: ${message}`);
    this.status = status;
    this.code = code;
    this.details = details || {};
    // In words a user understands (limits.js), for the page to show.
    this.words = explainError(code, message, this.details);
  }
}

async function api(method, path, body, headers = {}) {
  const init = { method, headers: { ...headers } };
  if (state.token) init.headers.Authorization = `Bearer ${state.token}`;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) {
    const error = (data && data.error) || { code: `http_${response.status}`, message: (data && data.message) || text };
    throw new ApiError(response.status, error.code, error.message, error.details);
  }
  return data;
}

function toast(message) {
  const box = $("toast");
  box.textContent = message;
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, 6000);
}

function fail(error) {
  toast(error instanceof ApiError ? error.words : String(error));
}

// ---- sign in ---------------------------------------------------------------------

async function signIn(sub) {
  const { token } = await api("POST", "/dev/token", { sub });
  state.token = token;
  state.sub = sub;
  sessionStorage.setItem("agentfiles", JSON.stringify({ token, sub }));
  $("signin").hidden = true;
  $("who").hidden = false;
  $("who-name").textContent = sub;
  $("app").hidden = false;
  await openSocket();
  refreshUsage();
  await loadThreads();
}

// ---- push ----------------------------------------------------------------------------

async function openSocket() {
  if (!state.socketUrl) {
    const health = await api("GET", "/health");
    state.socketUrl = health.websocketUrl;
  }
  if (!state.socketUrl) return;
  await new Promise((resolve) => {
    let opened = false;
    const socket = new WebSocket(`${state.socketUrl}/?token=${encodeURIComponent(state.token)}`);
    socket.onopen = () => {
      opened = true;
      state.socket = socket;
      state.live = true;
      if (state.thread) subscribe(state.thread);
      resolve();
    };
    socket.onmessage = (event) => onFrame(JSON.parse(event.data));
    socket.onclose = () => {
      state.socket = null;
      if (!opened) {
        // It never opened: follow replies by polling instead.
        state.live = false;
        resolve();
        return;
      }
      if (!state.closing) setTimeout(() => reconnect().catch(fail), 300);
    };
  });
}

async function reconnect() {
  await openSocket();
  if (!state.live) loadMessages().catch(fail);
}

function subscribe(threadId) {
  if (state.socket) state.socket.send(JSON.stringify({ action: "subscribe", threadId }));
}

function applyDelta(messageId, delta) {
  const stream = state.streams.get(messageId) || { seq: 0, text: "" };
  if (delta.seq <= stream.seq) return; // already had it
  if (delta.reset) stream.text = ""; // the reply started over
  stream.text += delta.text;
  stream.seq = delta.seq;
  state.streams.set(messageId, stream);
}

async function catchUp(messageId) {
  const thread = state.thread;
  const after = (state.streams.get(messageId) || { seq: 0 }).seq;
  const missed = await api("GET", `/threads/${thread}/messages/${messageId}/stream?after=${after}`);
  if (thread !== state.thread) return;
  for (const delta of missed.deltas) applyDelta(messageId, delta);
  renderMessages();
}

function streamingIds() {
  return state.messages.filter((m) => m.role === "assistant" && !ENDED.includes(m.status)).map((m) => m.id);
}

function upsert(message) {
  const index = state.messages.findIndex((m) => m.id === message.id);
  if (index >= 0) state.messages[index] = message;
  else {
    state.messages.push(message);
    state.messages.sort((a, b) => (a.id < b.id ? -1 : 1));
  }
}

function onFrame(frame) {
  if (frame.threadId && frame.threadId !== state.thread) return;
  if (frame.type === "subscribed") {
    // Whatever was pushed while not subscribed comes from the table, by seq.
    for (const id of streamingIds()) catchUp(id).catch(fail);
  } else if (frame.type === "delta") {
    const stream = state.streams.get(frame.messageId) || { seq: 0, text: "" };
    if (frame.seq > stream.seq + 1) {
      catchUp(frame.messageId).catch(fail); // a frame went missing
      return;
    }
    applyDelta(frame.messageId, frame);
    renderMessages();
  } else if (frame.type === "message") {
    const message = frame.message;
    if (ENDED.includes(message.status)) {
      state.streams.delete(message.id);
      if (message.role === "assistant") refreshUsage(); // a reply ended: today's count moved
    }
    const needsUrls = message.content.some((p) => p.fileId && !p.url);
    if (frame.contentOmitted || needsUrls) {
      api("GET", `/threads/${state.thread}/messages/${message.id}`)
        .then(({ message: full }) => {
          upsert(full);
          renderMessages();
        })
        .catch(fail);
      return;
    }
    upsert(message);
    renderMessages();
  } else if (frame.type === "thread_deleted") {
    state.thread = null;
    loadThreads().catch(fail);
  } else if (frame.type === "error") {
    toast(`${frame.error.code}: ${frame.error.message}`);
  }
}

async function stopReply(id) {
  const { message } = await api("POST", `/threads/${state.thread}/messages/${id}/stop`);
  upsert(message);
  renderMessages();
}

function signOut() {
  state.closing = true;
  if (state.socket) state.socket.close();
  sessionStorage.removeItem("agentfiles");
  location.reload();
}

// ---- threads ---------------------------------------------------------------------

async function loadThreads() {
  state.threads = (await api("GET", "/threads?limit=100")).items;
  renderThreads();
  if (!state.thread && state.threads.length) await selectThread(state.threads[0].id);
}

function renderThreads() {
  const list = $("thread-list");
  list.replaceChildren(
    ...state.threads.map((thread) => {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = thread.title || `Thread ${thread.id.slice(-6)}`;
      button.dataset.threadId = thread.id;
      button.setAttribute("aria-current", String(thread.id === state.thread));
      button.addEventListener("click", () => selectThread(thread.id).catch(fail));
      item.append(button);
      return item;
    }),
  );
}

async function newThread() {
  const title = `Chat ${new Date().toLocaleTimeString()}`;
  const { thread } = await api("POST", "/threads", { title });
  state.thread = thread.id;
  await loadThreads();
  await selectThread(thread.id);
}

async function selectThread(id) {
  if (state.thread && state.thread !== id && state.socket) {
    state.socket.send(JSON.stringify({ action: "unsubscribe", threadId: state.thread }));
  }
  state.thread = id;
  state.local = [];
  state.streams = new Map();
  subscribe(id);
  renderThreads();
  $("empty").hidden = true;
  $("composer").hidden = false;
  await loadMessages();
}

// ---- messages --------------------------------------------------------------------

async function loadMessages() {
  if (!state.thread) return;
  const thread = state.thread;
  const page = await api("GET", `/threads/${thread}/messages?limit=100`);
  if (thread !== state.thread) return;
  state.messages = page.items.slice().reverse();
  renderMessages();
  clearTimeout(state.pollTimer);
  if (state.live) {
    // Pushed from here on; what streamed before this page was read comes by seq.
    for (const id of streamingIds()) catchUp(id).catch(fail);
  } else if (streamingIds().length) {
    state.pollTimer = setTimeout(() => loadMessages().catch(fail), 400);
  } else {
    refreshUsage(); // replies ended (and pictures were stored): today's count moved
  }
}

function partElement(part) {
  if (part.type === "text") {
    const text = document.createElement("div");
    text.className = "text";
    text.textContent = part.text;
    return text;
  }
  const source = part.url || (part.data ? `data:${part.mediaType};base64,${part.data}` : null);
  if (part.type === "image" && source) {
    const image = document.createElement("img");
    image.src = source;
    image.alt = part.filename || "image";
    return image;
  }
  const link = document.createElement("a");
  link.className = "file";
  link.textContent = `📎 ${part.filename || part.fileId || "file"}`;
  if (source) {
    link.href = source;
    link.download = part.filename || "";
  }
  return link;
}

function messageElement(message) {
  const item = document.createElement("li");
  item.className = `message ${message.role} status-${message.status}`;
  item.dataset.messageId = message.id;
  item.dataset.status = message.status;
  const meta = document.createElement("div");
  meta.className = "meta";
  meta.textContent = message.role === "user"
    ? "you"
    : ["assistant", message.model, message.status === "success" ? null : message.status].filter(Boolean).join(" · ");
  item.append(meta);
  const stream = state.streams.get(message.id);
  const streaming = message.role === "assistant" && !ENDED.includes(message.status);
  let parts = message.content.length ? message.content : [{ type: "text", text: "" }];
  if (streaming && stream) parts = [{ type: "text", text: stream.text }];
  for (const part of parts) item.append(partElement(part));
  if (streaming) {
    const stop = document.createElement("button");
    stop.type = "button";
    stop.className = "stop";
    stop.textContent = "Stop";
    stop.addEventListener("click", () => stopReply(message.id).catch(fail));
    item.append(stop);
  }
  if (message.error) {
    const error = document.createElement("div");
    error.className = "error";
    error.dataset.code = message.error.code;
    error.title = `${message.error.code}: ${message.error.message}`;
    error.textContent = explainError(message.error.code, message.error.message);
    item.append(error);
  }
  const remove = document.createElement("button");
  remove.type = "button";
  remove.className = "delete";
  remove.title = "Delete this message";
  remove.setAttribute("aria-label", "Delete this message");
  remove.textContent = "✕";
  remove.addEventListener("click", () => deleteMessage(message.id).catch(fail));
  item.append(remove);
  return item;
}

function localElement(local) {
  const item = document.createElement("li");
  item.className = "message user local";
  item.dataset.local = "true";
  item.dataset.key = local.key;
  const meta = document.createElement("div");
  meta.className = "meta";
  meta.textContent = local.error ? "not sent" : "sending…";
  item.append(meta);
  if (local.text) item.append(partElement({ type: "text", text: local.text }));
  for (const attachment of local.attachments) {
    if (attachment.previewUrl) {
      item.append(partElement({ type: "image", url: attachment.previewUrl, filename: attachment.name }));
    } else {
      item.append(partElement({ type: "file", filename: attachment.name }));
    }
  }
  if (local.error) {
    const error = document.createElement("div");
    error.className = "error";
    error.textContent = local.error;
    item.append(error);
  }
  return item;
}

// Rendered messages, reused while unchanged: every read mints new file URLs, and
// redrawing an image for a new URL on each poll would make it flicker.
const rendered = new Map();

function renderedMessage(message) {
  const stream = state.streams.get(message.id);
  const signature = `${message.status}|${message.updatedAt}|${stream ? stream.seq : ""}|${JSON.stringify(message.content.map((p) => p.text || p.fileId || ""))}`;
  const cached = rendered.get(message.id);
  if (cached && cached.signature === signature) return cached.element;
  const element = messageElement(message);
  rendered.set(message.id, { signature, element });
  return element;
}

function renderMessages() {
  const list = $("messages");
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  list.replaceChildren(...state.messages.map(renderedMessage), ...state.local.map(localElement));
  if (atBottom || state.local.length) list.scrollTop = list.scrollHeight;
}

async function deleteMessage(id) {
  await api("DELETE", `/threads/${state.thread}/messages/${id}`);
  await loadMessages();
  refreshUsage();
}

// ---- attachments -----------------------------------------------------------------

async function sha256Hex(buffer) {
  const digest = await crypto.subtle.digest("SHA-256", buffer);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function mediaTypeOf(file) {
  if (file.type) return file.type;
  const extension = file.name.split(".").pop().toLowerCase();
  return { md: "text/markdown", csv: "text/csv", json: "application/json", txt: "text/plain" }[extension]
    || "application/octet-stream";
}

function renderAttachments() {
  $("attachments").replaceChildren(
    ...state.attachments.map((attachment) => {
      const item = document.createElement("li");
      item.className = `attachment ${attachment.status}`;
      item.dataset.status = attachment.status;
      item.dataset.name = attachment.name;
      const name = document.createElement("span");
      name.textContent = attachment.name;
      const progress = document.createElement("progress");
      progress.max = 100;
      progress.value = attachment.progress;
      const status = document.createElement("span");
      status.className = "attachment-status";
      status.textContent = attachment.reason || attachment.status;
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "quiet";
      remove.textContent = "✕";
      remove.setAttribute("aria-label", `Remove ${attachment.name}`);
      remove.addEventListener("click", () => {
        state.attachments = state.attachments.filter((a) => a !== attachment);
        renderAttachments();
      });
      item.append(name, progress, status, remove);
      return item;
    }),
  );
  const busy = state.attachments.some((a) => a.status === "uploading" || a.status === "checking");
  $("send").disabled = busy;
}

function put(upload, body, onProgress) {
  // XMLHttpRequest reports upload progress; fetch does not.
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open(upload.method, upload.url);
    for (const [name, value] of Object.entries(upload.headers)) request.setRequestHeader(name, value);
    request.upload.onprogress = (event) => {
      if (event.lengthComputable) onProgress(Math.round((event.loaded * 100) / event.total));
    };
    request.onload = () => (request.status < 300 ? resolve() : reject(new Error(`S3 answered ${request.status}`)));
    request.onerror = () => reject(new Error("the upload did not reach S3"));
    request.send(body);
  });
}

async function waitUntilChecked(fileId) {
  for (;;) {
    const { file } = await api("GET", `/files/${fileId}`);
    if (file.status !== "pending") return file;
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
}

async function attach(file) {
  const attachment = {
    key: crypto.randomUUID(), name: file.name, mediaType: mediaTypeOf(file), size: file.size,
    progress: 0, status: "uploading", fileId: null, reason: null,
    previewUrl: file.type.startsWith("image/") ? URL.createObjectURL(file) : null,
  };
  state.attachments.push(attachment);
  renderAttachments();
  try {
    const buffer = await file.arrayBuffer();
    const registered = await api("POST", "/files/uploads", {
      filename: file.name, mediaType: attachment.mediaType, size: file.size, sha256: await sha256Hex(buffer),
    });
    attachment.fileId = registered.file.id;
    if (registered.upload) {
      await put(registered.upload, buffer, (percent) => {
        attachment.progress = percent;
        renderAttachments();
      });
      attachment.status = "checking";
      attachment.progress = 100;
      renderAttachments();
      const checked = await waitUntilChecked(attachment.fileId);
      attachment.status = checked.status;
      if (checked.rejection) attachment.reason = `rejected: ${checked.rejection.message}`;
    } else {
      attachment.progress = 100;
      attachment.status = "ready";
      attachment.reason = "already uploaded";
    }
  } catch (error) {
    attachment.status = "failed";
    attachment.reason = error instanceof ApiError ? error.words : String(error.message || error);
  }
  renderAttachments();
  refreshUsage();
}

// ---- sending -----------------------------------------------------------------------

async function send(event) {
  event.preventDefault();
  const text = $("text").value.trim();
  const attachments = state.attachments.filter((a) => a.status === "ready");
  if (!text && !attachments.length) return;
  const key = crypto.randomUUID();
  const local = { key, text, attachments, error: null };
  state.local.push(local);
  $("text").value = "";
  state.attachments = [];
  renderAttachments();
  renderMessages();
  const content = [];
  if (text) content.push({ type: "text", text });
  for (const a of attachments) {
    content.push(a.mediaType.startsWith("image/") ? { type: "image", fileId: a.fileId } : { type: "file", fileId: a.fileId });
  }
  try {
    await api("POST", `/threads/${state.thread}/messages`, { content }, { "Idempotency-Key": key });
    state.local = state.local.filter((l) => l.key !== key);
    await loadMessages();
  } catch (error) {
    local.error = error instanceof ApiError ? error.words : String(error);
    renderMessages();
    fail(error);
  }
}

async function draw() {
  const prompt = $("text").value.trim();
  if (!prompt) {
    toast("Describe the image to generate in the message box.");
    return;
  }
  const key = crypto.randomUUID();
  const local = { key, text: `🎨 ${prompt}`, attachments: [], error: null };
  state.local.push(local);
  $("text").value = "";
  renderMessages();
  try {
    await api("POST", `/threads/${state.thread}/images`, { prompt, size: "256x256" }, { "Idempotency-Key": key });
    state.local = state.local.filter((l) => l.key !== key);
    await loadMessages();
  } catch (error) {
    local.error = error instanceof ApiError ? error.words : String(error);
    renderMessages();
    fail(error);
  }
}

// ---- wiring --------------------------------------------------------------------------

function wire() {
  $("signin").addEventListener("submit", (event) => {
    event.preventDefault();
    signIn($("sub").value.trim()).catch(fail);
  });
  $("signout").addEventListener("click", signOut);
  $("new-thread").addEventListener("click", () => newThread().catch(fail));
  $("composer").addEventListener("submit", (event) => send(event).catch(fail));
  $("draw").addEventListener("click", () => draw().catch(fail));
  $("text").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      $("composer").requestSubmit();
    }
  });
  $("file-input").addEventListener("change", (event) => {
    for (const file of event.target.files) attach(file);
    event.target.value = "";
  });
  const drop = $("drop");
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    for (const file of event.dataTransfer.files) attach(file);
  });
  const saved = JSON.parse(sessionStorage.getItem("agentfiles") || "null");
  if (saved) signIn(saved.sub).catch(fail);
}

wire();
