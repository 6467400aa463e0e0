"""The built-in fake model: an OpenAI-compatible HTTP server that answers offline.

The local stack starts it when no real model is configured (no `OPENAI_API_KEY` and
no `OPENAI_BASE_URL`), so the whole system runs and is tested without a network.
It is not a mock of the SDK: it speaks HTTP, so the real `openai` client, its
streaming and its error classes are exercised end to end. And it really looks at
what it is given: data URLs are decoded, `http(s)` image URLs are downloaded (so a
presigned URL that does not work makes the reply fail), every image is decoded with
Pillow and every PDF opened with pypdf.

It downloads only from the origins it is given (`fetch_from`: the local stack gives
its S3 endpoint) and follows no redirect: any other URL is refused before a request is
made, with one message whatever is behind it, so no message can make it probe the
machine. And it answers no web page: a request with an `Origin`, a `Sec-Fetch-Site`
other than `none`, or a `Host` that is not its loopback address is a 403
(`cross_site_request`), so a page cannot arm its faults or call it.

    from agentfiles_local.fake_model import FakeModel
    with FakeModel(word_count=200, chunk_delay_s=0.01, fetch_from=["http://127.0.0.1:5000"]) as fake:
        client = OpenAI(base_url=fake.url, api_key="test", max_retries=0)

or as a process: `python -m agentfiles_local.fake_model --port 8001` (prints its base URL).

Routes
------
- `POST /v1/chat/completions`: plain (`chat.completion`) or `stream: true` (SSE
  `chat.completion.chunk`s, one per word, then `data: [DONE]`; with
  `stream_options: {"include_usage": true}` a last chunk with empty `choices` and the
  usage). Content parts: `text`, `image_url` (`data:<type>;base64,...` or
  `http(s)://...` on an origin of `fetch_from`, downloaded with a 10 s timeout) and
  `file` (`file_data`, a base64 PDF data URL). `max_tokens` / `max_completion_tokens`
  cut the reply (`finish_reason` `length`).
- `POST /v1/images/generations`: `{prompt, model?, size?, n?, response_format?}` →
  `{"created", "data": [{"b64_json"}], "usage"}`; a PNG of `size` (default 256x256, each
  side at most 1024) coloured by the prompt's hash and carrying its text. Only
  `b64_json` output.
- `GET /v1/models`, `GET /v1/models/{id}`: `fake-chat` and `fake-image` (any model name
  is accepted by the other routes and echoed back).

The answer (deterministic, so tests assert on it)
--------------------------------------------------
    I see 2 attachment(s): image 1: PNG 64x48; file 1: PDF "report.pdf" with 3 page(s).
    History: 3 message(s). You said: "what is this?"

(one line: the parts are joined with single spaces)

- Attachments are every `image_url` and `file` part of every message, in order,
  numbered per kind: `image K: <FORMAT> <W>x<H>` with the format as Pillow names it
  (PNG, JPEG, GIF, WEBP; MPO for a multi-picture JPEG), and
  `file K: PDF "<filename>" with <N> page(s)`. With none: `I see 0 attachment(s).`
- `History: N message(s).` counts every message of the request, system included.
- `You said: "..."` echoes the text parts of the last user message, each with its
  whitespace collapsed and cut to 200 characters (then `...`), joined with ` | `.
- When a word count is set (the constructor's `word_count`, `/_fake/config`, or a
  `[[words:N]]` marker), the filler words `alpha bravo charlie ... lima` follow,
  cycled, until the reply has N words. Words stand in for tokens: a stream sends one
  chunk per word and `usage` counts words (prompt: every text of the request).

Errors are OpenAI-shaped, `{"error": {"message", "type", "param", "code"}}`, so the SDK
raises its usual classes: an image that cannot be fetched or decoded is a 400
`invalid_request_error` with code `invalid_image_url` (or `invalid_image_format`), an
unreadable PDF `invalid_file_format`; bad JSON is a 400, an unknown path a 404.

Test controls
-------------
- Faults: `fail_next(429, 500)` makes the next model calls (chat or images) answer
  those statuses in order; `fail_always(500)` every call until `fail_always(None)`.
  429 comes with `Retry-After: 0`, 5xx with type `server_error`, 400 with code
  `content_policy_violation`. Over HTTP: `POST /_fake/faults` with `{"next": [429, 500]}`,
  `{"always": 500}` or `{"always": null}`; `GET /_fake/faults` shows what is armed.
- Markers in the last user text (or an image prompt), per request, no state:
  `[[fail:400]]` answers that status (any 400..599), `[[words:200]]` pads the reply to
  200 words, `[[delay_ms:20]]` waits 20 ms between stream chunks.
- `calls` / `GET /_fake/calls` (`{"calls": [...]}`): one entry per model call,
  `{"endpoint": "chat.completions" | "images.generations", "model", "stream", "status",
  "saw": [{"kind": "image", "index", "format", "width", "height", "source": "data" |
  "url", "bytes", "media_type"?} | {"kind": "file", "format": "PDF", "pages",
  "filename"?, ...}], ...}` plus `messages` (their count), `sent` (the messages as
  received), `text` and `reply` for chat (and, for a stream, `chunks_sent` and
  `chunk_times`: how many pieces went out before the client hung up, and when), `prompt` and
  `size` for images, `error` when it failed.
- `configure(chunk_delay_s=..., word_count=...)` / `POST /_fake/config`: pace and
  length of later replies.
- Capabilities: `FakeModel(refuse=["file", "image"])`, `configure(refuse=[...])`,
  `POST /_fake/config {"refuse": ["file"]}`, `--refuse file,image`, or
  `FAKE_MODEL_REFUSE=file,image` in the environment (a local stack's fake model reads
  it): the model then answers a request holding such a part with a 400, as a model
  without that input does. A `file` part as vLLM refuses one (`Unsupported chat content
  part type: 'file'. Supported types: ...`, param `type`), an image as OpenAI refuses
  one for a model that cannot see (`Invalid content type. image_url is only supported
  by certain models.`, param `messages.[i].content.[j].type`).
- `reset()` / `POST /_fake/reset`: forget calls and faults and restore the
  constructor's pace, length and refused kinds.
"""

from agentfiles_local.fake_model.server import CHAT_MODEL, IMAGE_MODEL, FakeModel

__all__ = ["CHAT_MODEL", "IMAGE_MODEL", "FakeModel"]
