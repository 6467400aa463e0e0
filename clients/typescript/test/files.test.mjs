import assert from "node:assert/strict";
import { test } from "node:test";

import { AgentfilesError } from "../dist/index.js";
import { BASE_URL, newClient, png } from "./support.mjs";

const apiHost = new URL(BASE_URL).host;

test("an image uploads straight to the bucket with progress and comes back ready; the same bytes again send nothing", async () => {
  const { client, requests } = await newClient();
  const image = png(32, 24);
  const progress = [];

  // When the image is uploaded
  const { file, deduplicated } = await client.files.upload(image, { filename: "photo.png", onProgress: (p) => progress.push(p) });

  // Then it passed the check, its bytes went to the presigned URL, and progress went from 0 to all of it, then the check
  assert.equal(file.status, "ready");
  assert.equal(deduplicated, false);
  assert.equal(file.size, image.size);
  const puts = requests.filter((r) => r.method === "PUT");
  assert.equal(puts.length, 1);
  assert.notEqual(new URL(puts[0].url).host, apiHost);
  assert.deepEqual(progress[0], { phase: "uploading", loaded: 0, total: image.size });
  assert.deepEqual(progress.at(-1), { phase: "checking", loaded: image.size, total: image.size });

  // When the same bytes are uploaded again
  const again = await client.files.upload(image, { filename: "copy.png" });
  // Then it is the same file, and no byte was sent
  assert.equal(again.deduplicated, true);
  assert.equal(again.file.id, file.id);
  assert.equal(requests.filter((r) => r.method === "PUT").length, 1);
});

test("an upload the check refuses is an AgentfilesError with the check's code and reason", async () => {
  const { client } = await newClient();
  const fake = new Blob(["this is plain text, not a picture"], { type: "image/png" });

  // When bytes that are not a PNG are uploaded as one
  const refusal = await client.files.upload(fake, { filename: "fake.png" }).then(
    () => assert.fail("the upload should have been refused"),
    (error) => error,
  );

  // Then the refusal is typed, with the API's code and the check's reason
  assert.ok(refusal instanceof AgentfilesError);
  assert.equal(refusal.status, 422);
  assert.notEqual(refusal.code, "upload_failed");
  assert.match(refusal.message, /image\/png/);
  assert.equal(refusal.details.file.status, "rejected");
});

test("a type the API does not take is refused at registration, with the same error class", async () => {
  const { client, requests } = await newClient();
  const refusal = await client.files.upload(new Blob(["MZ"]), { filename: "tool.exe", mediaType: "application/x-msdownload" }).then(
    () => assert.fail("the upload should have been refused"),
    (error) => error,
  );
  assert.ok(refusal instanceof AgentfilesError);
  assert.ok(refusal.status >= 400 && refusal.status < 500, String(refusal.status));
  assert.equal(typeof refusal.code, "string");
  assert.equal(requests.filter((r) => r.method === "PUT").length, 0);
});

test("an aborted upload stops with code aborted", async () => {
  const { client } = await newClient();
  const controller = new AbortController();
  controller.abort();
  await assert.rejects(client.files.upload(png(8, 8), { filename: "a.png", signal: controller.signal }), (error) => error instanceof AgentfilesError && error.code === "aborted");
});

test("with the socket open, an upload ends on the pushed frame even when the API never answers the check's poll", async () => {
  // Given a client whose socket is open (it watches a thread), on an API whose answers to
  // GET /files/{id} never come (a poll that hangs)
  const hanging = [];
  const { client } = await newClient({
    fetch: (url, init = {}) => {
      const path = new URL(String(url)).pathname;
      if ((init.method ?? "GET") === "GET" && /^\/files\/[0-9A-Z]{26}$/.test(path)) return new Promise(() => hanging.push(path));
      return fetch(url, init);
    },
  });
  const thread = await client.threads.create();
  const subscribed = new Promise((resolve) => client.threads.watch(thread.id, (frame) => frame.type === "subscribed" && resolve()));
  await subscribed;

  // When an image is uploaded
  const { file } = await client.files.upload(png(24, 16), { filename: "pushed.png" });

  // Then it came back ready, with its URL, from the frame the upload trigger pushed
  assert.equal(file.status, "ready");
  assert.ok(file.url);
  assert.ok(hanging.length >= 1, "the check was never polled");
  client.close();
});
