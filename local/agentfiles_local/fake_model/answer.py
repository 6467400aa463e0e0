"""The fake model's reply: a deterministic sentence about what it saw, padded with
filler words to a target length, and the same reply cut into word-sized stream
chunks. Words stand in for tokens everywhere (usage counts them too)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from agentfiles_local.fake_model.inspection import Seen, count_words

# Cycled after the answer when a word count is asked for; fixed so replies are reproducible.
FILLER = (
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliett",
    "kilo",
    "lima",
)
# Enough for a reply of over 1 MiB of text (filler words average six characters).
MAX_WORDS = 200_000
_WORD = re.compile(r"\s*\S+")


@dataclass(frozen=True)
class Reply:
    text: str
    finish_reason: str  # "stop", or "length" when the request's max tokens cut it

    @property
    def words(self) -> int:
        return count_words(self.text)

    def chunks(self) -> list[str]:
        """Word-sized pieces that concatenate back to `text` exactly (each keeps its leading space)."""
        return _WORD.findall(self.text)


def compose(seen: Sequence[Seen], message_count: int, echo: str) -> str:
    """`I see N attachment(s): <each>. History: M message(s). You said: "<echo>"`."""
    described = "; ".join(item.describe() for item in seen)
    attachments = f"I see {len(seen)} attachment(s)" + (f": {described}." if described else ".")
    return f'{attachments} History: {message_count} message(s). You said: "{echo}"'


def reply(text: str, *, word_count: int | None, max_tokens: int | None) -> Reply:
    """Pad `text` with filler up to `word_count` words, then cut it to `max_tokens` words."""
    words = count_words(text)
    target = min(word_count or 0, MAX_WORDS)
    if target > words:
        text = " ".join([text, *(FILLER[i % len(FILLER)] for i in range(target - words))])
    if max_tokens is not None and count_words(text) > max_tokens:
        return Reply(text="".join(_WORD.findall(text)[:max_tokens]), finish_reason="length")
    return Reply(text=text, finish_reason="stop")
