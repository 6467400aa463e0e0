"""The built-in fake model, driven through the real `openai` SDK over HTTP: what it
answers about the images and PDFs it is given, how it streams, the pictures it
makes, and the faults tests can arm, in process and over its `/_fake` endpoints."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import openai
import pytest
from openai import OpenAI
from PIL import Image
from pypdf import PdfWriter

from agentfiles_local.fake_model import FakeModel

LOCAL = Path(__file__).resolve().parents[2] / "local"


# fixtures and helpers


def image_bytes(size: tuple[int, int], image_format: str = "PNG", colour: str = "teal") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format=image_format)
    return buffer.getvalue()


def pdf_bytes(pages: int) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=200, height=300)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def data_url(media_type: str, data: bytes) -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


def ask(text: str, *parts: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"type": "text", "text": text}, *parts]}]


def image_part(url: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}}


def pdf_part(filename: str, data: bytes) -> dict[str, Any]:
    return {"type": "file", "file": {"filename": filename, "file_data": data_url("application/pdf", data)}}


def http(method: str, url: str, body: Any = None, raw: bytes | None = None) -> tuple[int, Any]:
    """A plain HTTP call, as a test driving a local stack in a subprocess would make it."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture(scope="module")
def server() -> Iterator[FakeModel]:
    fake = FakeModel().start()
    yield fake
    fake.stop()


@pytest.fixture
def fake(server: FakeModel, image_host: tuple[str, dict[str, bytes]]) -> FakeModel:
    server.reset()
    # The test's web server stands in for the stack's S3: the one origin it may fetch from.
    server.fetch_from = (image_host[0],)
    IMAGE_HOST_HITS.clear()
    REDIRECTS.clear()
    return server


@pytest.fixture
def client(fake: FakeModel) -> OpenAI:
    return OpenAI(base_url=fake.url, api_key="test", max_retries=0, timeout=10)


# Every path the test web servers were asked for, and the paths they redirect (to a URL).
IMAGE_HOST_HITS: list[str] = []
REDIRECTS: dict[str, str] = {}


def serve_files(files: dict[str, bytes]) -> ThreadingHTTPServer:
    """A tiny local web server: `files[path] = bytes` serves them, `REDIRECTS[path]`
    redirects, any other path is a 404; every request is noted in `IMAGE_HOST_HITS`."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            IMAGE_HOST_HITS.append(f"{self.server.server_address[1]}{path}")
            if path in REDIRECTS:
                self.send_response(302)
                self.send_header("Location", REDIRECTS[path])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            data = files.get(path)
            if data is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    host = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=host.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return host


@pytest.fixture(scope="module")
def image_host() -> Iterator[tuple[str, dict[str, bytes]]]:
    """The web server that stands in for the stack's S3."""
    files: dict[str, bytes] = {}
    host = serve_files(files)
    yield f"http://127.0.0.1:{host.server_address[1]}", files
    host.shutdown()
    host.server_close()


@pytest.fixture(scope="module")
def other_host(image_host: tuple[str, dict[str, bytes]]) -> Iterator[str]:
    """Another web server on the machine (another service a page would like probed), same files."""
    host = serve_files(image_host[1])
    yield f"http://127.0.0.1:{host.server_address[1]}"
    host.shutdown()
    host.server_close()


# chat completions: what the model saw


def test_given_an_inline_png_when_asked_plainly_then_the_answer_names_png_and_its_true_size(client, fake):
    # Given a 64x48 PNG as a data URL
    png = data_url("image/png", image_bytes((64, 48)))

    # When the SDK asks about it without streaming
    completion = client.chat.completions.create(
        model="fake-chat", messages=ask("What is in this picture?", image_part(png))
    )

    # Then the answer states what it decoded, the history length and the question
    answer = completion.choices[0].message.content
    assert answer == (
        "I see 1 attachment(s): image 1: PNG 64x48. History: 1 message(s). "
        'You said: "What is in this picture?"'
    )
    assert completion.object == "chat.completion"
    assert completion.model == "fake-chat"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == len(answer.split())
    assert (
        completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    )


def test_given_an_inline_png_when_streamed_then_word_chunks_rebuild_the_same_answer(client):
    # Given a 30x20 PNG as a data URL
    png = data_url("image/png", image_bytes((30, 20)))

    # When the SDK streams the answer
    chunks = list(
        client.chat.completions.create(
            model="fake-chat", messages=ask("Describe it", image_part(png)), stream=True
        )
    )

    # Then the first chunk opens the assistant turn, word-sized chunks carry the text, the last one stops
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(chunk.usage is None for chunk in chunks)
    pieces = [chunk.choices[0].delta.content for chunk in chunks if chunk.choices[0].delta.content]
    text = "".join(pieces)
    assert "image 1: PNG 30x20" in text
    assert len(pieces) == len(text.split()) > 5


def test_given_an_image_url_on_a_web_server_when_asked_then_the_model_downloads_and_decodes_it(
    client, fake, image_host
):
    # Given a 40x30 JPEG served over http
    base, files = image_host
    files["/photos/cat.jpg"] = image_bytes((40, 30), "JPEG")

    # When the SDK asks about its URL (with a query, like a presigned URL)
    completion = client.chat.completions.create(
        model="fake-chat", messages=ask("And this?", image_part(f"{base}/photos/cat.jpg?X-Amz-Signature=abc"))
    )

    # Then the answer names what was downloaded, and the call records where it came from
    assert "image 1: JPEG 40x30" in completion.choices[0].message.content
    (call,) = fake.calls
    assert call["saw"][0]["source"] == "url"
    assert call["saw"][0]["media_type"] == "image/jpeg"


def test_given_an_image_url_that_404s_when_asked_then_the_sdk_raises_bad_request(client, fake, image_host):
    # Given a URL with nothing behind it (a presigned URL gone wrong)
    base, _ = image_host

    # When the SDK asks about it
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(
            model="fake-chat", messages=ask("See?", image_part(f"{base}/missing.png?X-Amz-Signature=secret"))
        )

    # Then the error is OpenAI-shaped, names the failure, and keeps the signature out of the message
    error = raised.value.body
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "invalid_image_url"
    assert "404" in error["message"]
    assert "secret" not in error["message"]
    assert fake.calls[-1]["status"] == 400


def test_given_bytes_that_are_no_image_when_asked_then_the_sdk_raises_bad_request(client):
    # Given a data URL that claims PNG but holds text
    fake_png = data_url("image/png", b"this is not a picture")

    # When / Then the model refuses it, as OpenAI refuses undecodable images
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="fake-chat", messages=ask("Hm?", image_part(fake_png)))
    assert raised.value.body["code"] == "invalid_image_format"


def test_given_a_two_page_pdf_file_part_when_asked_then_the_answer_counts_its_pages(client, fake):
    # Given a 2-page PDF and a GIF in the same message
    parts = (
        pdf_part("report.pdf", pdf_bytes(2)),
        image_part(data_url("image/gif", image_bytes((8, 9), "GIF"))),
    )

    # When the SDK asks about them
    completion = client.chat.completions.create(model="fake-chat", messages=ask("Summarise", *parts))

    # Then both are named, files and images numbered separately
    answer = completion.choices[0].message.content
    assert answer.startswith(
        'I see 2 attachment(s): file 1: PDF "report.pdf" with 2 page(s); image 1: GIF 8x9.'
    )
    assert fake.calls[0]["saw"][0] == {
        "kind": "file",
        "index": 1,
        "format": "PDF",
        "source": "data",
        "bytes": len(pdf_bytes(2)),
        "pages": 2,
        "filename": "report.pdf",
        "media_type": "application/pdf",
    }


def test_given_a_conversation_when_asked_then_history_counts_messages_and_only_the_last_user_text_is_echoed(
    client,
):
    # Given a system prompt, an earlier turn with an image, and a new question
    messages = [
        {"role": "system", "content": "Be brief."},
        *ask("First question", image_part(data_url("image/webp", image_bytes((5, 6), "WEBP")))),
        {"role": "assistant", "content": "First answer"},
        {"role": "user", "content": "Second\n\nquestion " + "x" * 300},
    ]

    # When the SDK asks
    answer = client.chat.completions.create(model="fake-chat", messages=messages).choices[0].message.content

    # Then every message counts, every image is seen, and the echo is the last user text cut to 200 characters
    assert "image 1: WEBP 5x6." in answer
    assert "History: 4 message(s)." in answer
    assert answer.endswith('You said: "Second question ' + "x" * (200 - len("Second question ")) + '..."')


# streaming and length


def test_given_a_word_count_when_streamed_with_usage_then_many_chunks_and_a_final_usage_chunk_arrive(
    client, fake
):
    # Given replies padded to 60 words
    fake.configure(word_count=60)

    # When the SDK streams and asks for usage
    chunks = list(
        client.chat.completions.create(
            model="fake-chat",
            messages=ask("Tell me a long story"),
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    # Then 60 word chunks come, then a finish chunk, then a usage chunk with empty choices
    content = [
        chunk.choices[0].delta.content for chunk in chunks if chunk.choices and chunk.choices[0].delta.content
    ]
    assert len(content) == 60
    usage_chunk = chunks[-1]
    assert usage_chunk.choices == []
    assert usage_chunk.usage is not None
    assert usage_chunk.usage.completion_tokens == 60
    assert usage_chunk.usage.prompt_tokens == 5
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert all(chunk.usage is None for chunk in chunks[:-1])


def test_given_a_chunk_delay_when_streamed_then_chunks_arrive_over_time(client, fake):
    # Given 20-word replies with 10 ms between chunks
    fake.configure(word_count=20, chunk_delay_s=0.01)

    # When the SDK streams, noting when each chunk arrives
    started = time.monotonic()
    stream = client.chat.completions.create(model="fake-chat", messages=ask("Slowly"), stream=True)
    arrivals = [time.monotonic() for _ in stream]

    # Then the reply took at least its 19 pauses, and the chunks were not held back until the end
    assert arrivals[-1] - started >= 0.19
    assert arrivals[-1] - arrivals[1] >= 0.1


def test_given_markers_and_max_tokens_when_asked_then_the_reply_is_padded_then_cut_with_finish_reason_length(
    client,
):
    # Given a prompt asking for 50 words and a 10-token limit
    completion = client.chat.completions.create(
        model="fake-chat", messages=ask("Pad me [[words:50]]"), max_tokens=10
    )

    # Then the reply is cut to 10 words and says why it stopped
    assert len(completion.choices[0].message.content.split()) == 10
    assert completion.choices[0].finish_reason == "length"


# image generation


def test_given_a_size_when_an_image_is_generated_then_a_png_of_that_size_comes_back(client, fake):
    # When the SDK asks for a 128x64 picture as base64
    result = client.images.generate(
        model="fake-image", prompt="a red bicycle", size="128x64", response_format="b64_json", n=1
    )

    # Then it decodes as a PNG of that size, and the same prompt draws the same bytes
    data = base64.b64decode(result.data[0].b64_json)
    with Image.open(io.BytesIO(data)) as picture:
        assert (picture.format, picture.size) == ("PNG", (128, 64))
    again = client.images.generate(model="fake-image", prompt="a red bicycle", size="128x64")
    assert again.data[0].b64_json == result.data[0].b64_json
    assert fake.calls[0] == {
        "endpoint": "images.generations",
        "model": "fake-image",
        "stream": False,
        "status": 200,
        "saw": [],
        "prompt": "a red bicycle",
        "size": "128x64",
    }


def test_given_no_size_or_an_oversized_one_when_an_image_is_generated_then_256_or_a_400(client):
    # When no size is given, Then the picture is 256x256
    result = client.images.generate(model="fake-image", prompt="a boat", response_format="b64_json")
    with Image.open(io.BytesIO(base64.b64decode(result.data[0].b64_json))) as picture:
        assert picture.size == (256, 256)

    # When a side is above 1024, Then the SDK raises a bad request
    with pytest.raises(openai.BadRequestError):
        client.images.generate(model="fake-image", prompt="a boat", size="2048x1024")


# faults


def test_given_fail_next_429_when_called_twice_then_a_rate_limit_error_then_success(client, fake):
    # Given one armed 429
    fake.fail_next(429)

    # When the SDK calls, Then it raises RateLimitError with an immediate Retry-After
    with pytest.raises(openai.RateLimitError) as raised:
        client.chat.completions.create(model="fake-chat", messages=ask("Hello"))
    assert raised.value.response.headers["retry-after"] == "0"

    # When it calls again, Then the answer comes
    assert (
        "Hello"
        in client.chat.completions.create(model="fake-chat", messages=ask("Hello")).choices[0].message.content
    )
    assert [call["status"] for call in fake.calls] == [429, 200]


def test_given_fail_always_500_when_called_then_internal_server_errors_until_cleared(client, fake):
    # Given every call failing with 500
    fake.fail_always(500)

    # When the SDK calls (chat, streamed chat, images), Then each raises InternalServerError
    with pytest.raises(openai.InternalServerError) as raised:
        client.chat.completions.create(model="fake-chat", messages=ask("Hello"))
    assert raised.value.body["type"] == "server_error"
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="fake-chat", messages=ask("Hello"), stream=True)
    with pytest.raises(openai.InternalServerError):
        client.images.generate(model="fake-image", prompt="x")

    # When cleared, Then calls succeed again
    fake.fail_always(None)
    client.chat.completions.create(model="fake-chat", messages=ask("Hello"))
    assert [call["status"] for call in fake.calls] == [500, 500, 500, 200]
    assert fake.calls[1]["stream"] is True


def test_given_a_fail_marker_in_the_prompt_when_asked_then_a_content_policy_400_without_retry(client, fake):
    # When the last user text carries [[fail:400]]
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="fake-chat", messages=ask("Something forbidden [[fail:400]]"))

    # Then the error reads like a content policy refusal
    assert raised.value.body["code"] == "content_policy_violation"
    assert fake.calls[0]["status"] == 400


def test_given_the_http_controls_when_used_then_faults_calls_and_reset_work_over_http(client, fake):
    root = fake.url.removesuffix("/v1")

    # Given a 429 then a 500 armed over HTTP
    assert http("POST", f"{root}/_fake/faults", {"next": [429, 500]}) == (
        200,
        {"next": [429, 500], "always": None},
    )

    # When the SDK calls three times, Then the faults come in order, then the answer
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="fake-chat", messages=ask("One"))
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="fake-chat", messages=ask("Two"))
    client.chat.completions.create(model="fake-chat", messages=ask("Three"))

    # And the calls are readable over HTTP
    status, body = http("GET", f"{root}/_fake/calls")
    assert status == 200
    assert [(call["status"], call.get("text")) for call in body["calls"]] == [
        (429, None),
        (500, None),
        (200, "Three"),
    ]

    # When "always" is set and cleared over HTTP, Then it applies and lifts
    http("POST", f"{root}/_fake/faults", {"always": 503})
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="fake-chat", messages=ask("Four"))
    http("POST", f"{root}/_fake/faults", {"always": None})
    client.chat.completions.create(model="fake-chat", messages=ask("Five"))

    # When a fault is not an error status, Then it is refused
    assert http("POST", f"{root}/_fake/faults", {"next": [200]})[0] == 400

    # When reset over HTTP, Then calls and faults are forgotten
    http("POST", f"{root}/_fake/faults", {"always": 500})
    assert http("POST", f"{root}/_fake/reset", {})[0] == 200
    assert http("GET", f"{root}/_fake/calls") == (200, {"calls": []})
    client.chat.completions.create(model="fake-chat", messages=ask("Six"))


def test_given_the_config_endpoint_when_a_word_count_is_set_then_later_replies_have_that_length(client, fake):
    # Given 40-word replies asked for over HTTP
    root = fake.url.removesuffix("/v1")
    assert http("POST", f"{root}/_fake/config", {"word_count": 40}) == (
        200,
        {"chunk_delay_s": 0.0, "word_count": 40, "refuse": []},
    )

    # When the SDK asks, Then the reply has 40 words
    answer = client.chat.completions.create(model="fake-chat", messages=ask("Hi")).choices[0].message.content
    assert len(answer.split()) == 40


# capabilities: parts the model refuses


def test_given_a_model_that_refuses_file_parts_when_a_pdf_is_sent_then_a_400_as_vllm_answers_it(client, fake):
    # Given a fake that refuses `file` parts
    fake.configure(refuse=["file"])
    # When a PDF is sent, Then the SDK raises vLLM's 400, and the call is recorded as refused
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(
            model="fake-chat", messages=ask("Read", pdf_part("a.pdf", pdf_bytes(1)))
        )
    assert raised.value.body["message"].startswith(
        "Unsupported chat content part type: 'file'. Supported types:"
    )
    assert raised.value.body["param"] == "type"
    assert fake.calls[-1]["status"] == 400
    # And images and text still go through
    png = data_url("image/png", image_bytes((4, 3)))
    answer = client.chat.completions.create(model="fake-chat", messages=ask("See", image_part(png)))
    assert "image 1: PNG 4x3" in answer.choices[0].message.content


def test_given_a_model_that_refuses_images_when_one_is_sent_then_a_400_names_the_part(client, fake):
    # Given a fake that cannot see images (set over HTTP)
    root = fake.url.removesuffix("/v1")
    assert http("POST", f"{root}/_fake/config", {"refuse": ["image"]})[1]["refuse"] == ["image"]
    png = data_url("image/png", image_bytes((4, 3)))
    # When an image is sent, Then OpenAI's 400 for a model without vision, naming the part
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="fake-chat", messages=ask("See", image_part(png)))
    assert (
        raised.value.body["message"] == "Invalid content type. image_url is only supported by certain models."
    )
    assert raised.value.body["param"] == "messages.[0].content.[1].type"
    # And a PDF goes through; after a reset, images do too
    client.chat.completions.create(model="fake-chat", messages=ask("Read", pdf_part("a.pdf", pdf_bytes(1))))
    fake.reset()
    client.chat.completions.create(model="fake-chat", messages=ask("See", image_part(png)))
    # And a kind it does not know is refused as a setting
    assert http("POST", f"{root}/_fake/config", {"refuse": ["audio"]})[0] == 400


def test_given_fake_model_refuse_in_the_environment_when_started_then_it_refuses_those_kinds(monkeypatch):
    # Given FAKE_MODEL_REFUSE, as a local stack's fake model reads it
    monkeypatch.setenv("FAKE_MODEL_REFUSE", "file, image")
    # When a fake model is made without its own setting / Then it refuses both kinds
    assert FakeModel().refuse == {"file", "image"}
    assert FakeModel(refuse=[]).refuse == frozenset()


# protocol edges


def test_given_bad_requests_when_sent_then_openai_shaped_errors_and_the_server_keeps_serving(client, fake):
    root = fake.url.removesuffix("/v1")

    # When the path is unknown, Then a 404 JSON error
    status, body = http("GET", f"{root}/v1/nothing-here")
    assert status == 404
    assert body["error"]["type"] == "not_found_error"

    # When the body is not JSON, Then a 400 JSON error
    status, body = http("POST", f"{fake.url}/chat/completions", raw=b"{not json")
    assert status == 400
    assert body["error"]["type"] == "invalid_request_error"

    # When messages are missing or a part type is unknown, Then the SDK raises a bad request
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="fake-chat", messages=[])
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model="fake-chat", messages=[{"role": "user", "content": [{"type": "video", "video": {}}]}]
        )

    # Then the server still answers, and the models list is there for probes
    assert {model.id for model in client.models.list()} == {"fake-chat", "fake-image"}
    client.chat.completions.create(model="fake-chat", messages=ask("Still there?"))


def test_given_the_module_entry_point_when_run_then_it_prints_its_url_and_serves_until_terminated():
    # Given the fake model started as a process on a free port
    process = subprocess.Popen(
        [sys.executable, "-m", "agentfiles_local.fake_model", "--port", "0"],
        cwd=LOCAL,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        # When its printed URL is used
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        client = OpenAI(base_url=url, api_key="test", max_retries=0, timeout=10)

        # Then it answers
        answer = client.chat.completions.create(model="m", messages=ask("Ping")).choices[0].message.content
        assert answer.endswith('You said: "Ping"')
    finally:
        process.terminate()
        assert process.wait(timeout=5) == 0


# what it fetches, and who may call it


def test_given_an_image_url_on_another_host_when_asked_then_it_is_refused_without_any_request(
    client, fake, image_host, other_host
):
    # Given: an image behind another local service (a port and path probe, say)
    _, files = image_host
    files["/admin/secret.png"] = image_bytes((8, 8))
    # When: a message points the model at it
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(
            model="fake-chat", messages=ask("See?", image_part(f"{other_host}/admin/secret.png"))
        )
    # Then: refused before anything is sent, with one message that tells nothing of what is there
    error = raised.value.body
    assert error["code"] == "invalid_image_url"
    assert "only from this stack's own storage" in error["message"]
    assert "HTTP" not in error["message"] and "200" not in error["message"]
    assert IMAGE_HOST_HITS == []


def test_given_the_stacks_storage_redirecting_elsewhere_when_asked_then_the_redirect_is_not_followed(
    client, fake, image_host, other_host
):
    # Given: an allowed URL that answers with a redirect to another host
    base, files = image_host
    files["/inside.png"] = image_bytes((8, 8))
    REDIRECTS["/photo.png"] = f"{other_host}/inside.png"
    # When
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(
            model="fake-chat", messages=ask("See?", image_part(f"{base}/photo.png"))
        )
    # Then: the redirect is an error and its target was never asked
    assert raised.value.body["code"] == "invalid_image_url"
    port = base.rsplit(":", 1)[1]
    assert [f"{port}/photo.png"] == IMAGE_HOST_HITS


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Host": "rebound.example"},
    ],
)
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/_fake/faults", {"always": 500}),
        ("/_fake/config", {"word_count": 5000}),
        ("/_fake/reset", {}),
        ("/v1/chat/completions", {"model": "fake-chat", "messages": ask("hi")}),
    ],
)
def test_given_a_request_from_a_web_page_when_it_reaches_the_fake_model_then_it_is_refused(
    fake, headers, path, body
):
    # Given: a fault armed by a test, so that a reset would show
    fake.fail_next(503)
    root = fake.url.removesuffix("/v1")
    request = urllib.request.Request(
        f"{root}{path}",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "text/plain", **headers},
    )
    # When: a page on another site posts to it (a form post or a simple fetch)
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=5)
    # Then: 403, and nothing changed
    assert raised.value.code == 403
    assert json.loads(raised.value.read())["error"]["code"] == "cross_site_request"
    assert fake.faults() == {"next": [503], "always": None}
    assert fake.calls == []
