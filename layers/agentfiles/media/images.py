"""Images as a model gets them: decoded once at upload, upright, stripped of every byte of
metadata, fitted to the geometry each model uses, with a small thumbnail.

Bytes in, values out: nothing here touches AWS, the table or the settings; the caller
passes the pixel limit and the geometries, and stores what `check_image` returns.

- What is read: JPEG, PNG, WebP, GIF, TIFF, BMP and AVIF with Pillow (its wheels carry
  libavif); HEIC/HEIF (what an iPhone saves) with pillow-heif, registered on the first
  one. Neither library is imported with this module (3 ms; Pillow and pillow-heif add
  ~40 ms at the first image): a function that only sniffs loads no Pillow and needs no
  media layer.
- Bounded memory: the size an image declares is checked against `max_pixels` before a
  pixel is decoded (`probe_image`), and Pillow's own bomb guard is reported the same way.
  A JPEG that is shrunk a lot is decoded at 1/2, 1/4 or 1/8 scale by libjpeg itself
  (`Image.draft`), never below the largest size asked for; each copy is resized in the
  stored orientation and turned upright afterwards, so no full-size copy is ever made
  but the decoded image itself.
- Whole decode: truncated data fails (`ImageFile.LOAD_TRUNCATED_IMAGES` stays False);
  only the first frame of an animation is decoded and sent.
- What leaves: EXIF orientation applied to the pixels, then nothing of the original's
  metadata (EXIF with GPS and camera serials, XMP, IPTC, comments, ICC: an embedded
  profile is converted to sRGB, which is what every model assumes).
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from PIL.Image import Image

from agentfiles.models.files import model_image_name

JPEG = "image/jpeg"
PNG = "image/png"
WEBP = "image/webp"
GIF = "image/gif"
HEIC = "image/heic"
HEIF = "image/heif"
AVIF = "image/avif"
TIFF = "image/tiff"
BMP = "image/bmp"
# What the upload check reads, and what a model is ever given (whatever was uploaded).
IMAGE_TYPES = frozenset({JPEG, PNG, WEBP, GIF, HEIC, HEIF, AVIF, TIFF, BMP})
MODEL_TYPES = frozenset({JPEG, PNG, WEBP})

DEFAULT_MAX_PIXELS = 50_000_000  # a 50 MP camera; ~150 MB decoded as RGB
THUMBNAIL_MAX_SIDE = 256
# JPEG quality for what a model gets. 85 with 4:2:0 chroma is libjpeg's usual "high":
# at the sizes a model looks at (a 768-pixel short side) its artefacts are below what
# the vision encoder resolves, while 95 costs about twice the bytes; below ~75 blocking
# shows around text and edges, which models do read.
MODEL_JPEG_QUALITY = 85
# Thumbnails are WebP: ~25-35% smaller than JPEG at the same look, with alpha, and
# every browser shows them; 80 keeps them sharp at 256 px.
THUMBNAIL_WEBP_QUALITY = 80
# Pillow's Lanczos with a reducing gap: an integer box reduce first, then Lanczos over
# the last factor of 3 (2 for thumbnails), which Pillow documents as indistinguishable
# from a full Lanczos and is several times faster on a 12 MP photo.
_MODEL_REDUCING_GAP = 3.0
_THUMBNAIL_REDUCING_GAP = 2.0

# The Pillow formats each type may open as (never any other plugin, e.g. EPS or PSD).
_FORMATS = {
    JPEG: ("JPEG",),  # also opens a multi-picture JPEG (MPO), as phones write with HDR
    PNG: ("PNG",),
    WEBP: ("WEBP",),
    GIF: ("GIF",),
    HEIC: ("HEIF",),
    HEIF: ("HEIF",),
    AVIF: ("AVIF",),
    TIFF: ("TIFF",),
    BMP: ("BMP",),
}
_LABELS = {
    JPEG: "JPEG",
    PNG: "PNG",
    WEBP: "WebP",
    GIF: "GIF",
    HEIC: "HEIC",
    HEIF: "HEIF",
    AVIF: "AVIF",
    TIFF: "TIFF",
    BMP: "BMP",
}
# What a lossless source may stay as when it is no larger than the JPEG (screenshots,
# diagrams: text stays crisp); photographs become JPEG.
_LOSSLESS_SOURCES = frozenset({PNG, GIF, BMP})
# Above this a copy is only for a model without a size bound, and encoding it as PNG to
# compare costs seconds (a 50 MP PNG: ~9 s of CPU): it is a JPEG.
_PNG_TRIAL_PIXELS = 2048 * 2048


class ImageRejected(Exception):
    """An image the upload check refuses; `code` is the file's rejection code and
    `message` a sentence a person can read, starting with the code."""

    code: ClassVar[str]

    def __init__(self, reason: str):
        self.message = f"{self.code}: {reason}"
        super().__init__(self.message)


class UnreadableImage(ImageRejected):
    """Not an image of a type read here, or one that does not decode in full."""

    code = "unreadable_image"


class ImageTooLarge(ImageRejected):
    """An image declaring more pixels than the limit, refused before decoding."""

    code = "image_too_large"


@dataclass(frozen=True)
class Derived:
    """One image made from an upload: upright, without metadata."""

    data: bytes = field(repr=False)
    media_type: str
    width: int
    height: int

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class CheckedImage:
    """An image that decoded in full: its upright size, one copy per geometry (by
    `model_image_name`) and its thumbnail."""

    width: int
    height: int
    derivatives: dict[str, Derived]
    thumbnail: Derived


# ---------------------------------------------------------------------------- sniffing

_HEIC_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs"}
_HEIF_BRANDS = {b"mif1", b"msf1", b"mif2", b"heif"}
_AVIF_BRANDS = {b"avif", b"avis"}
# The header sizes a BMP can have (core, info, v2-v5): "BM" alone is too common a prefix.
_BMP_HEADERS = {12, 40, 52, 56, 64, 108, 124}


def sniff_image(data: bytes) -> str | None:
    """The image type the first bytes show (one of `IMAGE_TYPES`), or None. 32 bytes are
    enough for every type but an ISO-BMFF file (HEIC, HEIF, AVIF) whose `ftyp` box lists
    many brands; the upload check's 4 KiB prefix always is."""
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return GIF
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return WEBP
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return TIFF
    if data[:2] == b"BM" and len(data) >= 18 and int.from_bytes(data[14:18], "little") in _BMP_HEADERS:
        return BMP
    return _sniff_bmff(data)


def _sniff_bmff(data: bytes) -> str | None:
    # ISO base media: a first box `ftyp` holding a major brand, a version and the
    # compatible brands. An iPhone writes major `heic`; libavif writes `avif`; a HEIF
    # of another codec (or a sequence) says only `mif1`/`msf1`.
    if len(data) < 16 or data[4:8] != b"ftyp":
        return None
    box_size = int.from_bytes(data[:4], "big")
    if box_size < 16:
        return None
    brands = [data[8:12]] + [data[i : i + 4] for i in range(16, min(box_size, len(data)) - 3, 4)]
    for kinds, media_type in ((_AVIF_BRANDS, AVIF), (_HEIC_BRANDS, HEIC), (_HEIF_BRANDS, HEIF)):
        if brands[0] in kinds:
            return media_type
    for kinds, media_type in ((_AVIF_BRANDS, AVIF), (_HEIC_BRANDS, HEIC), (_HEIF_BRANDS, HEIF)):
        if any(brand in kinds for brand in brands[1:]):
            return media_type
    return None


# ---------------------------------------------------------------------------- geometry

# EXIF orientation -> the transposition that makes the stored pixels upright (as
# `ImageOps.exif_transpose` does); 5-8 swap width and height.
_UPRIGHT = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE"}
_UPRIGHT |= {6: "ROTATE_270", 7: "TRANSVERSE", 8: "ROTATE_90"}
_SWAPS = frozenset({5, 6, 7, 8})


def fitted_size(width: int, height: int, max_side: int | None, max_short_side: int | None) -> tuple[int, int]:
    """`width` x `height` fitted within `max_side` x `max_side`, then to `max_short_side`
    on its short side (None: no bound), keeping its aspect ratio; never enlarged."""
    scale = 1.0
    if max_side:
        scale = min(scale, max_side / max(width, height))
    if max_short_side:
        scale = min(scale, max_short_side / min(width, height))
    if scale >= 1.0:
        return width, height
    fitted_width = max(1, min(width, round(width * scale)))
    fitted_height = max(1, min(height, round(height * scale)))
    return fitted_width, fitted_height


def _geometry(item: Any) -> tuple[int | None, int | None]:
    # A `(max_side, max_short_side)` pair, or anything carrying both (catalog.Geometry).
    if isinstance(item, tuple):
        side, short = item
        return side, short
    return item.max_side, item.max_short_side


# ---------------------------------------------------------------------------- opening

_heif_registered = False


def _register_heif() -> None:
    global _heif_registered
    if not _heif_registered:
        import pillow_heif

        pillow_heif.register_heif_opener()
        _heif_registered = True


_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:.1f} MP"


def _open(data: bytes, media_type: str, max_pixels: int) -> tuple[Image, int]:
    """The image opened lazily (its header read, no pixel decoded) and its EXIF
    orientation; raises `ImageTooLarge` above `max_pixels`."""
    from PIL import Image

    if media_type in (HEIC, HEIF):
        _register_heif()
    label = _LABELS[media_type]
    try:
        with warnings.catch_warnings():
            # Pillow warns between its own limit and twice it; the limit here is ours.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=_FORMATS[media_type])
    except Image.DecompressionBombError as error:
        found = _BOMB_PIXELS.search(str(error))
        declared = f"declares {_megapixels(int(found.group(1)))}" if found else "declares too many pixels"
        raise ImageTooLarge(f"the {label} {declared}, over the {_megapixels(max_pixels)} limit") from None
    except Exception as error:
        raise UnreadableImage(
            f"the data is not a {label} image that can be read ({_reason(error)})"
        ) from None
    width, height = image.size
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"the {label} is {width}x{height} ({_megapixels(width * height)}), "
            f"over the {_megapixels(max_pixels)} limit"
        )
    try:
        orientation = int(image.getexif().get(0x0112, 1))
    except Exception:
        orientation = 1  # an unreadable EXIF block is dropped like any other
    return image, orientation if orientation in _UPRIGHT else 1


def _reason(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text[:200]


def probe_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """The upright width and height of an image (EXIF orientation applied), read from
    its header without decoding a pixel; raises `ImageTooLarge` above `max_pixels` and
    `UnreadableImage` for what is not an image of `IMAGE_TYPES`."""
    media_type = _sniffed(data, None)
    image, orientation = _open(data, media_type, max_pixels)
    with image:
        width, height = image.size
    return (height, width) if orientation in _SWAPS else (width, height)


def _sniffed(data: bytes, declared: str | None) -> str:
    sniffed = sniff_image(data)
    if sniffed is None:
        raise UnreadableImage("the data is not an image of a type read here (JPEG, PNG, WebP, GIF, HEIC, …)")
    if declared is not None and _normalized(declared) not in (sniffed, *_SAME.get(sniffed, ())):
        raise UnreadableImage(f"the data is a {_LABELS[sniffed]} image, not the declared {declared}")
    return sniffed


# HEIF is the container, HEIC its HEVC flavour: a client may declare either for an iPhone photo.
_SAME = {HEIC: (HEIF,), HEIF: (HEIC,)}


def _normalized(media_type: str) -> str:
    base = media_type.split(";", 1)[0].strip().lower()
    return {"image/jpg": JPEG, "image/heic-sequence": HEIC, "image/heif-sequence": HEIF}.get(base, base)


# ---------------------------------------------------------------------------- checking


def check_image(
    data: bytes,
    media_type: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    geometries: Iterable[tuple[int | None, int | None]] = (),
) -> CheckedImage:
    """Decode an image once, in full, and make what is sent of it: one copy per geometry
    (`(max_side, max_short_side)`, named `model_image_name(max_side, max_short_side)`)
    and the thumbnail. No geometries: only the thumbnail (an image a model generated is
    kept as it is). `media_type` is the declared type (None: what the bytes show).
    Raises `UnreadableImage` or `ImageTooLarge`."""
    from PIL import Image, ImageFile

    media_type = _sniffed(data, media_type)
    wanted = {model_image_name(side, short): (side, short) for side, short in map(_geometry, geometries)}
    image, orientation = _open(data, media_type, max_pixels)
    with image:
        swap = orientation in _SWAPS
        stored_width, stored_height = image.size
        width, height = (stored_height, stored_width) if swap else (stored_width, stored_height)
        sizes = {name: fitted_size(width, height, side, short) for name, (side, short) in wanted.items()}
        thumbnail_size = fitted_size(width, height, THUMBNAIL_MAX_SIDE, None)
        largest = max([*sizes.values(), thumbnail_size], key=lambda size: size[0] * size[1])
        if image.format in ("JPEG", "MPO") and largest != (width, height):
            # libjpeg scales while decoding, to no less than the largest copy made.
            image.draft(None, (largest[1], largest[0]) if swap else largest)
        if ImageFile.LOAD_TRUNCATED_IMAGES:
            raise RuntimeError("ImageFile.LOAD_TRUNCATED_IMAGES is set: a truncated image would pass")
        try:
            image.load()
            pixels = _normalized_mode(image)
        except Image.DecompressionBombError as error:
            raise ImageTooLarge(
                f"the {_LABELS[media_type]} is over the pixel limit ({_reason(error)})"
            ) from None
        except Exception as error:
            raise UnreadableImage(
                f"the {_LABELS[media_type]} does not decode in full ({_reason(error)})"
            ) from None
        copies = _Copies(pixels, orientation, image.info.get("icc_profile") or None)
        lossless = media_type in _LOSSLESS_SOURCES
        made: dict[tuple[int, int], tuple[Derived, Image]] = {}
        for size in sizes.values():
            if size not in made:
                made[size] = _model_copy(copies.finished(size, _MODEL_REDUCING_GAP), lossless)
        derivatives = {name: made[size][0] for name, size in sizes.items()}
        # From the smallest copy that holds it, when there is one: a 1024 x 768 image
        # shrinks to 256 px in a fraction of what a 12 MP one takes.
        sources = [
            finished
            for (copy_width, copy_height), (_, finished) in made.items()
            if copy_width >= thumbnail_size[0] and copy_height >= thumbnail_size[1]
        ]
        if sources:
            source = min(sources, key=lambda finished: finished.size[0] * finished.size[1])
            small = source.resize(
                thumbnail_size, Image.Resampling.LANCZOS, reducing_gap=_THUMBNAIL_REDUCING_GAP
            )
        else:
            small = copies.finished(thumbnail_size, _THUMBNAIL_REDUCING_GAP)
        thumbnail = _thumbnail(small)
    return CheckedImage(width, height, derivatives, thumbnail)


def _normalized_mode(image: Image) -> Image:
    """The decoded pixels in a mode that resizes and encodes everywhere: RGB, RGBA, L,
    LA or CMYK (kept for its ICC conversion, after resizing)."""
    mode = image.mode
    if mode in ("RGB", "RGBA", "L", "LA", "CMYK"):
        return image
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in image.info
        return image.convert("RGBA" if has_alpha else "RGB")
    if mode == "1":
        return image.convert("L")
    if mode.startswith("I;16") or mode in ("I", "F"):
        # 16-bit greyscale (scientific PNG/TIFF): scaled to 8 bits, not clipped.
        return image.convert("I").point(lambda value: value / 256).convert("L")
    if mode in ("RGBa", "La"):
        return image.convert(mode.replace("a", "A"))
    return image.convert("RGBA" if "A" in mode else "RGB")


class _Copies:
    """Makes the finished copies of one decoded image: each resized in the stored
    orientation (so the full-size pixels are never copied), then turned upright and
    converted to sRGB, with no metadata attached."""

    def __init__(self, pixels: Image, orientation: int, icc: bytes | None):
        self.pixels = pixels
        self.orientation = orientation
        self.icc = icc
        self._transforms: dict[str, Any] = {}

    def finished(self, size: tuple[int, int], reducing_gap: float) -> Image:
        from PIL import Image

        stored = (size[1], size[0]) if self.orientation in _SWAPS else size
        if self.pixels.size == stored:
            # Unbounded: the decoded pixels themselves (each step below makes a new image,
            # and nothing writes into these), not a second full-size copy.
            image = self.pixels
        else:
            image = self.pixels.resize(stored, Image.Resampling.LANCZOS, reducing_gap=reducing_gap)
        if self.orientation != 1:
            image = image.transpose(Image.Transpose[_UPRIGHT[self.orientation]])
        image = self._srgb(image)
        image.info.clear()  # the profile was read before; nothing else of it is wanted
        return image

    def _srgb(self, image: Image) -> Image:
        target = {"CMYK": "RGB", "RGB": "RGB", "RGBA": "RGBA"}.get(image.mode)
        if self.icc is not None and target is not None:
            transform = self._transform(image.mode, target)
            if transform is not None:
                from PIL import ImageCms

                return ImageCms.applyTransform(image, transform)
        if image.mode == "CMYK":
            return image.convert("RGB")
        return image

    def _transform(self, mode: str, target: str) -> Any:
        # Built once per image and mode (parsing the profile costs more than applying it).
        if mode not in self._transforms:
            from PIL import ImageCms

            try:
                source = ImageCms.ImageCmsProfile(io.BytesIO(self.icc or b""))
                srgb = ImageCms.createProfile("sRGB")
                self._transforms[mode] = ImageCms.buildTransform(source, srgb, mode, target)
            except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
                self._transforms[mode] = None  # a broken or mismatched profile: taken as sRGB
        return self._transforms[mode]


def _has_alpha(image: Image) -> bool:
    if image.mode not in ("RGBA", "LA"):
        return False
    return image.getextrema()[-1][0] < 255


def _encoded(image: Image, format: str, **options: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, format, **options)
    return out.getvalue()


def _model_copy(image: Image, lossless: bool) -> tuple[Derived, Image]:
    if _has_alpha(image):
        return Derived(_encoded(image, "PNG"), PNG, *image.size), image
    if image.mode in ("RGBA", "LA"):
        image = image.convert(image.mode[:-1])  # an alpha channel that is opaque everywhere
    jpeg = _encoded(image, "JPEG", quality=MODEL_JPEG_QUALITY, optimize=True)
    if lossless and image.width * image.height <= _PNG_TRIAL_PIXELS:
        png = _encoded(image, "PNG")
        if len(png) <= len(jpeg):
            return Derived(png, PNG, *image.size), image
    return Derived(jpeg, JPEG, *image.size), image


def _thumbnail(image: Image) -> Derived:
    if image.mode in ("RGBA", "LA") and not _has_alpha(image):
        image = image.convert(image.mode[:-1])
    if image.mode == "LA":
        image = image.convert("RGBA")
    image.info.clear()
    data = _encoded(image, "WEBP", quality=THUMBNAIL_WEBP_QUALITY, method=4)
    return Derived(data, WEBP, *image.size)
