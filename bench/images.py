"""Images: model bytes of a 12 MP photo (<= 0.15), check time vs bare Pillow (<= 1.3), peak memory at 50 MP.

The 12 MP photo is a real iPhone 8 Plus HEIC (`tests/fixtures/images/iphone-arrow.heic`,
3024 x 4032), and the JPEG the same phone saves in "Most Compatible" mode, made from it
in memory (quality 92, with its EXIF and profile). Everything is OpenAI's high-detail
geometry (2048, 768), the default.

- Bytes: the model copy's size over the original's, for the JPEG and for the HEIC.
- Time: `check_image` (sniff, header, one full decode, the copy, the thumbnail, metadata
  and colour handled) against Pillow alone doing the least anyone would do: open, decode,
  one Lanczos resize to the copy's size, one JPEG encode. Both run in this process on
  the same bytes, alternately, `IMAGE_BENCH_RUNS` times (default 11); figures are CPU
  time medians (libheif decodes on several threads; their time is counted).
- Memory: a fresh interpreter per case (`harness.imports.run_probe`) loads the module,
  Pillow and pillow-heif, reads a 50 MP image (8640 x 5760, the default limit) and checks
  it; the figure is the process's peak resident memory (`VmHWM`, reset after the file is
  read: `getrusage`'s `ru_maxrss` would start at the high-water mark of the process that
  forked it), which is what the upload check's Lambda memory must hold; the check's CPU
  time is printed beside it (what the function's timeout must allow, per record). "+ unbounded" adds a copy
  for a model configured without a size bound, the worst an operator can ask for.
- Import: the module alone, and with Pillow and pillow-heif (a first image), in fresh
  interpreters, CPU time medians.
"""

from __future__ import annotations

import io
import json
import os
import statistics
import tempfile
import time
from functools import cache
from pathlib import Path

from agentfiles.media.images import HEIC, JPEG, PNG, check_image
from agentfiles.models.files import model_image_name
from harness.imports import run_probe

RUNS = int(os.environ.get("IMAGE_BENCH_RUNS", "11"))
IMPORT_RUNS = int(os.environ.get("IMAGE_IMPORT_RUNS", "11"))
FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "images"
OPENAI = (2048, 768)
BYTES_TARGET = 0.15
TIME_TARGET = 1.3
MIB = 1024 * 1024
FIFTY_MP = (5760, 8640)  # portrait, like the 12 MP photo: 49.8 MP


def _cpu(call) -> float:
    started = time.process_time()
    call()
    return time.process_time() - started


def _heif():
    import pillow_heif

    pillow_heif.register_heif_opener()


@cache
def _heic() -> bytes:
    return (FIXTURES / "iphone-arrow.heic").read_bytes()


@cache
def _phone_jpeg() -> bytes:
    from PIL import Image

    _heif()
    with Image.open(io.BytesIO(_heic())) as photo:
        out = io.BytesIO()
        photo.save(out, "JPEG", quality=92, exif=photo.info["exif"], icc_profile=photo.info["icc_profile"])
    return out.getvalue()


def _bare(data: bytes, size: tuple[int, int]) -> None:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        image.load()
        small = image.resize(size, Image.Resampling.LANCZOS)
        small.save(io.BytesIO(), "JPEG", quality=85)


def _ours(data: bytes, media_type: str) -> None:
    check_image(data, media_type, geometries=[OPENAI])


def _bytes() -> None:
    name = model_image_name(*OPENAI)
    print("   bytes the model gets, 12 MP iPhone photo, OpenAI high detail (2048, 768):")
    for label, data, media_type in (("JPEG", _phone_jpeg(), JPEG), ("HEIC", _heic(), HEIC)):
        checked = check_image(data, media_type, geometries=[OPENAI])
        sent = checked.derivatives[name]
        ratio = sent.size / len(data)
        verdict = f" (target <= {BYTES_TARGET}): {'met' if ratio <= BYTES_TARGET else 'MISSED'}"
        print(
            f"   {label} {checked.width}x{checked.height} {len(data):9,d} B -> {sent.media_type} "
            f"{sent.width}x{sent.height} {sent.size:8,d} B: ratio {ratio:.3f}"
            + (verdict if media_type == JPEG else " (HEIC is ~2x denser than JPEG; for reference)")
            + f"; thumbnail {checked.thumbnail.size:,d} B"
        )


def _time() -> None:
    _heif()
    print(f"   check time vs bare Pillow (decode + one resize + one encode), {RUNS} runs, CPU medians:")
    for label, data, media_type in (("HEIC", _heic(), HEIC), ("JPEG", _phone_jpeg(), JPEG)):
        size = (768, 1024)
        _bare(data, size), _ours(data, media_type)  # warm: imports, the HEIF opener
        theirs, ours = [], []
        for _ in range(RUNS):
            theirs.append(_cpu(lambda data=data, size=size: _bare(data, size)))
            ours.append(_cpu(lambda data=data, media_type=media_type: _ours(data, media_type)))
        bare, checked = statistics.median(theirs), statistics.median(ours)
        ratio = checked / bare
        line = f"   12 MP {label}: bare {bare * 1000:6.0f} ms, check_image {checked * 1000:6.0f} ms"
        line += f", ratio {ratio:.2f}"
        if media_type == HEIC:
            line += f" (target <= {TIME_TARGET}): {'met' if ratio <= TIME_TARGET else 'MISSED'}"
        else:
            line += " (a JPEG is decoded at 1/2 scale by libjpeg: faster than a full decode)"
        print(line)


_PEAK = """
import json, time
from PIL import Image
import pillow_heif
from agentfiles.media.images import check_image
def peak():  # the high-water mark of this process's resident memory, in bytes
    status = open("/proc/self/status").read()
    return int(status.split("VmHWM:")[1].split()[0]) * 1024
loaded = peak()
data = open({path!r}, "rb").read()
held = peak()
with open("/proc/self/clear_refs", "w") as refs:
    refs.write("5")  # the high-water mark starts again from what is resident now
started = time.process_time()
checked = check_image(data, {media_type!r}, geometries={geometries!r})
print(json.dumps([loaded, held, peak(), len(data), time.process_time() - started]))
"""


def _fifty_mp(folder: Path) -> list[tuple[str, Path, str]]:
    from PIL import Image

    _heif()
    with Image.open(io.BytesIO(_heic())) as photo:
        big = photo.resize(FIFTY_MP, Image.Resampling.BILINEAR)
    made = []
    for label, name, media_type, options in (
        ("JPEG", "50mp.jpg", JPEG, {"quality": 92}),
        ("PNG", "50mp.png", PNG, {"compress_level": 1}),
        ("HEIC", "50mp.heic", HEIC, {"quality": 60, "enc_params": {"preset": "ultrafast"}}),
    ):
        big.save(folder / name, **options)
        made.append((label, folder / name, media_type))
    return made


def _memory() -> None:
    megapixels = FIFTY_MP[0] * FIFTY_MP[1] / 1e6
    print(f"   peak RSS of one check of a {megapixels:.1f} MP image (fresh interpreter each):")
    with tempfile.TemporaryDirectory() as folder:
        for label, path, media_type in _fifty_mp(Path(folder)):
            for case, geometries in (("default", [OPENAI]), ("+ unbounded", [OPENAI, (None, None)])):
                probe = run_probe(_PEAK.format(path=str(path), media_type=media_type, geometries=geometries))
                if probe.returncode != 0:
                    print(f"   {label} {case}: failed: {probe.stderr.strip().splitlines()[-1]}")
                    continue
                loaded, held, peak, size, cpu = json.loads(probe.stdout)
                print(
                    f"   {label:4s} {size / MIB:5.1f} MiB file, {case:11s}: peak {peak / MIB:6.0f} MiB "
                    f"(libraries loaded {loaded / MIB:3.0f} MiB, file read {held / MIB:4.0f} MiB, "
                    f"the check adds {(peak - held) / MIB:4.0f} MiB); {cpu:.1f} s CPU"
                )


_IMPORT = """
import time
import agentfiles.models.files  # every function has loaded these (pydantic) already
start = time.process_time()
import agentfiles.media.images
module = time.process_time()
from PIL import Image, ImageCms
import pillow_heif
pillow_heif.register_heif_opener()
print(module - start, time.process_time() - module)
"""


def _imports() -> None:
    module, libraries = [], []
    for _ in range(IMPORT_RUNS):
        probe = run_probe(_IMPORT)
        first, then = map(float, probe.stdout.split())
        module.append(first)
        libraries.append(then)
    print(
        f"   cold import ({IMPORT_RUNS} fresh interpreters, CPU medians, after the models every "
        f"function loads): the module {statistics.median(module) * 1000:.1f} ms; then Pillow, "
        f"ImageCms and pillow-heif, at the first image, {statistics.median(libraries) * 1000:.0f} ms"
    )


def run() -> None:
    _bytes()
    _time()
    _memory()
    _imports()
