"""Bytes read from S3 per reply, 20-message thread, five attachments: originals vs derived objects.

One thread of ten questions, each answered (20 messages, all in every reply's history),
whose user messages 1, 2, 3, 5 and 7 bring an attachment each: a 12 MP photo, a PDF of
twelve pages of text and eight of pictures, a scanned receipt, the twelve-page pdfLaTeX
report and a 1600x1200 screenshot-like PNG. The same thread is answered twice in the
same run, by the real generate function on moto against the built-in fake model:

- before: the files as they were stored before derived objects existed (no `derived`
  on their rows), so every reply reads every original, as every reply did;
- after: the same files with the derived objects the upload check makes (each image's
  copy for the default geometry, 2048 then 768 on the short side; each PDF's text).

`URL_MODE=inline` (the worker reads every image itself, the worst case for reads; with
presigned or public URLs it reads no image at all, it only signs). The model reads files
(`files: true`): the message being answered gets its PDF as a `file` part, later turns
its text. S3 GETs and their bytes are counted by `harness.calls`.
"""

from __future__ import annotations

import io
import random
from collections import Counter
from dataclasses import dataclass

from PIL import Image
from pypdf import PdfReader, PdfWriter

from agentfiles import model_client
from agentfiles.models.files import TEXT
from agentfiles_local.fake_model import FakeModel
from harness import samples, stored_files
from harness.aws import LocalAws, local_aws
from harness.calls import count_calls

QUESTIONS = 10  # each answered: 20 messages
ATTACHED_AT = {
    1: "photo.jpg",
    2: "report-with-photos.pdf",
    3: "receipt.jpg",
    5: "report.pdf",
    7: "screen.png",
}
MIB = 1024 * 1024


def _photo(width: int = 4032, height: int = 3024) -> bytes:
    """A 12 MP JPEG that compresses like a phone photo: smooth shapes under sensor noise."""
    rng = random.Random(7)
    small = Image.frombytes("RGB", (63, 47), bytes(rng.randrange(256) for _ in range(63 * 47 * 3)))
    image = small.resize((width, height), Image.Resampling.BICUBIC)
    noise = Image.effect_noise((width, height), 24).convert("RGB")
    image = Image.blend(image, noise, 0.12)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _report_with_photos(report: bytes) -> bytes:
    """The report's twelve pages of text, then eight pages that are photos."""
    writer = PdfWriter()
    for page in PdfReader(io.BytesIO(report)).pages:
        writer.add_page(page)
    pictures = io.BytesIO()
    pages = [Image.open(io.BytesIO(_photo(1240, 1754))) for _ in range(8)]
    pages[0].save(pictures, format="PDF", save_all=True, append_images=pages[1:], resolution=150)
    for page in PdfReader(io.BytesIO(pictures.getvalue())).pages:
        writer.add_page(page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _sources() -> dict[str, tuple[bytes, str]]:
    report = stored_files.fixture("report.pdf")
    return {
        "photo.jpg": (_photo(), "image/jpeg"),
        "report-with-photos.pdf": (_report_with_photos(report), "application/pdf"),
        "receipt.jpg": (stored_files.fixture("sources/receipt.jpg"), "image/jpeg"),
        "report.pdf": (report, "application/pdf"),
        "screen.png": (samples.noisy_png(1600, 1200), "image/png"),
    }


def _stored(aws: LocalAws, sources: dict[str, tuple[bytes, str]], derived: bool) -> dict[str, str]:
    """Each source as a ready file, with its derived objects or without; name -> id."""
    ids = {}
    for name, (data, media_type) in sources.items():
        if media_type.startswith("image/"):
            record = stored_files.image(
                aws, data, media_type, name, geometry=stored_files.DEFAULT_GEOMETRY if derived else None
            )
        else:
            record = stored_files.document(aws, name, media_type, with_text=derived, data=data)
        ids[name] = record.id
        assert (TEXT in record.derived or media_type.startswith("image/")) or not derived
    return ids


@dataclass
class Reply:
    gets: int
    bytes: int
    originals: Counter[str]  # original key -> reads in this reply


def _thread(aws: LocalAws, ids: dict[str, str]) -> list[Reply]:
    thread = aws.new_thread()
    replies = []
    for number in range(1, QUESTIONS + 1):
        content: list[dict] = [{"type": "text", "text": f"question {number}"}]
        name = ATTACHED_AT.get(number)
        if name:
            kind = "image" if name.endswith((".jpg", ".png")) else "file"
            content.append({"type": kind, "fileId": ids[name]})
        answer = aws.call_api("POST", f"/threads/{thread}/messages", json_body={"content": content})
        assert answer.status == 201, answer.body
        with count_calls() as calls:
            assert aws.deliver("generations") == {"batchItemFailures": []}
        reply = aws.call_api("GET", f"/threads/{thread}/messages/{answer.body['reply']['id']}").body[
            "message"
        ]
        assert reply["status"] == "success", reply
        originals = Counter(read.key for read in calls.reads if read.key.startswith("files/"))
        replies.append(Reply(len(calls.reads), calls.bytes_read, originals))
    return replies


def _summary(replies: list[Reply]) -> tuple[int, int]:
    """Bytes over the thread, and the most reads of one original over it."""
    reads: Counter[str] = Counter()
    for reply in replies:
        reads.update(reply.originals)
    return sum(r.bytes for r in replies), max(reads.values(), default=0)


def run() -> None:
    sources = _sources()
    sizes = ", ".join(f"{name} {len(data) / MIB:.2f} MiB" for name, (data, _) in sources.items())
    print(f"   attachments: {sizes}")
    with FakeModel() as fake:
        settings = {
            "OPENAI_BASE_URL": fake.url,
            "OPENAI_API_KEY": "bench",
            "URL_MODE": "inline",
            "RETRY_BASE_SECONDS": "0",
            "STREAM_FLUSH_MS": "1000",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "ERROR",
        }
        with local_aws(visibility_timeout_seconds=0, **settings) as aws:
            model_client.reset()
            before = _thread(aws, _stored(aws, sources, derived=False))
            after = _thread(aws, _stored(aws, sources, derived=True))
            print(
                "   reply:  " + " ".join(f"{n:>7}" for n in range(1, QUESTIONS + 1)) + "  (KiB read from S3)"
            )
            print("   before: " + " ".join(f"{r.bytes / 1024:>7.0f}" for r in before))
            print("   after:  " + " ".join(f"{r.bytes / 1024:>7.0f}" for r in after))
            total_before, most_before = _summary(before)
            total_after, most_after = _summary(after)
            gets_before, gets_after = sum(r.gets for r in before), sum(r.gets for r in after)
            print(
                f"   over the thread: before {total_before / MIB:.1f} MiB in {gets_before} GETs, "
                f"after {total_after / MIB:.1f} MiB in {gets_after} GETs; "
                f"ratio {total_after / total_before:.3f}"
            )
            last_before, last_after = before[-1].bytes, after[-1].bytes
            print(
                f"   last reply: before {last_before / 1024:.0f} KiB, after {last_after / 1024:.0f} KiB; "
                f"ratio {last_after / last_before:.3f}"
            )
            print(
                f"   reads of one original over the thread, at most: before {most_before}, "
                f"after {most_after} (target <= 1)"
            )
        model_client.reset()
