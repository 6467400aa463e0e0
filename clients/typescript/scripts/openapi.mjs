// Saves the OpenAPI document a running stack serves as ./openapi.json (the source of
// src/schema.ts): `AGENTFILES_URL=http://127.0.0.1:8000 npm run openapi`.
import { writeFile } from "node:fs/promises";

const base = (process.env.AGENTFILES_URL ?? "http://127.0.0.1:8000").replace(/\/+$/, "");
const response = await fetch(`${base}/openapi.json`);
if (!response.ok) throw new Error(`${base}/openapi.json answered ${response.status}`);
await writeFile(new URL("../openapi.json", import.meta.url), `${JSON.stringify(await response.json(), null, 2)}\n`);
console.log(`saved openapi.json from ${base}`);
