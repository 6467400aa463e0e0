"""The fake model's HTTP server: OpenAI's `/v1` routes, the `/_fake` test controls,
and `FakeModel`, which runs the server in a daemon thread for the local stack and
for tests. Standard library only (`http.server`), HTTP/1.1 with keep-alive, SSE
streamed with chunked transfer encoding."""

from __future__ import annotations

import base64
import copy
import json
import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from agentfiles_local.fake_model import answer, picture
from agentfiles_local.fake_model.errors import ModelError, fault
from agentfiles_local.fake_model.inspection import (
    REFUSABLE,
    Markers,
    Seen,
    count_words,
    look,
    read_conversation,
    refusal,
)

logger = logging.getLogger(__name__)

# A model route: (request body, the call's record, attachments seen so far) -> writes the response.
_Responder = Callable[[dict[str, Any], dict[str, Any], list[Seen]], None]

CHAT_MODEL = "fake-chat"
IMAGE_MODEL = "fake-image"
MODELS = (CHAT_MODEL, IMAGE_MODEL)
MAX_IMAGES_PER_REQUEST = 4
MAX_CHUNK_DELAY_S = 5.0
REFUSE_VARIABLE = "FAKE_MODEL_REFUSE"
SYSTEM_FINGERPRINT = "fp_fake_model"


class FakeModel:
    """An OpenAI-compatible model server that answers offline and deterministically.

    The local stack starts one when no real model is configured; tests start their own.
    It keeps what each call saw (`calls`) and can be told to fail (`fail_next`,
    `fail_always`), in process or over HTTP through `/_fake/*`.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        chunk_delay_s: float = 0.0,
        word_count: int | None = None,
        fetch_from: Iterable[str] = (),
        refuse: Iterable[str] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        # The only origins image URLs are downloaded from (the local stack's S3): any
        # other URL is refused without a request, so the model probes nothing.
        self.fetch_from: tuple[str, ...] = tuple(fetch_from)
        self.chunk_delay_s = chunk_delay_s
        self.word_count = word_count
        # The kinds of part this model refuses, as a model without them does (see
        # `inspection.refusal`): "file" like vLLM, "image" like a text-only model.
        # Unset: FAKE_MODEL_REFUSE (comma-separated), so a local stack can run as one.
        self.refuse = _refuse_kinds(os.environ.get(REFUSE_VARIABLE, "") if refuse is None else refuse)
        self._defaults = (chunk_delay_s, word_count, self.refuse)
        self._lock = threading.Lock()
        self._next_faults: deque[int] = deque()
        self._always: int | None = None
        self._calls: list[dict[str, Any]] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # lifecycle

    @property
    def url(self) -> str:
        """The base URL to give the SDK, e.g. `http://127.0.0.1:43123/v1`."""
        if self._server is None:
            raise RuntimeError("the fake model is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> FakeModel:
        """Bind (port 0 picks a free one) and serve in a daemon thread; returns self."""
        if self._server is not None:
            return self
        self._server = _Server((self.host, self.port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-model", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> FakeModel:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # test controls

    def fail_next(self, *statuses: int) -> None:
        """The next model calls answer these statuses, one each, in order (added to any already armed)."""
        checked = [_fault_status(status) for status in statuses]
        with self._lock:
            self._next_faults.extend(checked)

    def fail_always(self, status: int | None) -> None:
        """Every model call answers `status` (after any `fail_next` ones) until set to None."""
        checked = None if status is None else _fault_status(status)
        with self._lock:
            self._always = checked

    def configure(
        self,
        *,
        chunk_delay_s: float | None = None,
        word_count: int | None = None,
        refuse: Iterable[str] | None = None,
    ) -> None:
        """Change the streaming pace, reply length or refused kinds of later calls (0
        clears the word count, an empty `refuse` takes every kind again)."""
        if refuse is not None:
            self.refuse = _refuse_kinds(refuse)
        if chunk_delay_s is not None:
            self.chunk_delay_s = min(max(0.0, float(chunk_delay_s)), MAX_CHUNK_DELAY_S)
        if word_count is not None:
            self.word_count = word_count or None

    @property
    def calls(self) -> list[dict[str, Any]]:
        """One entry per model call, oldest first: endpoint, model, stream, status, saw, and more."""
        with self._lock:
            return copy.deepcopy(self._calls)

    def reset(self) -> None:
        """Forget calls and armed faults, and go back to the constructor's pace and length."""
        with self._lock:
            self._calls.clear()
            self._next_faults.clear()
            self._always = None
        self.chunk_delay_s, self.word_count, self.refuse = self._defaults

    def faults(self) -> dict[str, Any]:
        with self._lock:
            return {"next": list(self._next_faults), "always": self._always}

    # used by the handler

    def _take_fault(self) -> int | None:
        with self._lock:
            if self._next_faults:
                return self._next_faults.popleft()
            return self._always

    def _record(self, call: dict[str, Any]) -> None:
        with self._lock:
            self._calls.append(call)


def _refuse_kinds(kinds: Iterable[str] | str) -> frozenset[str]:
    if isinstance(kinds, str):
        kinds = kinds.split(",")
    found = frozenset(kind.strip() for kind in kinds if kind.strip())
    if found - REFUSABLE:
        raise ValueError(
            f"the fake model refuses {', '.join(sorted(REFUSABLE))}, not {', '.join(sorted(found))}"
        )
    return found


def _fault_status(status: Any) -> int:
    if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
        raise ValueError(f"a fault is an HTTP error status (400..599), not {status!r}")
    return status


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], model: FakeModel) -> None:
        self.model = model
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-response is routine (the SDK closes streams it stops reading).
        logger.debug("fake model: connection from %s ended with an error", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "agentfiles-fake-model/1"
    # Idle keep-alive connections end on their own, so a stopped server leaves no thread behind for long.
    timeout = 30
    # Headers and body go out in separate writes; without this, Nagle's algorithm and delayed
    # ACKs add ~40 ms to every response, which would swamp the worker's overhead benchmark.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: no access log on stderr."""

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Protocol-level failures (a malformed request line, say) answer in JSON too, not HTML."""
        self.close_connection = True
        self._send_error(ModelError(code, message or HTTPStatus(code).phrase, code="invalid_http_request"))

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    # routing

    def _handle(self, method: str) -> None:
        try:
            refusal = self._from_a_browser()
            if refusal:
                self.close_connection = True
                raise ModelError(403, refusal, code="cross_site_request")
            body = self._read_body()
            path = urlsplit(self.path).path.rstrip("/") or "/"
            self._route(method, path, body)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True
        except ModelError as error:
            self._send_error(error)
        except Exception as error:  # the server thread must survive anything a request does
            logger.exception("fake model: unexpected error on %s %s", method, self.path)
            self._send_error(_internal(error))

    def _from_a_browser(self) -> str | None:
        """Why a request must be refused: the model (and its fault controls) are for the
        stack's processes and loopback tools, never for a web page. A browser says where a
        request comes from (`Origin`, `Sec-Fetch-Site`); a name rebound to 127.0.0.1 shows
        in `Host`."""
        port = self.server.server_address[1]
        host = (self.headers.get("Host") or "").lower()
        if host and host not in {f"127.0.0.1:{port}", f"localhost:{port}"}:
            return f"Host {host!r} is not this model"
        if self.headers.get("Origin") is not None:
            return "web pages may not call the fake model"
        fetch_site = (self.headers.get("Sec-Fetch-Site") or "none").lower()
        if fetch_site != "none":
            return f"{fetch_site} requests may not call the fake model"
        return None

    def _route(self, method: str, path: str, body: bytes) -> None:
        model = self.server.model
        if method == "POST" and path == "/v1/chat/completions":
            self._model_call("chat.completions", body, self._chat_completions)
        elif method == "POST" and path == "/v1/images/generations":
            self._model_call("images.generations", body, self._images_generations)
        elif method == "GET" and path == "/v1/models":
            self._send_json(200, {"object": "list", "data": [_model_object(name) for name in MODELS]})
        elif method == "GET" and path.startswith("/v1/models/"):
            self._send_json(200, _model_object(unquote(path.removeprefix("/v1/models/"))))
        elif method == "GET" and path == "/_fake/calls":
            self._send_json(200, {"calls": model.calls})
        elif method == "GET" and path == "/_fake/faults":
            self._send_json(200, model.faults())
        elif method == "POST" and path == "/_fake/faults":
            self._set_faults(_parse_json(body))
        elif method == "POST" and path == "/_fake/config":
            self._set_config(_parse_json(body))
        elif method == "POST" and path == "/_fake/reset":
            model.reset()
            self._send_json(200, {"reset": True})
        else:
            raise ModelError(404, f"Invalid URL ({method} {path})", code="unknown_url")

    # /v1 routes

    def _model_call(self, endpoint: str, body: bytes, respond: _Responder) -> None:
        """Every model call is recorded, faults first: an armed fault answers before the body is judged."""
        model = self.server.model
        call: dict[str, Any] = {
            "endpoint": endpoint,
            "model": None,
            "stream": False,
            "status": None,
            "saw": [],
        }
        seen: list[Seen] = []
        try:
            status = model._take_fault()
            try:
                payload = _parse_json(body)
            except ModelError:
                if status is None:
                    raise
                payload = None
            if isinstance(payload, dict):
                call["model"] = payload.get("model")
                call["stream"] = payload.get("stream") is True
            if status is not None:
                raise fault(status)
            if not isinstance(payload, dict):
                raise ModelError(400, "The request body must be a JSON object.", code="invalid_type")
            respond(payload, call, seen)
        except Exception as error:
            if call["status"] is not None:  # answered and recorded already: the client left mid-stream
                raise
            failure = error if isinstance(error, ModelError) else _internal(error)
            call["status"] = failure.status
            call["error"] = failure.code or failure.type
            call["saw"] = [item.to_dict() for item in seen]
            model._record(call)
            if failure is error:
                raise
            logger.exception("fake model: unexpected error on %s", endpoint)
            raise failure from error

    def _chat_completions(self, payload: dict[str, Any], call: dict[str, Any], seen: list[Seen]) -> None:
        model_name = _required_model(payload)
        stream = payload.get("stream", False)
        if stream is not None and not isinstance(stream, bool):
            raise ModelError(400, "'stream' must be a boolean.", param="stream", code="invalid_type")
        stream_options = payload.get("stream_options")
        if stream_options is not None and not stream:
            raise ModelError(
                400,
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                param="stream_options",
                code="invalid_value",
            )
        include_usage = isinstance(stream_options, dict) and stream_options.get("include_usage") is True
        max_tokens = payload.get("max_completion_tokens", payload.get("max_tokens"))
        if max_tokens is not None and (
            isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
        ):
            raise ModelError(
                400, "'max_tokens' must be a positive integer.", param="max_tokens", code="invalid_value"
            )

        conversation = read_conversation(payload.get("messages"))
        call["messages"] = len(conversation.messages)
        # The messages as sent, so a test can check the shape of every part.
        call["sent"] = payload.get("messages")
        call["text"] = conversation.last_user_text
        markers = conversation.markers
        if markers.fail is not None:
            raise fault(markers.fail)
        refused = refusal(conversation, self.server.model.refuse)
        if refused is not None:
            raise refused
        look(conversation, seen, self.server.model.fetch_from)
        call["saw"] = [item.to_dict() for item in seen]

        model = self.server.model
        text = answer.compose(seen, len(conversation.messages), conversation.echo())
        reply = answer.reply(text, word_count=markers.words or model.word_count, max_tokens=max_tokens)
        usage = _usage(conversation.prompt_words(), reply.words)
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        call["status"] = 200
        call["reply"] = reply.text
        # What went out and when (epoch seconds), so a test can tell how far a client read
        # before it hung up, and how long each piece took to reach someone.
        call["chunks_sent"], call["chunk_times"] = 0, []
        model._record(call)
        if not stream:
            self._send_json(
                200,
                {
                    "id": completion_id,
                    "object": "chat.completion",
                    "created": created,
                    "model": model_name,
                    "choices": [
                        {
                            "index": 0,
                            "message": {
                                "role": "assistant",
                                "content": reply.text,
                                "refusal": None,
                                "annotations": [],
                            },
                            "logprobs": None,
                            "finish_reason": reply.finish_reason,
                        }
                    ],
                    "usage": usage,
                    "service_tier": "default",
                    "system_fingerprint": SYSTEM_FINGERPRINT,
                },
            )
            return

        delay = model.chunk_delay_s if markers.delay_ms is None else markers.delay_ms / 1000
        delay = min(max(0.0, delay), MAX_CHUNK_DELAY_S)

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            body: dict[str, Any] = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model_name,
                "service_tier": "default",
                "system_fingerprint": SYSTEM_FINGERPRINT,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
            }
            if include_usage:
                body["usage"] = None
            return body

        self._start_stream()
        self._send_event(chunk({"role": "assistant", "content": "", "refusal": None}))
        for position, piece in enumerate(reply.chunks()):
            if delay and position:
                time.sleep(delay)
            self._send_event(chunk({"content": piece}))
            call["chunks_sent"] += 1
            call["chunk_times"].append(time.time())
        self._send_event(chunk({}, reply.finish_reason))
        if include_usage:
            final = chunk({})
            final["choices"], final["usage"] = [], usage
            self._send_event(final)
        self._send_event("[DONE]")
        self._end_stream()

    def _images_generations(self, payload: dict[str, Any], call: dict[str, Any], seen: list[Seen]) -> None:
        prompt = payload.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise ModelError(400, "Missing required parameter: 'prompt'.", param="prompt", code="missing")
        call["prompt"] = prompt
        width, height = picture.parse_size(payload.get("size"))
        call["size"] = f"{width}x{height}"
        count = payload.get("n", 1)
        if count is None:
            count = 1
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_IMAGES_PER_REQUEST:
            raise ModelError(
                400, f"'n' must be between 1 and {MAX_IMAGES_PER_REQUEST}.", param="n", code="invalid_value"
            )
        response_format = payload.get("response_format") or "b64_json"
        if response_format != "b64_json":
            raise ModelError(
                400,
                "The fake model only returns images as 'b64_json' (it hosts no image URLs).",
                param="response_format",
                code="invalid_value",
            )
        fail = Markers.parse(prompt).fail
        if fail is not None:
            raise fault(fail)
        images = [
            {
                "b64_json": base64.b64encode(picture.draw(prompt, width, height, variant)).decode(),
                "revised_prompt": None,
            }
            for variant in range(count)
        ]
        prompt_words = count_words(prompt)
        call["status"] = 200
        self.server.model._record(call)
        self._send_json(
            200,
            {
                "created": int(time.time()),
                "data": images,
                "output_format": "png",
                "size": f"{width}x{height}",
                "usage": {
                    "input_tokens": prompt_words,
                    "input_tokens_details": {"image_tokens": 0, "text_tokens": prompt_words},
                    "output_tokens": 0,
                    "total_tokens": prompt_words,
                },
            },
        )

    # /_fake routes

    def _set_faults(self, payload: Any) -> None:
        model = self.server.model
        if not isinstance(payload, dict) or not ({"next", "always"} & payload.keys()):
            raise ModelError(400, 'Expected {"next": [status, ...]} and/or {"always": status | null}.')
        try:
            if "next" in payload:
                statuses = payload["next"]
                model.fail_next(*(statuses if isinstance(statuses, list) else [statuses]))
            if "always" in payload:
                model.fail_always(payload["always"])
        except ValueError as error:
            raise ModelError(400, str(error)) from error
        self._send_json(200, model.faults())

    def _set_config(self, payload: Any) -> None:
        model = self.server.model
        if not isinstance(payload, dict):
            raise ModelError(400, 'Expected {"chunk_delay_s": float, "word_count": int, "refuse": [kind]}.')
        delay, words = payload.get("chunk_delay_s"), payload.get("word_count")
        if delay is not None and (isinstance(delay, bool) or not isinstance(delay, int | float)):
            raise ModelError(400, "'chunk_delay_s' must be a number.", param="chunk_delay_s")
        if words is not None and (isinstance(words, bool) or not isinstance(words, int) or words < 0):
            raise ModelError(400, "'word_count' must be a non-negative integer.", param="word_count")
        refuse = payload.get("refuse")
        if refuse is not None and (
            not isinstance(refuse, list) or not all(isinstance(kind, str) for kind in refuse)
        ):
            raise ModelError(400, '\'refuse\' must be a list of kinds ("file", "image").', param="refuse")
        try:
            model.configure(chunk_delay_s=delay, word_count=words, refuse=refuse)
        except ValueError as error:
            raise ModelError(400, str(error), param="refuse") from error
        self._send_json(
            200,
            {
                "chunk_delay_s": model.chunk_delay_s,
                "word_count": model.word_count,
                "refuse": sorted(model.refuse),
            },
        )

    # wire

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        try:
            size = int(length)
        except ValueError as error:
            self.close_connection = True
            raise ModelError(400, "Invalid Content-Length header.") from error
        return self.rfile.read(size) if size > 0 else b""

    def _send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", f"req_{uuid.uuid4().hex}")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_error(self, error: ModelError) -> None:
        headers = {"Retry-After": "0", "x-ratelimit-reset-requests": "0s"} if error.status == 429 else None
        try:
            self._send_json(error.status, error.to_body(), headers)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True

    def _start_stream(self) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("x-request-id", f"req_{uuid.uuid4().hex}")
        self.end_headers()

    def _send_event(self, data: dict[str, Any] | str) -> None:
        text = data if isinstance(data, str) else json.dumps(data)
        event = f"data: {text}\n\n".encode()
        self.wfile.write(b"%x\r\n%b\r\n" % (len(event), event))

    def _end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")


def _internal(error: Exception) -> ModelError:
    return ModelError(500, f"The fake model failed: {type(error).__name__}: {error}")


def _parse_json(body: bytes) -> Any:
    if not body.strip():
        raise ModelError(400, "The request body is empty: expected a JSON object.", code="invalid_json")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise ModelError(
            400,
            "We could not parse the JSON body of your request. Expected a JSON object.",
            code="invalid_json",
        ) from error


def _required_model(payload: dict[str, Any]) -> str:
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise ModelError(400, "You must provide a model parameter.", param="model", code="missing")
    return model


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }


def _model_object(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 1_700_000_000, "owned_by": "agentfiles"}
