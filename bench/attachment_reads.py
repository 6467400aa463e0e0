"""Bytes read from S3 per reply, 20-message thread, five attachments: originals vs derived objects.

One thread of ten questions, each answered (20 messages, all in every reply's history),
whose user messages 1, 2, 3, 5 and 7 bring an attachment each: a 12 MP iPhone photo as
the phone saves a JPEG (made from `tests/fixtures/images/iphone-arrow.heic`, as `bench
images` makes it), a PDF of the twelve-page pdfLaTeX report and eight pages of that
photo, a scanned receipt, the report itself and a 1600x1200 PNG that does not compress.
The same thread is answered twice in the same run, by the real generate function on
moto against the built-in fake model:

- before: the files as they were stored before derived objects existed (no `derived`
  on their rows), so every reply reads every original, as every reply did;
- after: the same files with the derived objects the upload check makes
  (`logic.derivation`: each image's copy for the default geometry, 2048 then 768 on the
  short side, and its thumbnail; each PDF's text).

`URL_MODE=inline` (the worker reads every image itself, the worst case for reads; with
presigned or public URLs it reads no image at all, it only signs). The model reads files
(`files: true`): the message being answered gets its PDF as a `file` part, later turns
its text. S3 GETs and their bytes are counted by `harness.calls`.
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass

from PIL import Image
from pypdf import PdfReader, PdfWriter

from agentfiles import model_client
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


def _iphone_photo() -> Image.Image:
    from pillow_heif import register_heif_opener

    register_heif_opener()
    return Image.open(io.BytesIO(stored_files.fixture("images/iphone-arrow.heic")))


def _phone_jpeg() -> bytes:
    """The 12 MP photo as the phone saves a JPEG: quality 92, its EXIF and profile."""
    with _iphone_photo() as photo:
        out = io.BytesIO()
        photo.save(out, "JPEG", quality=92, exif=photo.info["exif"], icc_profile=photo.info["icc_profile"])
    return out.getvalue()


def _photos(count: int) -> list[Image.Image]:
    """Pages that are photos: the 12 MP photo, cut in strips."""
    with _iphone_photo() as photo:
        rgb = photo.convert("RGB")
    width, height = rgb.size
    strips = [(0, index * height // count, width, (index + 1) * height // count) for index in range(count)]
    return [rgb.crop(strip).resize((1240, 1754)) for strip in strips]


def _report_with_photos(report: bytes) -> bytes:
    """The report's twelve pages of text, then eight pages that are photos."""
    writer = PdfWriter()
    for page in PdfReader(io.BytesIO(report)).pages:
        writer.add_page(page)
    pictures = io.BytesIO()
    pages = _photos(8)
    pages[0].save(pictures, format="PDF", save_all=True, append_images=pages[1:], resolution=150, quality=90)
    for page in PdfReader(io.BytesIO(pictures.getvalue())).pages:
        writer.add_page(page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _sources() -> dict[str, tuple[bytes, str]]:
    report = stored_files.fixture("documents/report.pdf")
    return {
        "photo.jpg": (_phone_jpeg(), "image/jpeg"),
        "report-with-photos.pdf": (_report_with_photos(report), "application/pdf"),
        "receipt.jpg": (stored_files.fixture("documents/sources/receipt.jpg"), "image/jpeg"),
        "report.pdf": (report, "application/pdf"),
        "screen.png": (samples.noisy_png(1600, 1200), "image/png"),
    }


def _stored(aws: LocalAws, sources: dict[str, tuple[bytes, str]], derived: bool) -> dict[str, str]:
    """Each source as a ready file, with what the upload check makes from it or as a
    file from before; name -> id."""
    return {
        name: stored_files.stored_file(aws, data, media_type, name, derived=derived).id
        for name, (data, media_type) in sources.items()
    }


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
