import assert from "node:assert/strict";
import { test } from "node:test";

import { AgentfilesError, createClient } from "../dist/index.js";
import { BASE_URL, newClient } from "./support.mjs";

test("a send whose answer is lost is retried with the same Idempotency-Key and saved once", async () => {
  // Given a network that delivers the first send but loses its answer
  let lost = false;
  const keys = [];
  const flaky = async (url, init = {}) => {
    const response = await fetch(url, init);
    if (init.method === "POST" && /\/messages$/.test(String(url))) {
      keys.push(init.headers["Idempotency-Key"]);
      if (!lost) {
        lost = true;
        throw new TypeError("fetch failed");
      }
    }
    return response;
  };
  const { client } = await newClient({ fetch: flaky });
  const thread = await client.threads.create("retry");

  // When a message is sent
  const { message, reply } = await client.messages.send(thread.id, "saved once", { generate: false });

  // Then it was sent twice with one key, and the thread holds it once
  assert.equal(keys.length, 2);
  assert.equal(keys[0], keys[1]);
  assert.equal(reply ?? null, null);
  const page = await client.messages.list(thread.id);
  assert.deepEqual(page.items.map((m) => m.id), [message.id]);
});

test("messages are listed newest first, page by page", async () => {
  const { client } = await newClient();
  const thread = await client.threads.create();
  const sent = [];
  for (const text of ["one", "two", "three"]) sent.push((await client.messages.send(thread.id, text, { generate: false })).message.id);

  const first = await client.messages.list(thread.id, { limit: 2 });
  assert.equal(first.items.length, 2);
  assert.ok(first.nextCursor);
  const second = await client.messages.list(thread.id, { limit: 2, cursor: first.nextCursor });
  assert.deepEqual([...first.items, ...second.items].map((m) => m.id), sent.slice().reverse());

  const all = [];
  for await (const message of client.messages.all(thread.id, { limit: 1 })) all.push(message.id);
  assert.deepEqual(all, sent.slice().reverse());
});

test("the API's errors are AgentfilesErrors carrying its code", async () => {
  const { client } = await newClient();
  await assert.rejects(client.threads.get("01ARZ3NDEKTSV4RRFFQ69G5FAV"), (error) => error instanceof AgentfilesError && error.status === 404 && error.code === "thread_not_found");

  const stranger = createClient({ baseUrl: BASE_URL, getToken: () => "not-a-token", websocketUrl: null });
  await assert.rejects(stranger.threads.list(), (error) => error instanceof AgentfilesError && error.status === 401 && error.code === "unauthorized");
});
