// What the tests share: the local stack's URL (from the environment), a token per new
// user, a client on it, and real bytes (a PNG drawn here, a text that claims to be one).
import { deflateSync } from "node:zlib";
import { randomUUID } from "node:crypto";

import { createClient } from "../dist/index.js";

export const BASE_URL = process.env.AGENTFILES_URL;
if (!BASE_URL) throw new Error("AGENTFILES_URL must name a running stack (tests/e2e/test_typescript_client.py sets it)");

export async function tokenFor(sub) {
  const response = await fetch(`${BASE_URL}/dev/token`, { method: "POST", body: JSON.stringify({ sub }) });
  if (!response.ok) throw new Error(`no token: ${response.status} ${await response.text()}`);
  return (await response.json()).token;
}

/** A client for a user of its own, with every request it makes counted. */
export async function newClient(options = {}) {
  const token = await tokenFor(`ts-${randomUUID().slice(0, 8)}`);
  const requests = [];
  const realFetch = options.fetch ?? fetch;
  const countingFetch = (url, init = {}) => {
    requests.push({ method: init.method ?? "GET", url: String(url) });
    return realFetch(url, init);
  };
  const client = createClient({ baseUrl: BASE_URL, getToken: () => token, ...options, fetch: countingFetch });
  return { client, token, requests };
}

function crc32(bytes) {
  let crc = ~0;
  for (const byte of bytes) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0xedb88320 & -(crc & 1));
  }
  return ~crc >>> 0;
}

function chunk(type, data) {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, "latin1");
  data.copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/** A real PNG of width × height, different at every call (no dedup between tests). */
export function png(width, height) {
  const seed = randomUUID();
  const rows = [];
  for (let y = 0; y < height; y++) {
    const row = Buffer.alloc(1 + width * 3);
    for (let x = 0; x < width; x++) row.set([seed.charCodeAt((x + y) % 36), (x * 7) % 256, (y * 5) % 256], 1 + x * 3);
    rows.push(row);
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8);
  const bytes = Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", header),
    chunk("IDAT", deflateSync(Buffer.concat(rows))),
    chunk("IEND", Buffer.alloc(0)),
  ]);
  return new Blob([bytes], { type: "image/png" });
}

/** The seqs a follower saw are exactly 1..n: no gap, no duplicate. */
export function consecutive(seqs) {
  return seqs.every((seq, index) => seq === index + 1);
}

export function textOf(message) {
  return message.content.filter((part) => part.type === "text").map((part) => part.text).join("");
}
