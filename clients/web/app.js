// The local stack's web page: a plain client of the API (no framework, no CDN, no build),
// on the TypeScript client's compiled module. The client does the protocol: presigned
// uploads with progress and the check, sends with an Idempotency-Key, replies followed
// over the WebSocket (deltas merged by seq, caught up after a drop, polled without a
// socket), stop. This file only draws what it reports.
import { AgentfilesError, ENDED, createClient } from "/static/client/index.js";
import { explainError, refreshUsage } from "/static/limits.js";

const $ = (id) => document.getElementById(id);
const SESSION = "agentfiles";
const state = {
  client: null,
  token: null,
  sub: null,
  threads: [],
  thread: null,
  unwatch: null, // stops following the open thread's frames
  messages: [],
  local: [], // optimistic messages not yet confirmed: {key, text, attachments, error}
  attachments: [], // {key, name, mediaType, progress, status, fileId, previewUrl, reason}
  follows: new Map(), // messageId -> the client's Following, while a reply streams
  pinned: true, // the list stays scrolled to its bottom (until the user scrolls up)
};

function words(error) {
  if (error instanceof AgentfilesError) return explainError(error.code, error.message, error.details);
  return String((error && error.message) || error);
}

function toast(message) {
  const box = $("toast");
  box.textContent = message;
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, 6000);
}

function fail(error) {
  if (error instanceof AgentfilesError && error.code === "aborted") return;
  toast(words(error));
}

function remember() {
  sessionStorage.setItem(SESSION, JSON.stringify({ sub: state.sub, thread: state.thread }));
}

// ---- sign in ---------------------------------------------------------------------

async function localToken(sub) {
  // The local stack's own token issuer (on AWS, the user pool's sign-in gives the token).
  const response = await fetch("/dev/token", { method: "POST", body: JSON.stringify({ sub }) });
  const body = await response.json();
  if (!response.ok) throw new AgentfilesError(response.status, body.error.code, body.error.message);
  return body.token;
}

async function signIn(sub, thread = null) {
  state.token = await localToken(sub);
  state.sub = sub;
  state.client = createClient({ baseUrl: location.origin, getToken: () => state.token });
  remember();
  $("welcome").hidden = true;
  $("who").hidden = false;
  $("who-name").textContent = sub;
  $("app").hidden = false;
  refreshUsage(state.client);
  await loadThreads(thread);
}

function signOut() {
  if (state.client) state.client.close();
  sessionStorage.removeItem(SESSION);
  location.reload();
}

// ---- your data: export and erasure ---------------------------------------------

async function downloadMyData() {
  const button = $("export");
  button.disabled = true;
  $("export-text").textContent = "Making your export…";
  try {
    let made = await state.client.exports.create();
    while (made.status === "pending") {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      made = await state.client.exports.get(made.id);
    }
    if (made.status !== "ready") throw new Error("the export failed; try again");
    const link = document.createElement("a");
    link.href = made.url;
    link.download = `agentfiles-export-${made.id}.zip`;
    document.body.append(link);
    link.click();
    link.remove();
    $("export-text").textContent = `Your export is ready (${Math.ceil(made.bytes / 1024)} KiB).`;
  } finally {
    button.disabled = false;
  }
}

async function deleteMyAccount() {
  const sure = confirm(
    `Delete the account ${state.sub}? Every thread, message and file goes, for good. ` +
      "Download your data first if you want to keep it.",
  );
  if (!sure) return;
  await state.client.account.erase();
  toast("Your account is being deleted.");
  setTimeout(signOut, 1500);
}

// ---- threads ---------------------------------------------------------------------

async function loadThreads(preferred = null) {
  state.threads = (await state.client.threads.list({ limit: 100 })).items;
  renderThreads();
  const known = (id) => id && state.threads.some((t) => t.id === id);
  const next = known(preferred) ? preferred : known(state.thread) ? state.thread : state.threads[0]?.id;
  if (next && next !== state.thread) await selectThread(next);
}

function renderThreads() {
  $("thread-list").replaceChildren(
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
  const thread = await state.client.threads.create(`Chat ${new Date().toLocaleTimeString()}`);
  state.threads.unshift(thread);
  await selectThread(thread.id);
}

async function selectThread(id) {
  if (state.unwatch) state.unwatch();
  for (const following of state.follows.values()) following.close();
  state.follows = new Map();
  state.thread = id;
  state.local = [];
  state.messages = [];
  state.pinned = true;
  remember();
  renderThreads();
  $("empty").hidden = true;
  $("composer").hidden = false;
  state.unwatch = state.client.threads.watch(id, onFrame);
  await loadMessages();
}

// ---- messages --------------------------------------------------------------------

async function loadMessages() {
  const thread = state.thread;
  const page = await state.client.messages.list(thread, { limit: 100 });
  if (thread !== state.thread) return;
  state.messages = page.items.slice().reverse();
  renderMessages();
  for (const message of state.messages) followIfStreaming(message);
}

const STAGE = { pending: 0, streaming: 1 }; // any other status is an end

function stage(message) {
  return STAGE[message.status] ?? 2;
}

// Pushed frames can overtake the answer of the request that caused them: an older view of
// a message (the pending reply a send answers with) never replaces a newer one.
function upsert(message) {
  const index = state.messages.findIndex((m) => m.id === message.id);
  const known = index >= 0 ? state.messages[index] : null;
  if (known && (stage(known) > stage(message) || known.updatedAt > message.updatedAt)) return;
  if (index >= 0) state.messages[index] = message;
  else {
    state.messages.push(message);
    state.messages.sort((a, b) => (a.id < b.id ? -1 : 1));
  }
}

// A message as pushed may lack what a read gives (file URLs, content too large for a frame).
// A picture a model drew gets its URL once the malware scan passed it: read again, a while.
async function complete(message) {
  let read = message;
  for (let attempt = 0; attempt < 40 && read.content.some((p) => p.fileId && !p.url); attempt++) {
    if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, 250));
    read = await state.client.messages.get(state.thread, message.id);
  }
  return read;
}

function followIfStreaming(message) {
  if (message.role !== "assistant" || ENDED.includes(message.status) || state.follows.has(message.id)) return;
  const thread = state.thread;
  const following = state.client.replies.follow(thread, message.id, {
    onText: () => renderMessages(),
    onMessage: (latest) => {
      if (thread !== state.thread) return;
      upsert(latest);
      renderMessages();
    },
  });
  state.follows.set(message.id, following);
  following.done
    .then(complete)
    .then((final) => {
      if (thread !== state.thread) return;
      state.follows.delete(message.id);
      upsert(final);
      renderMessages();
      refreshUsage(state.client); // a reply ended: today's count moved
    })
    .catch(fail);
}

function onFrame(frame) {
  if (frame.type === "message") {
    const message = frame.message;
    if (state.follows.has(message.id)) return; // its follower has it
    if (frame.contentOmitted) {
      state.client.messages.get(state.thread, message.id).then((full) => {
        upsert(full);
        renderMessages();
      }, fail);
      return;
    }
    complete(message).then((full) => {
      upsert(full);
      renderMessages();
      followIfStreaming(full);
    }, fail);
  } else if (frame.type === "thread_deleted") {
    state.thread = null;
    loadThreads().catch(fail);
  } else if (frame.type === "error") {
    toast(`${frame.error.code}: ${frame.error.message}`);
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
    // The thread shows the small thumbnail the server made; a click opens the original.
    image.src = part.thumbnailUrl || source;
    image.alt = part.filename || "image";
    // A picture that loads after the list was drawn grows it: stay at the bottom.
    image.addEventListener("load", keepPinned);
    if (!part.thumbnailUrl) return image;
    const link = document.createElement("a");
    link.className = "picture";
    link.href = source;
    link.target = "_blank";
    link.rel = "noopener";
    link.append(image);
    return link;
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

function errorElement(text, code) {
  const error = document.createElement("div");
  error.className = "error";
  if (code) error.dataset.code = code;
  error.textContent = text;
  return error;
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
  const following = state.follows.get(message.id);
  const streaming = message.role === "assistant" && !ENDED.includes(message.status);
  let parts = message.content.length ? message.content : [{ type: "text", text: "" }];
  if (streaming && following) parts = [{ type: "text", text: following.text }];
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
    const error = errorElement(explainError(message.error.code, message.error.message), message.error.code);
    error.title = `${message.error.code}: ${message.error.message}`;
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
  if (local.error) item.append(errorElement(local.error));
  return item;
}

// Rendered messages, reused while unchanged: every read mints new file URLs, and
// redrawing an image for a new URL on each read would make it flicker.
const rendered = new Map();

function renderedMessage(message) {
  const following = state.follows.get(message.id);
  const signature = `${message.status}|${message.updatedAt}|${following ? following.lastSeq : ""}|${JSON.stringify(message.content.map((p) => p.text || p.fileId || ""))}`;
  const cached = rendered.get(message.id);
  if (cached && cached.signature === signature) return cached.element;
  const element = messageElement(message);
  rendered.set(message.id, { signature, element });
  return element;
}

function keepPinned() {
  const list = $("messages");
  if (state.pinned) list.scrollTop = list.scrollHeight;
}

function renderMessages() {
  $("messages").replaceChildren(...state.messages.map(renderedMessage), ...state.local.map(localElement));
  if (state.local.length) state.pinned = true;
  keepPinned();
}

async function stopReply(id) {
  upsert(await state.client.replies.stop(state.thread, id));
  renderMessages();
}

async function deleteMessage(id) {
  await state.client.messages.delete(state.thread, id);
  state.messages = state.messages.filter((m) => m.id !== id);
  renderMessages();
  refreshUsage(state.client);
}

// ---- attachments -----------------------------------------------------------------

function revoke(attachment) {
  if (attachment.previewUrl && attachment.previewUrl.startsWith("blob:")) URL.revokeObjectURL(attachment.previewUrl);
}

function renderAttachments() {
  $("attachments").replaceChildren(
    ...state.attachments.map((attachment) => {
      const item = document.createElement("li");
      // Refused when registered (a type or size the API does not take) or by the check
      // after the upload: the same to the person who dropped it.
      const refused = attachment.status === "failed" || attachment.status === "rejected";
      item.className = `attachment ${attachment.status}${refused ? " refused" : ""}`;
      item.dataset.status = attachment.status;
      item.dataset.name = attachment.name;
      if (attachment.previewUrl) {
        const thumb = document.createElement("img");
        thumb.className = "thumb";
        thumb.alt = "";
        thumb.src = attachment.previewUrl;
        item.append(thumb);
      }
      const name = document.createElement("span");
      name.className = "attachment-name";
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
        revoke(attachment);
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

async function attach(file) {
  const attachment = {
    key: crypto.randomUUID(), name: file.name, mediaType: file.type, progress: 0, status: "uploading",
    fileId: null, reason: null,
    // A thumbnail at once, from the bytes on this machine; the server's once it has one.
    previewUrl: file.type.startsWith("image/") ? URL.createObjectURL(file) : null,
  };
  state.attachments.push(attachment);
  renderAttachments();
  try {
    const { file: stored, deduplicated } = await state.client.files.upload(file, {
      filename: file.name,
      onProgress: ({ phase, loaded, total }) => {
        attachment.status = phase;
        attachment.progress = total ? Math.round((loaded * 100) / total) : 100;
        renderAttachments();
      },
    });
    attachment.fileId = stored.id;
    attachment.mediaType = stored.mediaType;
    attachment.status = "ready";
    attachment.progress = 100;
    if (deduplicated) attachment.reason = "already uploaded";
    if (stored.thumbnailUrl) {
      revoke(attachment);
      attachment.previewUrl = stored.thumbnailUrl;
    }
  } catch (error) {
    const checked = error instanceof AgentfilesError && error.details.file;
    attachment.status = checked ? "rejected" : "failed";
    attachment.reason = checked ? `rejected: ${error.message}` : words(error);
  }
  renderAttachments();
  refreshUsage(state.client);
}

// ---- sending -----------------------------------------------------------------------

async function send(event) {
  event.preventDefault();
  const text = $("text").value.trim();
  const attachments = state.attachments.filter((a) => a.status === "ready");
  if (!text && !attachments.length) return;
  const local = { key: crypto.randomUUID(), text, attachments, error: null };
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
  const thread = state.thread;
  try {
    const { message, reply } = await state.client.messages.send(thread, content, { idempotencyKey: local.key });
    if (thread !== state.thread) return;
    state.local = state.local.filter((l) => l !== local);
    upsert(await complete(message));
    for (const a of attachments) revoke(a);
    if (reply) {
      upsert(reply);
      followIfStreaming(reply);
    }
    renderMessages();
  } catch (error) {
    local.error = words(error);
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
  const local = { key: crypto.randomUUID(), text: `🎨 ${prompt}`, attachments: [], error: null };
  state.local.push(local);
  $("text").value = "";
  renderMessages();
  const thread = state.thread;
  try {
    const { message, reply } = await state.client.images.create(thread, prompt, { size: "256x256", idempotencyKey: local.key });
    if (thread !== state.thread) return;
    state.local = state.local.filter((l) => l !== local);
    upsert(message);
    if (reply) {
      upsert(reply);
      followIfStreaming(reply);
    }
    renderMessages();
  } catch (error) {
    local.error = words(error);
    renderMessages();
    fail(error);
  }
}

// ---- wiring --------------------------------------------------------------------------

function carriesFiles(event) {
  return event.dataTransfer && [...event.dataTransfer.types].includes("Files");
}

function wire() {
  $("signin").addEventListener("submit", (event) => {
    event.preventDefault();
    signIn($("sub").value.trim()).catch(fail);
  });
  $("signout").addEventListener("click", signOut);
  $("new-thread").addEventListener("click", () => newThread().catch(fail));
  $("export").addEventListener("click", () => downloadMyData().catch(fail));
  $("erase").addEventListener("click", () => deleteMyAccount().catch(fail));
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
  $("messages").addEventListener("scroll", () => {
    const list = $("messages");
    state.pinned = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  });
  // Files dropped anywhere on the page are attachments; the browser never opens them.
  const zone = $("drop");
  window.addEventListener("dragover", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    zone.classList.add("over");
  });
  window.addEventListener("dragleave", (event) => {
    if (!event.relatedTarget) zone.classList.remove("over");
  });
  window.addEventListener("drop", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    zone.classList.remove("over");
    if (!state.thread) {
      toast(state.client ? "Create a thread first, then drop your files." : "Sign in first, then drop your files.");
      return;
    }
    for (const file of event.dataTransfer.files) attach(file);
  });
  const saved = JSON.parse(sessionStorage.getItem(SESSION) || "null");
  if (saved && saved.sub) signIn(saved.sub, saved.thread).catch(fail);
}

wire();
