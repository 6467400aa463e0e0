"""Type sniffing: what the bytes are, checked against what the client declared."""

from __future__ import annotations

import pytest

from agentfiles.logic.sniff import TEXT, matches, normalize_media_type, sniff
from harness import samples


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (samples.png(), "image/png"),
        (samples.jpeg(), "image/jpeg"),
        (b"GIF89a" + b"\0" * 20, "image/gif"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "image/webp"),
        (samples.pdf(), "application/pdf"),
        ("plain text, naïve café".encode(), TEXT),
        (b'{"a": 1}', TEXT),
        (b"\x00\x01\x02binary", None),
        ("café".encode("latin-1"), None),
    ],
)
def test_sniffing_names_what_the_bytes_are(data, expected):
    assert sniff(data, complete=True) == expected


def test_a_multibyte_character_cut_by_the_end_of_a_partial_read_is_still_text():
    # Given 4 KiB of UTF-8 that ends in the middle of "é"
    data = ("é" * 3000).encode()[:4095]
    # Then the prefix is text when more follows, but not when it is the whole file
    assert sniff(data, complete=False) == TEXT
    assert sniff(data, complete=True) is None


@pytest.mark.parametrize(
    ("declared", "sniffed", "ok"),
    [
        ("image/png", "image/png", True),
        ("image/png", "image/jpeg", False),
        ("text/csv", TEXT, True),
        ("application/json", TEXT, True),
        ("image/png", TEXT, False),
        ("application/pdf", None, False),
    ],
)
def test_a_declared_type_must_match_the_sniffed_one(declared, sniffed, ok):
    assert matches(declared, sniffed) is ok


def test_media_types_are_normalised():
    assert normalize_media_type("Image/JPG") == "image/jpeg"
    assert normalize_media_type("text/plain; charset=utf-8") == "text/plain"
