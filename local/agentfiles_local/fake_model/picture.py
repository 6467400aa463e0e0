"""Pictures for `/v1/images/generations`: a PNG of the asked size whose colours come
from the prompt's hash and which carries the prompt's text, so the same prompt
always makes the same bytes and different prompts make visibly different images."""

from __future__ import annotations

import hashlib
import io
import re
import textwrap

from PIL import Image, ImageDraw

from agentfiles_local.fake_model.errors import ModelError

DEFAULT_SIZE = "256x256"
MAX_SIDE = 1024
_SIZE = re.compile(r"^(?P<width>\d{1,5})x(?P<height>\d{1,5})$")


def parse_size(size: object) -> tuple[int, int]:
    """`"WxH"` (or `None`/`"auto"` for the default) with each side in 1..1024, else a 400."""
    if size is None or size == "auto":
        size = DEFAULT_SIZE
    match = _SIZE.match(size) if isinstance(size, str) else None
    if not match:
        raise ModelError(
            400, f"Invalid size {size!r}: expected 'WIDTHxHEIGHT'.", param="size", code="invalid_value"
        )
    width, height = int(match["width"]), int(match["height"])
    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
        raise ModelError(
            400,
            f"Invalid size {size!r}: each side must be between 1 and {MAX_SIDE} pixels.",
            param="size",
            code="invalid_value",
        )
    return width, height


def draw(prompt: str, width: int, height: int, variant: int = 0) -> bytes:
    """A deterministic PNG for `prompt`; `variant` tells apart the images of one `n > 1` request."""
    digest = hashlib.sha256(f"{variant}:{prompt}".encode()).digest()
    background = (digest[0], digest[1], digest[2])
    ink = (0, 0, 0) if sum(background) > 3 * 128 else (255, 255, 255)
    image = Image.new("RGB", (width, height), background)
    canvas = ImageDraw.Draw(image)
    # A shape placed by the hash, so two prompts differ even where the text is unreadably small.
    left, top = digest[3] * width // 512, digest[4] * height // 512
    right, bottom = left + max(1, width // 3), top + max(1, height // 3)
    canvas.ellipse((left, top, right, bottom), fill=(digest[5], digest[6], digest[7]), outline=ink)
    columns = max(8, width // 7)
    lines = textwrap.wrap(prompt, width=columns)[: max(1, height // 14)]
    canvas.multiline_text((4, 4), "\n".join(lines), fill=ink)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
