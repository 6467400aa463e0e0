"""Real bytes of each accepted kind, made on the spot."""

from __future__ import annotations

import hashlib
import io

from PIL import Image


def png(width: int = 8, height: int = 6, color: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg(width: int = 8, height: int = 6) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (10, 120, 200)).save(buffer, format="JPEG")
    return buffer.getvalue()


def pdf(pages: int = 2) -> bytes:
    buffer = io.BytesIO()
    images = [Image.new("RGB", (40, 40), (255, 255, 255)) for _ in range(pages)]
    images[0].save(buffer, format="PDF", save_all=True, append_images=images[1:])
    return buffer.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def noisy_png(width: int = 64, height: int = 64, seed: int = 1) -> bytes:
    """A PNG that does not compress: its size grows with its pixels."""
    import random

    rng = random.Random(seed)
    image = Image.frombytes(
        "RGB", (width, height), bytes(rng.randrange(256) for _ in range(width * height * 3))
    )
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
