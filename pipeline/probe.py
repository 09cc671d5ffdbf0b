"""Know what a file is before decoding a pixel: sniff magic bytes, read the header, check limits."""
from __future__ import annotations

import re
from dataclasses import dataclass

import pyvips

from .errors import CorruptImage, FileTooLarge, ImageTooComplex, ImageTooLarge, ImageTooSmall, UnsupportedMediaType
from .specs import FORMAT_EXT as EXTENSION
from .specs import FORMAT_MIME as MIME

# libvips runs loaders it deems unsafe on untrusted input (e.g. via ImageMagick, PDFium) only
# when asked; we never are, so block them process-wide as defence in depth. Then block every
# loader and re-enable only the buffer loaders we serve: a file that fools the sniffer cannot
# reach GIF, TIFF, SVG, PDF, matrix or CSV code at all, not even to read a header.
pyvips.block_untrusted_set(True)
SERVED_LOADER_CLASSES = ("VipsForeignLoadJpegBuffer", "VipsForeignLoadPngBuffer", "VipsForeignLoadWebpBuffer",
                         "VipsForeignLoadHeifBuffer", "VipsForeignLoadUhdrBuffer")
pyvips.operation_block_set("VipsForeignLoad", True)
for _name in SERVED_LOADER_CLASSES:
    pyvips.operation_block_set(_name, False)

# The sniffed format must be loaded by exactly this loader: a file that fools the sniffer
# still cannot reach another decoder.
ALLOWED_LOADERS = {
    "jpeg": {"jpegload_buffer", "uhdrload_buffer"},  # Ultra HDR is a JPEG with a gain map
    "png": {"pngload_buffer"},
    "webp": {"webpload_buffer"},
    "avif": {"heifload_buffer"},
    "heic": {"heifload_buffer"},  # header only: pixels are decoded by pi-heif (see render.py)
}
# The codec inside a HEIF container decides what it is; a HEIF holding JPEG or an
# uncompressed image is not a format we serve.
HEIF_CODECS = {"av1": "avif", "hevc": "heic"}
SNIFF_BYTES = 64  # enough for an ISO-BMFF `ftyp` box with its compatible brands

_AVIF_BRANDS = {b"avif", b"avis"}
_HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"}
_HEIF_BRANDS = {b"mif1", b"msf1", b"mif2", b"miaf"}


def _ftyp_brands(head: bytes) -> set[bytes]:
    size = int.from_bytes(head[:4], "big")
    end = min(max(size, 16), len(head))
    brands = {head[8:12]}
    brands.update(head[i:i + 4] for i in range(16, end - 3, 4))
    return brands


def sniff(head: bytes) -> str | None:
    """The format from the first bytes of a file, or None when it is not one we serve."""
    if head[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[4:8] == b"ftyp":
        brands = _ftyp_brands(head)
        if brands & _AVIF_BRANDS:
            return "avif"
        if brands & (_HEIC_BRANDS | _HEIF_BRANDS):
            return "heic"  # a generic HEIF; the probe reads its codec and settles avif vs heic
    return None


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int = 25 * 1024 * 1024
    max_pixels: int = 120_000_000
    max_side_px: int = 20_000
    min_side_px: int = 64
    max_jpeg_scans: int = 100  # cameras write 1, progressive encoders about 10
    max_decode_bytes: int = 512 * 2**20  # what a decoder that cannot stream may hold at once


@dataclass(frozen=True)
class CaptureInfo:
    """What the camera said, for the database only; never written to a public file."""

    taken_at: str | None = None  # EXIF DateTimeOriginal as ISO 8601, local camera time
    camera: str | None = None  # make and model
    copyright: str | None = None


@dataclass(frozen=True)
class ProbeResult:
    format: str
    width: int  # as displayed, i.e. after EXIF orientation
    height: int
    orientation: int
    bands: int
    file_size: int
    pages: int = 1  # frames of an animation; only the first is rendered
    capture: CaptureInfo = CaptureInfo()
    icc_profile: str | None = None  # description of an embedded ICC profile ("" if unnamed)

    @property
    def mime_type(self) -> str:
        return MIME[self.format]

    @property
    def extension(self) -> str:
        return EXTENSION[self.format]

    @property
    def animated(self) -> bool:
        return self.pages > 1


def check_size(size_bytes: int, limits: ImageLimits) -> None:
    if size_bytes > limits.max_bytes:
        raise FileTooLarge(f"file is {size_bytes} bytes; the limit is {limits.max_bytes} bytes")


def _damaged_png_signature(head: bytes) -> bool:
    # A PNG whose 8-byte signature was mangled in transfer (text-mode CR/LF conversion, a
    # 7-bit channel) still has its IHDR chunk where it belongs: a corrupt PNG, not another format.
    return head[12:16] == b"IHDR" and head[1:4].upper() in (b"PNG", b"QNG") and head[:8] != b"\x89PNG\r\n\x1a\n"


def require_supported(head: bytes) -> str:
    fmt = sniff(head)
    if fmt is None and _damaged_png_signature(head):
        raise CorruptImage("the PNG signature is damaged (the file was altered in transfer)")
    if fmt is None:
        raise UnsupportedMediaType(
            "not a JPEG, PNG, WebP, AVIF or HEIC image (the format is read from the file's bytes)"
        )
    return fmt


# A JPEG marker that starts a segment with a length: SOFn, DHT, DAC (C0-CF), SOS (DA), DQT,
# DNL, DRI, DHP, EXP, APPn, JPGn, COM (DB-FE); and EOI (D9), which has none. Entropy-coded
# data never holds one: a 0xFF byte there is followed by 0x00 (stuffing), a restart marker
# (D0-D7) or another 0xFF (fill).
_MARKER = re.compile(rb"\xff[\xc0-\xcf\xd9-\xfe]")
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # DHT, JPG and DAC share the range
_PROGRESSIVE_SOF = frozenset({0xC2, 0xC6, 0xCA, 0xCE})
# A photo has a few dozen segments (Ultra HDR and split extended XMP a few hundred); 25 MB of
# empty 4-byte comments would be 6 million, seconds of Python for the walk below. Stop there.
MAX_JPEG_SEGMENTS = 10_000


@dataclass(frozen=True)
class JpegLayout:
    scans: int  # start-of-scan segments in the whole file, appended images included
    segments: int  # segments walked; the walk stops past MAX_JPEG_SEGMENTS
    buffered: bool  # the first image needs libjpeg's whole-image coefficient buffer
    samples_per_pixel: float  # of the first image: 3 for YCbCr 4:4:4, 1.5 for 4:2:0, 1 for grey


def jpeg_layout(data: bytes) -> JpegLayout:
    """Walk a JPEG's segments (their payloads, EXIF thumbnails included, are skipped) and search
    the entropy-coded data between them for the next marker. It goes on past the first EOI, so
    an appended image (an Ultra HDR gain map) counts towards the scans."""
    scans = first_scans = segments = 0
    progressive, samples, first_done = False, 3.0, False
    pos, end = 2, len(data)
    while (m := _MARKER.search(data, pos)) is not None and m.start() + 2 <= end:
        segments += 1
        if segments > MAX_JPEG_SEGMENTS:
            break
        at, marker = m.start(), data[m.start() + 1]
        if marker == 0xD9:  # EOI
            first_done, pos = True, at + 2
            continue
        if at + 4 > end:
            break
        length = max(int.from_bytes(data[at + 2:at + 4], "big"), 2)
        if marker == 0xDA:
            scans += 1
            first_scans += not first_done
        elif marker in _SOF and not first_done and at + 10 <= end:
            progressive = marker in _PROGRESSIVE_SOF
            factors = [(b >> 4, b & 15) for b in data[at + 11:at + 2 + length:3][:data[at + 9]]]
            if factors and all(h and v for h, v in factors):
                hmax, vmax = max(h for h, _ in factors), max(v for _, v in factors)
                samples = sum(h * v for h, v in factors) / (hmax * vmax)
        pos = at + 2 + length
    return JpegLayout(scans, segments, progressive or first_scans > 1, samples)


def check_jpeg_layout(layout: JpegLayout, limits: ImageLimits) -> None:
    # Each scan of a progressive JPEG is one more pass over every 8x8 block: 1 000 scans of a
    # few bytes each (long end-of-band runs) cost libjpeg seconds of CPU on a 16 MP image and
    # minutes at 120 MP (the "LJT-01-003" issue in libjpeg-turbo's report on the standard).
    # libjpeg has no limit of its own and libvips sets none, so count before libvips sees it.
    if layout.segments > MAX_JPEG_SEGMENTS:
        raise ImageTooComplex(f"JPEG has more than {MAX_JPEG_SEGMENTS} segments; a photo has a few dozen")
    if layout.scans > limits.max_jpeg_scans:
        raise ImageTooComplex(
            f"JPEG has {layout.scans} scans; at most {limits.max_jpeg_scans} are accepted "
            "(cameras write 1, progressive encoders about 10): re-save it as a baseline JPEG")


# Most decoders stream: a baseline JPEG, a non-interlaced PNG or a lossy WebP is read a strip
# at a time into the shrinking pipeline, whatever its size. These hold the whole frame first;
# bytes per pixel of peak RSS growth, measured (VmHWM) on 9 and 36 MP images with pyvips-binary
# 8.18 and pi-heif 1.4, rounded up (tests/pipeline/test_memory.py keeps them honest):
AVIF_BYTES_PER_PIXEL = 16  # libheif + dav1d inside libvips: 14.4 (RGB), 15.7 (RGBA)
HEIC_BYTES_PER_PIXEL = 8  # libheif + libde265 in pi-heif, then handed to libvips: 6 (RGB)
LOSSLESS_WEBP_BYTES_PER_PIXEL = 4  # VP8L decodes the whole ARGB frame: 3.9
JPEG_COEFFICIENT_BYTES = 2  # per sample: a progressive JPEG keeps every DCT coefficient: 2.9 at 4:2:0
INTERLACED_PNG_OVERHEAD = 1.25  # Adam7 decodes whole; x bands x bytes per sample: 3.5 for RGB8


def _webp_lossless(data: bytes) -> bool:
    """Whether the first image bitstream of a WebP file is VP8L (lossless). Past 1 000 chunks
    before any bitstream (a real file has a handful), assume the worst."""
    pos = 12
    for _ in range(1000):
        if pos + 8 > len(data):
            return False
        fourcc, size = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "little")
        if fourcc in (b"VP8 ", b"VP8L"):
            return fourcc == b"VP8L"
        if fourcc == b"ANMF":  # a frame: 16 bytes of frame header, then its own chunks
            pos += 8 + 16
            continue
        pos += 8 + size + (size & 1)
    return True


_SAMPLE_BYTES = {"uchar": 1, "char": 1, "ushort": 2, "short": 2, "uint": 4, "int": 4, "float": 4, "double": 8}


def decode_memory(fmt: str, header: pyvips.Image, data: bytes, pixels: int,
                  jpeg: JpegLayout | None = None) -> tuple[int, str]:
    """Bytes a decoder must hold at once for this image beyond the streaming pipeline, and why."""
    if fmt == "jpeg" and jpeg is not None and jpeg.buffered:
        return (int(pixels * jpeg.samples_per_pixel * JPEG_COEFFICIENT_BYTES),
                "a progressive JPEG keeps every DCT coefficient until its last scan")
    if fmt == "png" and _int_field(header, "interlaced", 0):
        per_pixel = header.bands * _SAMPLE_BYTES.get(header.format, 1) * INTERLACED_PNG_OVERHEAD
        return int(pixels * per_pixel), "an interlaced (Adam7) PNG is decoded whole"
    if fmt == "webp" and _webp_lossless(data):
        return pixels * LOSSLESS_WEBP_BYTES_PER_PIXEL, "a lossless WebP is decoded whole"
    if fmt == "avif":
        return pixels * AVIF_BYTES_PER_PIXEL, "an AVIF is decoded whole"
    if fmt == "heic":
        return pixels * HEIC_BYTES_PER_PIXEL, "a HEIC is decoded whole"
    return 0, "streamed"


def check_decode_memory(need: int, why: str, fmt: str, limits: ImageLimits) -> None:
    if need > limits.max_decode_bytes:
        mib, limit = -(-need // 2**20), limits.max_decode_bytes // 2**20
        raise ImageTooLarge(
            f"decoding this {fmt.upper()} needs about {mib} MB of memory at once ({why}); "
            f"the limit is {limit} MB: downscale it, or save it as a baseline JPEG")


def check_dimensions(width: int, height: int, limits: ImageLimits) -> None:
    if width > limits.max_side_px or height > limits.max_side_px:
        raise ImageTooLarge(f"image is {width}x{height} px; no side may exceed {limits.max_side_px} px")
    if width * height > limits.max_pixels:
        raise ImageTooLarge(f"image is {width}x{height} = {width * height} px; the limit is {limits.max_pixels} px")
    if width < limits.min_side_px or height < limits.min_side_px:
        raise ImageTooSmall(f"image is {width}x{height} px; each side must be at least {limits.min_side_px} px")


def probe(data: bytes, limits: ImageLimits = ImageLimits()) -> ProbeResult:
    """Read the header only and enforce every limit; no pixel is decoded here."""
    check_size(len(data), limits)
    fmt = require_supported(data[:SNIFF_BYTES])
    jpeg = jpeg_layout(data) if fmt == "jpeg" else None
    if jpeg is not None:
        check_jpeg_layout(jpeg, limits)
    try:
        header = pyvips.Image.new_from_buffer(data, "", access="sequential")
        loader = header.get("vips-loader")
    except pyvips.Error as exc:
        raise CorruptImage(f"the {fmt.upper()} header cannot be read: {vips_reason(exc)}") from exc
    if loader not in ALLOWED_LOADERS[fmt]:
        raise UnsupportedMediaType(f"file starts like {fmt.upper()} but libvips reads it as {loader}")
    if loader == "heifload_buffer":
        codec = header.get("heif-compression") if header.get_typeof("heif-compression") else None
        if codec not in HEIF_CODECS:
            raise UnsupportedMediaType(f"a HEIF container holding {codec or 'an unknown codec'} is not served")
        fmt = HEIF_CODECS[codec]
    width, height = header.width, header.height
    pages = _int_field(header, "n-pages", 1)
    if pages > 1 and header.get_typeof("page-height"):
        height = header.get("page-height")  # one frame; loaders report the first only, be sure
    orientation = _int_field(header, "orientation", 1)
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    check_dimensions(width, height, limits)
    check_decode_memory(*decode_memory(fmt, header, data, width * height, jpeg), fmt, limits)
    return ProbeResult(fmt, width, height, orientation if 1 <= orientation <= 8 else 1,
                       header.bands, len(data), max(pages, 1), capture_info(header), embedded_profile(header))


def _int_field(header: pyvips.Image, name: str, default: int) -> int:
    try:
        return int(header.get(name)) if header.get_typeof(name) else default
    except (pyvips.Error, TypeError, ValueError):
        return default


# libvips renders an EXIF string tag as "value (value, ASCII, 24 components, 24 bytes)".
_EXIF_STRING = re.compile(r"^(?P<value>.*) \((?P=value), \w+, \d+ components?, \d+ bytes?\)$", re.S)


def _exif_text(header: pyvips.Image, field: str, limit: int = 200) -> str | None:
    if not header.get_typeof(field):
        return None
    try:
        raw = header.get(field)
    except pyvips.Error:
        return None
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    match = _EXIF_STRING.match(str(raw))
    value = (match.group("value") if match else str(raw)).strip().strip("\x00").strip()
    value = "".join(ch for ch in value if ch.isprintable())
    if not any(ch.isalnum() for ch in value):
        return None
    return value[:limit]


def capture_info(header: pyvips.Image) -> CaptureInfo:
    taken = _exif_text(header, "exif-ifd2-DateTimeOriginal") or _exif_text(header, "exif-ifd0-DateTime")
    taken_at = None
    if taken and re.fullmatch(r"\d{4}:\d\d:\d\d \d\d:\d\d:\d\d", taken) and not taken.startswith("0000"):
        taken_at = taken[:10].replace(":", "-") + "T" + taken[11:]
        offset = _exif_text(header, "exif-ifd2-OffsetTimeOriginal")
        if offset and re.fullmatch(r"[+-]\d\d:\d\d", offset):
            taken_at += offset
    make = _exif_text(header, "exif-ifd0-Make", 100)
    model = _exif_text(header, "exif-ifd0-Model", 100)
    camera = model if make and model and model.lower().startswith(make.lower()) else " ".join(
        p for p in (make, model) if p) or None
    return CaptureInfo(taken_at, camera, _copyright(_exif_text(header, "exif-ifd0-Copyright")))


def _copyright(value: str | None) -> str | None:
    # EXIF Copyright holds "photographer\0editor"; libvips shows it as
    # "<photographer> (Photographer) - <editor> (Editor)" with "[None]" for an empty part.
    if not value:
        return None
    parts = []
    for part in value.split(" - "):
        part = re.sub(r"\s*\((Photographer|Editor)\)$", "", part.strip()).strip()
        if part and part != "[None]":
            parts.append(part)
    text = " - ".join(parts)
    return text if any(ch.isalnum() for ch in text) else None


def vips_reason(exc: Exception) -> str:
    """The most specific line of a libvips error (its last), without the indentation and
    without libvips' generic "unable to call <operation>" lines."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith("unable to call")]
    return (useful or lines or [exc.__class__.__name__])[-1]


def icc_description(profile: bytes) -> str | None:
    """The `desc` tag of an ICC profile (v2 `desc` or v4 `mluc`), or None if unreadable."""
    try:
        count = int.from_bytes(profile[128:132], "big")
        for n in range(min(count, 100)):
            entry = 132 + 12 * n
            if profile[entry:entry + 4] != b"desc":
                continue
            offset = int.from_bytes(profile[entry + 4:entry + 8], "big")
            size = int.from_bytes(profile[entry + 8:entry + 12], "big")
            tag = profile[offset:offset + size]
            if tag[:4] == b"desc":
                length = int.from_bytes(tag[8:12], "big")
                return tag[12:12 + length].split(b"\x00", 1)[0].decode("latin-1").strip() or None
            if tag[:4] == b"mluc" and int.from_bytes(tag[8:12], "big") > 0:
                rec_len = int.from_bytes(tag[20:24], "big")
                rec_off = int.from_bytes(tag[24:28], "big")
                return tag[rec_off:rec_off + rec_len].decode("utf-16-be", "replace").strip("\x00 ") or None
    except (IndexError, ValueError):
        return None
    return None


def embedded_profile(header: pyvips.Image) -> str | None:
    """The description of an embedded ICC profile ("" when it has none we can read), or None."""
    if not header.get_typeof("icc-profile-data"):
        return None
    try:
        return icc_description(bytes(header.get("icc-profile-data"))) or ""
    except pyvips.Error:
        return ""
