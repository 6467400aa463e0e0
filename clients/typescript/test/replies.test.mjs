import assert from "node:assert/strict";
import { test } from "node:test";

import { consecutive, newClient, textOf } from "./support.mjs";

/** The platform's WebSocket, with every socket the client opens kept, so that a test can
 * drop one as a network would (the client did not ask for it to close). */
function droppableSockets() {
  const opened = [];
  class Recorded extends WebSocket {
    constructor(url) {
      super(url);
      opened.push(this);
    }
  }
  return { opened, WebSocket: Recorded };
}

function firstDeltas(count) {
  let resolve;
  const reached = new Promise((r) => (resolve = r));
  return { reached, seen: (seqs) => seqs.length >= count && resolve() };
}

test("a sent message's reply is followed over the socket to its end, every delta once and in order", async () => {
  const { client, requests } = await newClient();
  const thread = await client.threads.create();

  // When a message is sent and its reply followed
  const { reply } = await client.messages.send(thread.id, "hello [[words:40]] [[delay_ms:10]]");
  const seqs = [];
  const texts = [];
  const following = client.replies.follow(thread.id, reply.id, { onDelta: (d) => seqs.push(d.seq), onText: (t) => texts.push(t) });
  const final = await following.done;

  // Then it ended with the merged text, pushed over the socket (not polled)
  assert.equal(final.status, "success");
  assert.ok(seqs.length > 0);
  assert.ok(consecutive(seqs), String(seqs));
  assert.equal(following.text, textOf(final));
  assert.equal(texts.at(-1), textOf(final));
  assert.ok(client.live);
  const catchUps = requests.filter((r) => r.url.includes("/stream"));
  assert.ok(catchUps.length <= 2, `polled: ${catchUps.length} catch-ups`);
  client.close();
});

test("a socket dropped mid-reply is reopened and caught up by seq: no gap, no duplicate", async () => {
  const sockets = droppableSockets();
  const { client, requests } = await newClient({ WebSocket: sockets.WebSocket });
  const thread = await client.threads.create();
  const { reply } = await client.messages.send(thread.id, "a long one [[words:300]] [[delay_ms:15]]");
  const seqs = [];
  const early = firstDeltas(3);
  const following = client.replies.follow(thread.id, reply.id, {
    onDelta: (d) => {
      seqs.push(d.seq);
      early.seen(seqs);
    },
  });

  // When the socket drops after a few deltas
  await early.reached;
  const catchUpsBefore = requests.filter((r) => r.url.includes("/stream")).length;
  sockets.opened[0].close();
  const final = await following.done;

  // Then a new socket was opened, what was missed came from the catch-up route, and the
  // follower saw each seq exactly once, ending with exactly the reply's text
  assert.ok(sockets.opened.length >= 2, `${sockets.opened.length} socket(s)`);
  assert.ok(requests.filter((r) => r.url.includes("/stream")).length > catchUpsBefore);
  assert.equal(final.status, "success");
  assert.ok(consecutive(seqs), String(seqs));
  assert.equal(seqs.at(-1), following.lastSeq);
  assert.equal(following.text, textOf(final));
  client.close();
});

test("a reply is stopped: it ends stopped with the text streamed so far", async () => {
  const { client } = await newClient();
  const thread = await client.threads.create();
  const { reply } = await client.messages.send(thread.id, "go on [[words:3000]] [[delay_ms:10]]");
  const early = firstDeltas(1);
  const seqs = [];
  const following = client.replies.follow(thread.id, reply.id, {
    onDelta: (d) => {
      seqs.push(d.seq);
      early.seen(seqs);
    },
  });
  await early.reached;

  // When it is stopped
  const stopping = await client.replies.stop(thread.id, reply.id);
  const final = await following.done;

  // Then it ends stopped, keeping what had streamed, short of the whole answer
  assert.ok(["pending", "streaming", "stopped"].includes(stopping.status), stopping.status);
  assert.equal(final.status, "stopped");
  assert.ok(consecutive(seqs), String(seqs));
  assert.equal(following.text, textOf(final));
  const words = textOf(final).split(/\s+/).filter(Boolean).length;
  assert.ok(words > 0 && words < 3000, `${words} words`);
  client.close();
});

test("without a socket the reply is polled with backoff and still merged exactly", async () => {
  const { client, requests } = await newClient({ websocketUrl: null });
  const thread = await client.threads.create();
  const { reply } = await client.messages.send(thread.id, "polled [[words:30]] [[delay_ms:10]]");
  const seqs = [];
  const following = client.replies.follow(thread.id, reply.id, { onDelta: (d) => seqs.push(d.seq) });
  const final = await following.done;

  assert.equal(final.status, "success");
  assert.equal(client.live, false);
  assert.ok(consecutive(seqs), String(seqs));
  assert.equal(following.text, textOf(final));
  assert.ok(requests.some((r) => r.url.includes("/stream?after=")));
});
