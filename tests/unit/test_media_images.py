"""Images as a model gets them, on photos from real phones (`tests/fixtures/images/`):
upright, without a byte of the original's metadata, fitted to each model's geometry and
never enlarged, with a small thumbnail; truncated files and decompression bombs refused
with their codes, the bomb before a pixel is decoded."""

from __future__ import annotations

import io
import json
from functools import cache
from pathlib import Path

import pillow_heif
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image, ImageChops, ImageStat

from agentfiles.logic.catalog import Geometry
from agentfiles.media import images
from agentfiles.media.images import (
    AVIF,
    BMP,
    GIF,
    HEIC,
    HEIF,
    JPEG,
    PNG,
    THUMBNAIL_MAX_SIDE,
    TIFF,
    WEBP,
    CheckedImage,
    Derived,
    ImageRejected,
    ImageTooLarge,
    UnreadableImage,
    check_image,
    fitted_size,
    probe_image,
    sniff_image,
)
from agentfiles.models.files import model_image_name
from harness.imports import run_probe
from tests.fixtures.images.make_fixtures import png_bomb

pillow_heif.register_heif_opener()  # the tests' own references open the HEIC photos

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "images"
OPENAI = (2048, 768)  # OpenAI's high-detail geometry, the default
OPENAI_NAME = model_image_name(*OPENAI)
# What a model must never be sent: the markers of EXIF, XMP, ICC and the phone's own tags.
METADATA_MARKERS = (
    b"Exif\x00\x00",
    b"ns.adobe.com/xap",
    b"ICC_PROFILE",
    b"iCCP",
    b"eXIf",
    b"iTXt",
    b"Apple",
    b"iPhone",
)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def opened(derived: Derived) -> Image.Image:
    image = Image.open(io.BytesIO(derived.data))
    image.load()
    return image


def assert_no_metadata(derived: Derived) -> None:
    image = opened(derived)
    assert not image.getexif()
    assert not {"exif", "xmp", "icc_profile", "XML:com.adobe.xmp", "photoshop", "comment"} & set(image.info)
    for marker in METADATA_MARKERS:
        assert marker not in derived.data, marker


def difference(first: Image.Image, second: Image.Image) -> float:
    """Mean absolute difference of two RGB images of one size, 0-255."""
    return sum(ImageStat.Stat(ImageChops.difference(first.convert("RGB"), second.convert("RGB"))).mean) / 3


@cache
def arrow_upright(size: tuple[int, int]) -> Image.Image:
    """The iPhone's arrow photo, as it was taken (the arrow points up), at `size`."""
    with Image.open(FIXTURES / "iphone-arrow.heic") as photo:
        return photo.resize(size, Image.Resampling.LANCZOS)


@cache
def phone_jpeg_12mp() -> bytes:
    """The 12 MP arrow photo as the JPEG an iPhone saves in "Most Compatible" mode, with
    its EXIF and colour profile (made here: a 12 MP JPEG would be ~2 MB in the repo)."""
    with Image.open(FIXTURES / "iphone-arrow.heic") as photo:
        out = io.BytesIO()
        photo.save(out, "JPEG", quality=92, exif=photo.info["exif"], icc_profile=photo.info["icc_profile"])
    return out.getvalue()


# ---------------------------------------------------------------------------- orientation


def test_a_sideways_phone_jpeg_reaches_the_model_upright():
    # Given a JPEG stored on its side (600 x 450 pixels) with EXIF orientation 6
    data = fixture("sideways.jpg")
    with Image.open(io.BytesIO(data)) as stored:
        assert stored.size == (600, 450) and stored.getexif()[0x0112] == 6

    # When it is checked
    checked = check_image(data, JPEG, geometries=[OPENAI])

    # Then the file is 450 x 600, and what the model gets is the picture as it was taken:
    # the arrow points up, with no orientation tag left for a viewer to apply again
    assert (checked.width, checked.height) == (450, 600)
    sent = opened(checked.derivatives[OPENAI_NAME])
    assert sent.size == (450, 600)
    assert 0x0112 not in sent.getexif()
    upright = difference(sent, arrow_upright((450, 600)))
    on_its_side = difference(
        sent, arrow_upright((600, 450)).transpose(Image.Transpose.ROTATE_90).resize((450, 600))
    )
    assert upright < 4 < on_its_side
    # And the thumbnail is upright too
    thumbnail = opened(checked.thumbnail)
    assert thumbnail.size == (192, 256)
    assert difference(thumbnail, arrow_upright((192, 256))) < 6


def test_a_12_megapixel_jpeg_on_its_side_is_decoded_small_and_sent_upright():
    # Given the 12 MP photo stored on its side (4032 x 3024) with orientation 6
    with Image.open(io.BytesIO(phone_jpeg_12mp())) as photo:
        exif = photo.getexif()
        exif[0x0112] = 6
        out = io.BytesIO()
        photo.transpose(Image.Transpose.ROTATE_90).save(out, "JPEG", quality=92, exif=exif.tobytes())

    # When it is checked (libjpeg decodes it at half scale: the copy is far smaller)
    checked = check_image(out.getvalue(), JPEG, geometries=[OPENAI])

    # Then the file is portrait, and the model gets the arrow upright at 768 x 1024
    assert (checked.width, checked.height) == (3024, 4032)
    sent = opened(checked.derivatives[OPENAI_NAME])
    assert sent.size == (768, 1024)
    assert difference(sent, arrow_upright((768, 1024))) < 4


def test_a_heic_taken_sideways_is_upright():
    # Given the sideways photo as a phone writes a HEIC: the rotation in the container
    out = io.BytesIO()
    with Image.open(FIXTURES / "sideways.jpg") as sideways:
        sideways.save(out, "HEIF", quality=80, exif=sideways.getexif().tobytes())

    # When it is probed and checked / Then it is 450 x 600, upright
    assert probe_image(out.getvalue()) == (450, 600)
    sent = opened(check_image(out.getvalue(), HEIC, geometries=[OPENAI]).derivatives[OPENAI_NAME])
    assert difference(sent, arrow_upright((450, 600))) < 6


def test_the_upright_size_is_read_from_the_header_without_decoding():
    # Given the sideways JPEG / When it is probed / Then its size is the upright one
    assert probe_image(fixture("sideways.jpg")) == (450, 600)
    # And a phone's HEIC is 12 MP in portrait
    assert probe_image(fixture("iphone-arrow.heic")) == (3024, 4032)


# ---------------------------------------------------------------------------- metadata


def test_a_camera_jpeg_loses_its_gps_position_and_every_camera_tag():
    # Given an iPhone JPEG with a GPS position, make, model, lens and times, XMP and a
    # Display P3 profile
    data = fixture("camera-gps.jpg")
    with Image.open(io.BytesIO(data)) as original:
        exif = original.getexif()
        assert exif.get_ifd(0x8825)[2] and exif[0x0110] == "iPhone XS"
        assert original.info["xmp"] and original.info["icc_profile"]

    # When it is checked for two geometries
    checked = check_image(data, JPEG, geometries=[OPENAI, (None, None)])

    # Then no copy, nor the thumbnail, carries any of it
    for derived in [*checked.derivatives.values(), checked.thumbnail]:
        assert_no_metadata(derived)


def test_a_phone_heic_is_accepted_and_stripped_like_a_jpeg():
    # Given an iPhone XS HEIC with GPS, camera tags, XMP and an ICC profile
    data = fixture("iphone-pug.heic")
    assert sniff_image(data) == HEIC

    # When it is checked, declared as HEIC or as HEIF
    for declared in (HEIC, HEIF):
        checked = check_image(data, declared, geometries=[OPENAI])

        # Then the model gets a JPEG of its short side fitted to 768, without metadata
        assert (checked.width, checked.height) == (1025, 900)
        sent = checked.derivatives[OPENAI_NAME]
        assert (sent.media_type, sent.width, sent.height) == (JPEG, 875, 768)
        assert opened(sent).format == "JPEG"
        assert_no_metadata(sent)
        assert_no_metadata(checked.thumbnail)


def test_an_embedded_colour_profile_is_converted_to_srgb_and_dropped():
    # Given flat colour tagged with the iPhone's Display P3 profile
    icc = Image.open(FIXTURES / "iphone-pug.heic").info["icc_profile"]
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 100, 50)).save(out, "PNG", icc_profile=icc)

    # When it is checked
    checked = check_image(out.getvalue(), PNG, geometries=[OPENAI])

    # Then the colour is what it looks like in sRGB (P3's red is redder than sRGB's),
    # and no profile is left to interpret it again
    sent = opened(checked.derivatives[OPENAI_NAME])
    red, green, blue = sent.convert("RGB").getpixel((32, 32))
    assert red > 205 and green < 100 and blue < 50
    assert "icc_profile" not in sent.info


# ---------------------------------------------------------------------------- geometry


def test_a_12_megapixel_phone_photo_is_fitted_to_openais_geometry():
    # Given a 12 MP iPhone photo, as HEIC and as JPEG (3024 x 4032, portrait)
    for data, declared in ((fixture("iphone-arrow.heic"), HEIC), (phone_jpeg_12mp(), JPEG)):
        # When it is checked for OpenAI's high-detail geometry
        checked = check_image(data, declared, geometries=[OPENAI])

        # Then the file keeps its full size, and the model gets 768 x 1024: within
        # 2048 x 2048, then 768 on the short side, as OpenAI would scale it anyway
        assert (checked.width, checked.height) == (3024, 4032)
        sent = checked.derivatives[OPENAI_NAME]
        assert (sent.media_type, sent.width, sent.height) == (JPEG, 768, 1024)
        assert opened(sent).size == (768, 1024)
        # And it is the photo, upright
        assert difference(opened(sent), arrow_upright((768, 1024))) < 4
        # And a small fraction of the original's bytes
        assert sent.size < 0.15 * len(phone_jpeg_12mp())


def test_each_geometry_gets_its_own_copy_and_equal_sizes_share_one():
    # Given a 12 MP JPEG and three geometries: OpenAI's, a long side of 1568 only (as
    # Anthropic's models use), no bound at all, and one that fits the same as OpenAI's
    geometries = [OPENAI, (1568, None), (None, None), (1024, 768)]

    # When it is checked
    checked = check_image(phone_jpeg_12mp(), JPEG, geometries=geometries)

    # Then each geometry's copy is named for it and fitted to it
    sizes = {name: (d.width, d.height) for name, d in checked.derivatives.items()}
    assert sizes == {
        "model-2048x768": (768, 1024),
        "model-1568x0": (1176, 1568),
        "model-0x0": (3024, 4032),
        "model-1024x768": (768, 1024),
    }
    # And two geometries that fit the image alike get the same bytes, encoded once
    assert checked.derivatives["model-2048x768"] is checked.derivatives["model-1024x768"]
    for name, derived in checked.derivatives.items():
        assert opened(derived).size == sizes[name]


def test_the_catalogs_geometries_name_the_copies_they_get():
    # Given the geometries as the catalog gives them (`image_geometries()`)
    geometries = [Geometry(2048, 768), Geometry(1568, None)]
    # When a photo is checked for them / Then each copy is under its geometry's name
    checked = check_image(fixture("iphone-pug.heic"), HEIC, geometries=geometries)
    assert set(checked.derivatives) == {geometry.derived_name for geometry in geometries}


def test_a_small_image_is_never_enlarged():
    # Given a 240 x 120 logo and a 640 x 562 photo
    for data, size in ((fixture("logo-alpha.png"), (240, 120)), (fixture("camera-gps.jpg"), (640, 562))):
        # When checked for geometries all larger than the image
        checked = check_image(data, None, geometries=[OPENAI, (1568, None)])
        # Then every copy and the thumbnail keep their size or less
        for derived in checked.derivatives.values():
            assert (derived.width, derived.height) == size
        assert max(checked.thumbnail.width, checked.thumbnail.height) <= THUMBNAIL_MAX_SIDE
        assert checked.thumbnail.width <= size[0]


@given(
    width=st.integers(1, 20_000),
    height=st.integers(1, 20_000),
    side=st.none() | st.integers(64, 4096),
    short=st.none() | st.integers(64, 4096),
)
def test_a_fitted_size_keeps_within_every_bound_and_the_aspect_ratio(width, height, side, short):
    # Given any image size and geometry / When it is fitted
    fitted_width, fitted_height = fitted_size(width, height, side, short)
    # Then it is never larger than the image, nor than either bound (a side can only be
    # rounded up to 1 pixel), and its shape is the image's to a pixel
    assert 1 <= fitted_width <= width and 1 <= fitted_height <= height
    if side:
        assert max(fitted_width, fitted_height) <= max(side, 1)
    if short:
        assert min(fitted_width, fitted_height) <= short
    if min(fitted_width, fitted_height) > 1:
        # each side is the scaled one rounded, so the shapes differ by half a pixel a side
        assert abs(fitted_width * height - fitted_height * width) <= (width + height) / 2


# ---------------------------------------------------------------------------- formats


def test_transparency_stays_png_for_the_model_and_webp_in_the_thumbnail():
    # Given a logo on a transparent background
    data = fixture("logo-alpha.png")

    # When it is checked
    checked = check_image(data, PNG, geometries=[OPENAI])

    # Then the model gets a PNG that is still transparent where the logo is not
    sent = checked.derivatives[OPENAI_NAME]
    assert sent.media_type == PNG
    image = opened(sent)
    assert image.mode == "RGBA" and image.getpixel((0, 0))[3] == 0 and image.getpixel((60, 60))[3] == 255
    # And the thumbnail keeps its alpha too
    thumbnail = opened(checked.thumbnail)
    assert checked.thumbnail.media_type == WEBP and thumbnail.mode == "RGBA"
    assert thumbnail.getpixel((0, 0))[3] == 0


def test_a_screenshot_like_png_stays_png_and_a_photo_png_becomes_jpeg():
    # Given a flat drawing and a photo, both saved as opaque PNGs
    drawing = Image.new("RGB", (800, 600), "white")
    for x in range(0, 800, 40):
        drawing.paste((20, 20, 20), (x, 0, x + 2, 600))
    photo = arrow_upright((600, 800))
    for image, kept in ((drawing, PNG), (photo, JPEG)):
        out = io.BytesIO()
        image.save(out, "PNG")
        # When each is checked / Then the drawing stays lossless, the photo is a JPEG
        assert (
            check_image(out.getvalue(), PNG, geometries=[OPENAI]).derivatives[OPENAI_NAME].media_type == kept
        )


def test_the_thumbnail_is_a_256_pixel_webp_without_metadata():
    # Given photos from phones, of every orientation
    for name in ("iphone-arrow.heic", "iphone-pug.heic", "camera-gps.jpg", "sideways.jpg"):
        # When one is checked, for no model at all
        checked = check_image(fixture(name), None, geometries=())
        # Then it has only a thumbnail: WebP, its long side 256, no metadata
        assert checked.derivatives == {}
        thumbnail = checked.thumbnail
        assert thumbnail.media_type == WEBP and max(thumbnail.width, thumbnail.height) == THUMBNAIL_MAX_SIDE
        assert opened(thumbnail).size == (thumbnail.width, thumbnail.height)
        assert_no_metadata(thumbnail)


def test_a_generated_png_gets_only_a_thumbnail():
    # Given a PNG as an image model returns it
    out = io.BytesIO()
    arrow_upright((1024, 1024)).save(out, "PNG")
    # When it is checked with no geometry
    checked = check_image(out.getvalue(), PNG, geometries=())
    # Then the picture is kept as it is (no copy) and gets its thumbnail
    assert isinstance(checked, CheckedImage) and checked.derivatives == {}
    assert (checked.width, checked.height) == (1024, 1024)
    assert (checked.thumbnail.width, checked.thumbnail.height) == (256, 256)


def _encoded(format: str, **options) -> bytes:
    out = io.BytesIO()
    arrow_upright((120, 160)).save(out, format, **options)
    return out.getvalue()


@pytest.mark.parametrize(
    ("format", "media_type"),
    [
        ("JPEG", JPEG),
        ("PNG", PNG),
        ("WEBP", WEBP),
        ("GIF", GIF),
        ("TIFF", TIFF),
        ("BMP", BMP),
        ("AVIF", AVIF),
    ],
)
def test_each_format_read_is_sniffed_and_sent_as_jpeg_png_or_webp(format, media_type):
    # Given a photo saved by Pillow in the format
    data = _encoded(format)
    # When it is sniffed and checked
    assert sniff_image(data) == media_type
    checked = check_image(data, media_type, geometries=[OPENAI])
    # Then it decodes, at its size, to a type every model takes
    sent = checked.derivatives[OPENAI_NAME]
    assert (checked.width, checked.height) == (120, 160)
    assert sent.media_type in images.MODEL_TYPES
    assert opened(sent).size == (120, 160)


def test_cmyk_and_16_bit_images_are_sent_as_8_bit_rgb_or_grey():
    # Given a print-ready CMYK JPEG and a 16-bit greyscale PNG of the same photo
    photo = arrow_upright((120, 160))
    cmyk, deep = io.BytesIO(), io.BytesIO()
    photo.convert("CMYK").save(cmyk, "JPEG", quality=95)
    photo.convert("L").convert("I").point(lambda value: value * 257).convert("I;16").save(deep, "PNG")

    # When each is checked / Then the model gets the photo in 8 bits, tones kept
    for data, mode in ((cmyk.getvalue(), "RGB"), (deep.getvalue(), "L")):
        sent = opened(check_image(data, None, geometries=[OPENAI]).derivatives[OPENAI_NAME])
        assert sent.mode == mode
        assert difference(sent, photo) < 6


def test_only_the_first_frame_of_an_animation_is_sent():
    # Given an animated GIF of two frames, black then white
    out = io.BytesIO()
    black, white = Image.new("RGB", (64, 64), "black"), Image.new("RGB", (64, 64), "white")
    black.save(out, "GIF", save_all=True, append_images=[white], duration=100)
    # When it is checked / Then the model gets the first frame
    sent = opened(check_image(out.getvalue(), GIF, geometries=[OPENAI]).derivatives[OPENAI_NAME])
    assert sent.convert("L").getpixel((32, 32)) < 10


def test_what_is_not_an_image_is_not_sniffed_as_one():
    for data in (
        b"",
        b"%PDF-1.7\n",
        b"BM\x00\x00",
        b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isommp41",
        b"hello",
    ):
        assert sniff_image(data) is None


# ---------------------------------------------------------------------------- refusals


def test_a_truncated_jpeg_is_refused_as_unreadable():
    # Given the first 20 KB of a phone JPEG, whose header is whole
    data = fixture("truncated.jpg")
    assert probe_image(data) == (640, 562)

    # When it is checked / Then it is refused with a reason a person can read
    with pytest.raises(UnreadableImage) as refused:
        check_image(data, JPEG, geometries=[OPENAI])
    assert refused.value.code == "unreadable_image"
    assert refused.value.message.startswith("unreadable_image: the JPEG does not decode in full")
    assert "truncated" in refused.value.message


def test_a_truncated_heic_is_refused_as_unreadable():
    # Given the first half of a phone HEIC / When it is checked / Then it is refused
    data = fixture("iphone-pug.heic")
    with pytest.raises(UnreadableImage, match=r"^unreadable_image: "):
        check_image(data[: len(data) // 2], HEIC, geometries=[OPENAI])


def test_content_that_is_not_what_was_declared_is_refused():
    with pytest.raises(UnreadableImage, match="is a PNG image, not the declared image/jpeg"):
        check_image(fixture("logo-alpha.png"), JPEG)
    with pytest.raises(UnreadableImage, match="not an image of a type read here"):
        check_image(b"%PDF-1.7\n" + b"\x00" * 100, None)


def test_a_decompression_bomb_is_refused_before_a_pixel_is_decoded():
    # Given a 429-byte PNG declaring 30000 x 30000 pixels (900 MP, 2.7 GB as RGB)
    data = fixture("bomb.png")
    assert data == png_bomb() and len(data) < 1024

    # When it is probed or checked / Then it is refused as too large, saying why
    for call in (lambda: probe_image(data), lambda: check_image(data, PNG, geometries=[OPENAI])):
        with pytest.raises(ImageTooLarge) as refused:
            call()
        assert refused.value.code == "image_too_large"
        assert refused.value.message == "image_too_large: the PNG declares 900.0 MP, over the 50.0 MP limit"


# The high-water mark of a process's resident memory, in KiB. Not getrusage's ru_maxrss:
# on Linux a child starts with the mark of the process that forked it (here, pytest's).
PEAK_KIB = "int(open('/proc/self/status').read().split('VmHWM:')[1].split()[0])"


def test_the_bomb_costs_no_memory_to_refuse():
    # Given a fresh interpreter that has loaded Pillow and read the bomb
    probe = run_probe(
        "import json\n"
        "from PIL import Image\n"
        "from agentfiles.media.images import check_image, ImageTooLarge\n"
        f"data = open({str(FIXTURES / 'bomb.png')!r}, 'rb').read()\n"
        f"before = {PEAK_KIB}\n"
        # When it checks it
        "try:\n    check_image(data, 'image/png', geometries=[(2048, 768)])\n"
        "except ImageTooLarge:\n    pass\n"
        f"print(json.dumps([before, {PEAK_KIB}]))"
    )
    assert probe.returncode == 0, probe.stderr
    before, after = json.loads(probe.stdout)
    # Then its peak memory grows by under 10 MB, not the 2.7 GB a decode would take
    assert after - before < 10 * 1024


def test_an_image_over_the_pixel_limit_is_refused_with_its_size():
    # Given a 640 x 562 photo and a limit of 0.3 MP
    with pytest.raises(ImageTooLarge) as refused:
        check_image(fixture("camera-gps.jpg"), JPEG, max_pixels=300_000)
    assert refused.value.message == "image_too_large: the JPEG is 640x562 (0.4 MP), over the 0.3 MP limit"
    assert isinstance(refused.value, ImageRejected)


def test_the_module_imports_neither_pillow_nor_pillow_heif_nor_aws():
    # Given a fresh interpreter / When the module is imported
    probe = run_probe("import json, sys, agentfiles.media.images; print(json.dumps(sorted(sys.modules)))")
    assert probe.returncode == 0, probe.stderr
    loaded = set(json.loads(probe.stdout))
    # Then the image libraries wait for the first image (the API only sniffs), and
    # nothing of AWS or the data layer comes with it
    assert not {"PIL", "pillow_heif", "boto3", "botocore", "agentfiles.data", "agentfiles.logic"} & loaded
    assert images.__name__ in loaded
