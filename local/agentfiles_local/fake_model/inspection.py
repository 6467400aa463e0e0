"""What the fake model takes in from a Chat Completions request: the messages'
shape, the last user text (with its test markers), and every attachment, really
decoded. Images are opened with Pillow from data URLs or downloaded from
`http(s)` URLs; PDFs are opened with pypdf. Anything unreadable is refused the
way OpenAI refuses it (a 400 with an `invalid_request_error` body), so a broken
presigned URL or a wrong upload fails a reply here exactly as it would upstream."""

from __future__ import annotations

import base64
import binascii
import io
import ipaddress
import re
import urllib.error
import urllib.request
from collections.abc import Collection, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

from PIL import Image
from pypdf import PdfReader

from agentfiles_local.fake_model.errors import ModelError

DOWNLOAD_TIMEOUT_S = 10.0
# OpenAI refuses images above 20 MB; a download larger than this is cut off and refused.
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024
# Formats OpenAI accepts as image input, named as Pillow names them (MPO is a multi-picture JPEG).
IMAGE_FORMATS = frozenset({"PNG", "JPEG", "MPO", "GIF", "WEBP"})
# Decoding is real, so bound the memory one request can take (a 50 Mpx RGBA image is 200 MB).
MAX_PIXELS = 50_000_000
ECHO_MAX_CHARS = 200
ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_DATA_URL = re.compile(r"^data:(?P<type>[^;,]*)(?P<params>(?:;[^;,]*)*),(?P<data>.*)$", re.DOTALL)
_MARKER = re.compile(r"\[\[(?P<name>fail|words|delay_ms):(?P<value>\d{1,6})\]\]")


@dataclass(frozen=True)
class Markers:
    """Per-request test controls written into the last user text, e.g. `[[fail:400]]`."""

    fail: int | None = None
    words: int | None = None
    delay_ms: int | None = None

    @classmethod
    def parse(cls, text: str) -> Markers:
        found = {match["name"]: int(match["value"]) for match in _MARKER.finditer(text)}
        fail = found.get("fail")
        return cls(
            fail=fail if fail is not None and 400 <= fail <= 599 else None,
            words=found.get("words"),
            delay_ms=found.get("delay_ms"),
        )


@dataclass(frozen=True)
class Seen:
    """One attachment as the model perceived it; `describe()` is how the answer names it."""

    kind: str  # "image" or "file"
    index: int  # 1-based, counted per kind across the whole request
    format: str  # as Pillow names it (PNG, JPEG, GIF, WEBP) or "PDF"
    source: str  # "data" (inline data URL) or "url" (downloaded)
    bytes: int
    width: int | None = None
    height: int | None = None
    pages: int | None = None
    filename: str | None = None
    media_type: str | None = None  # declared by the data URL, or the download's Content-Type

    def describe(self) -> str:
        if self.kind == "image":
            return f"image {self.index}: {self.format} {self.width}x{self.height}"
        return f'file {self.index}: {self.format} "{self.filename or "unnamed"}" with {self.pages} page(s)'

    def to_dict(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}


@dataclass
class Conversation:
    """A validated `messages` array, not yet looked at: no attachment has been decoded."""

    messages: list[dict[str, Any]]
    last_user_texts: list[str] = field(default_factory=list)

    @property
    def last_user_text(self) -> str:
        return " ".join(self.last_user_texts)

    @property
    def markers(self) -> Markers:
        return Markers.parse(self.last_user_text)

    def prompt_words(self) -> int:
        """Words of every text in the request, the stand-in for prompt tokens."""
        return sum(
            count_words(text) for message in self.messages for text in _texts_of(message.get("content"))
        )

    def echo(self) -> str:
        """The last user message's text parts, whitespace collapsed, each cut to 200 characters."""
        pieces = []
        for text in self.last_user_texts:
            flat = " ".join(text.split())
            pieces.append(flat if len(flat) <= ECHO_MAX_CHARS else flat[:ECHO_MAX_CHARS] + "...")
        return " | ".join(piece for piece in pieces if piece)


def count_words(text: str) -> int:
    return len(text.split())


def read_conversation(messages: Any) -> Conversation:
    """Check the `messages` array's shape as OpenAI does (without decoding anything)."""
    if not isinstance(messages, list) or not messages:
        raise ModelError(400, "'messages' must be a non-empty array.", param="messages", code="invalid_value")
    last_user: list[str] = []
    for position, message in enumerate(messages):
        where = f"messages[{position}]"
        if not isinstance(message, dict):
            raise ModelError(400, f"'{where}' must be an object.", param=where, code="invalid_type")
        role = message.get("role")
        if role not in ROLES:
            raise ModelError(
                400,
                f"Invalid value for '{where}.role': {role!r}.",
                param=f"{where}.role",
                code="invalid_value",
            )
        content = message.get("content")
        if content is None and role in {"user", "system", "developer"}:
            raise ModelError(
                400,
                f"Missing required parameter: '{where}.content'.",
                param=f"{where}.content",
                code="missing",
            )
        if content is not None and not isinstance(content, str | list):
            raise ModelError(
                400,
                f"'{where}.content' must be a string or an array.",
                param=f"{where}.content",
                code="invalid_type",
            )
        if isinstance(content, list):
            for part_position, part in enumerate(content):
                _check_part(part, f"{where}.content[{part_position}]")
        if role == "user":
            last_user = list(_texts_of(content))
    return Conversation(messages=messages, last_user_texts=last_user)


def look(conversation: Conversation, seen: list[Seen], fetch_from: Collection[str] = ()) -> None:
    """Decode every attachment in order, appending to `seen` as it goes (so a caller
    that catches the error still knows what was seen before the failure). Image URLs
    are downloaded only from the origins in `fetch_from` (the stack's own S3)."""
    images = files = 0
    for position, message in enumerate(conversation.messages):
        content = message.get("content")
        if not isinstance(content, list):
            continue
        for part_position, part in enumerate(content):
            where = f"messages[{position}].content[{part_position}]"
            if part["type"] == "image_url":
                images += 1
                seen.append(_look_at_image(part["image_url"]["url"], images, where, fetch_from))
            elif part["type"] == "file":
                files += 1
                seen.append(_look_at_file(part["file"], files, where))


# The kinds of part the fake model can be told to refuse (`FakeModel(refuse=...)`).
REFUSABLE = frozenset({"file", "image"})
# What vLLM's chat parser takes (it answers any other part type with this list).
_VLLM_PART_TYPES = "'text', 'image_url', 'input_audio', 'video_url', 'refusal', 'image_embeds', 'audio_url'"


def refusal(conversation: Conversation, refuse: frozenset[str]) -> ModelError | None:
    """The 400 a model without some kinds of input answers, for the first such part:
    a `file` part as vLLM refuses it (no `file` parts at all), an image as OpenAI
    refuses one for a model that cannot see (the part named in `param`)."""
    if not refuse:
        return None
    for position, message in enumerate(conversation.messages):
        content = message.get("content")
        if not isinstance(content, list):
            continue
        for part_position, part in enumerate(content):
            if part["type"] == "file" and "file" in refuse:
                return ModelError(
                    400,
                    f"Unsupported chat content part type: 'file'. Supported types: {_VLLM_PART_TYPES}.",
                    type="BadRequestError",
                    param="type",
                    code="400",
                )
            if part["type"] == "image_url" and "image" in refuse:
                return ModelError(
                    400,
                    "Invalid content type. image_url is only supported by certain models.",
                    param=f"messages.[{position}].content.[{part_position}].type",
                )
    return None


def _check_part(part: Any, where: str) -> None:
    if not isinstance(part, dict):
        raise ModelError(400, f"'{where}' must be an object.", param=where, code="invalid_type")
    kind = part.get("type")
    if kind in {"text", "refusal"}:
        if not isinstance(part.get(kind), str):
            raise ModelError(
                400, f"'{where}.{kind}' must be a string.", param=f"{where}.{kind}", code="invalid_type"
            )
    elif kind == "image_url":
        image_url = part.get("image_url")
        if not isinstance(image_url, dict) or not isinstance(image_url.get("url"), str):
            raise ModelError(
                400,
                f"Missing required parameter: '{where}.image_url.url'.",
                param=f"{where}.image_url.url",
                code="missing",
            )
    elif kind == "file":
        file = part.get("file")
        if not isinstance(file, dict):
            raise ModelError(
                400, f"Missing required parameter: '{where}.file'.", param=f"{where}.file", code="missing"
            )
        if file.get("file_id") is not None and file.get("file_data") is None:
            raise ModelError(
                400,
                "The fake model has no Files API: send the file as 'file_data' (a base64 data URL).",
                param=f"{where}.file.file_id",
                code="invalid_value",
            )
        if not isinstance(file.get("file_data"), str):
            raise ModelError(
                400,
                f"Missing required parameter: '{where}.file.file_data'.",
                param=f"{where}.file",
                code="missing",
            )
    else:
        raise ModelError(
            400,
            f"Invalid value: {kind!r}. Supported values are: 'text', 'image_url', 'refusal' and 'file'.",
            param=f"{where}.type",
            code="invalid_value",
        )


def _texts_of(content: Any) -> Iterator[str]:
    if isinstance(content, str):
        yield content
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
                yield part["text"]


def _look_at_image(url: str, index: int, where: str, fetch_from: Collection[str] = ()) -> Seen:
    if url.startswith("data:"):
        media_type, data = _decode_data_url(url, where, code="invalid_image_url")
        source = "data"
    elif urlsplit(url).scheme in {"http", "https"}:
        media_type, data = _download(url, where, fetch_from)
        source = "url"
    else:
        raise ModelError(
            400,
            "Invalid image URL: expected an http(s) URL or a base64 data URL.",
            param=f"{where}.image_url.url",
            code="invalid_image_url",
        )
    try:
        with Image.open(io.BytesIO(data)) as image:
            image_format, (width, height) = image.format or "unknown", image.size
            if width * height > MAX_PIXELS:
                raise ModelError(
                    400,
                    f"Image {index} is too large ({width}x{height}).",
                    param=f"{where}.image_url.url",
                    code="image_too_large",
                )
            image.load()  # decode the pixels too: a truncated file fails here, not in Image.open
    except ModelError:
        raise
    except Exception as error:  # untrusted bytes: any failure to decode is the caller's problem
        raise ModelError(
            400,
            f"Image {index} could not be decoded ({type(error).__name__}).",
            param=f"{where}.image_url.url",
            code="invalid_image_format",
        ) from error
    if image_format not in IMAGE_FORMATS:
        raise ModelError(
            400,
            f"You uploaded an unsupported image ({image_format}). Supported formats: png, jpeg, gif, webp.",
            param=f"{where}.image_url.url",
            code="invalid_image_format",
        )
    return Seen(
        kind="image",
        index=index,
        format=image_format,
        source=source,
        bytes=len(data),
        width=width,
        height=height,
        media_type=media_type or None,
    )


def _look_at_file(file: dict[str, Any], index: int, where: str) -> Seen:
    file_data: str = file["file_data"]
    filename = file.get("filename") if isinstance(file.get("filename"), str) else None
    if file_data.startswith("data:"):
        media_type, data = _decode_data_url(file_data, where, code="invalid_file")
    else:
        media_type, data = "", _decode_base64(file_data, where, code="invalid_file")
    if media_type and media_type != "application/pdf":
        raise ModelError(
            400,
            f"Unsupported file type {media_type!r} in a file part: only PDFs are supported.",
            param=f"{where}.file.file_data",
            code="invalid_file_format",
        )
    try:
        pages = len(PdfReader(io.BytesIO(data)).pages)
    except Exception as error:  # untrusted bytes, as for images
        raise ModelError(
            400,
            f"File {index} ({filename or 'unnamed'}) is not a readable PDF ({type(error).__name__}).",
            param=f"{where}.file.file_data",
            code="invalid_file_format",
        ) from error
    return Seen(
        kind="file",
        index=index,
        format="PDF",
        source="data",
        bytes=len(data),
        pages=pages,
        filename=filename,
        media_type=media_type or None,
    )


def _decode_data_url(url: str, where: str, *, code: str) -> tuple[str, bytes]:
    match = _DATA_URL.match(url)
    if not match or "base64" not in match["params"].lower().split(";"):
        raise ModelError(
            400, "Invalid data URL: expected data:<media type>;base64,<data>.", param=where, code=code
        )
    return match["type"].strip().lower(), _decode_base64(match["data"], where, code=code)


def _decode_base64(text: str, where: str, *, code: str) -> bytes:
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as error:
        raise ModelError(400, "Invalid base64 data.", param=where, code=code) from error


def origin_of(url: str) -> str:
    """`scheme://host:port`, lower-cased, with the scheme's default port spelled out."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or {"http": 80, "https": 443}.get(scheme)
    except ValueError:
        port = None
    return f"{scheme}://{(parts.hostname or '').lower()}:{port}"


def _download(url: str, where: str, fetch_from: Collection[str] = ()) -> tuple[str, bytes]:
    """GET the image as OpenAI would, but only from an origin in `fetch_from` (the
    stack's own S3), and following no redirect: a URL anywhere else is refused before
    anything is sent, with one message whatever is behind it, so that the model is no
    probe of the developer's machine. The URL's query (a presigned signature) stays out
    of messages."""
    shown = _without_query(url)
    allowed = {origin_of(origin) for origin in fetch_from}
    if origin_of(url) not in allowed:
        raise ModelError(
            400,
            "Image URLs are fetched only from this stack's own storage; send the image inline "
            "(a data URL) or as a URL the API signed.",
            param=f"{where}.image_url.url",
            code="invalid_image_url",
        )
    request = urllib.request.Request(url, headers={"User-Agent": "agentfiles-fake-model/1"})
    try:
        with _opener_for(url).open(request, timeout=DOWNLOAD_TIMEOUT_S) as response:
            data = response.read(MAX_DOWNLOAD_BYTES + 1)
            media_type = (response.headers.get_content_type() or "") if response.headers else ""
    except urllib.error.HTTPError as error:
        raise ModelError(
            400,
            f"Error while downloading {shown}: HTTP {error.code} {error.reason}.",
            param=f"{where}.image_url.url",
            code="invalid_image_url",
        ) from error
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise ModelError(
            400,
            f"Error while downloading {shown}: {reason}.",
            param=f"{where}.image_url.url",
            code="invalid_image_url",
        ) from error
    if len(data) > MAX_DOWNLOAD_BYTES:
        raise ModelError(
            400,
            f"The image at {shown} is larger than {MAX_DOWNLOAD_BYTES} bytes.",
            param=f"{where}.image_url.url",
            code="image_too_large",
        )
    return media_type, data


def _without_query(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an error: S3 answers a signed GET itself, and a redirect could point
    anywhere (the check on the URL's origin would be for nothing)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _opener_for(url: str) -> urllib.request.OpenerDirector:
    """Loopback URLs (the local stack's S3) never go through a proxy set in the environment."""
    host = urlsplit(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if loopback:
        return urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects)
    return urllib.request.build_opener(_NoRedirects)
