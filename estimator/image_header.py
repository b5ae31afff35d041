# SPDX-License-Identifier: GPL-3.0-or-later
"""The width and height an image file declares, read from its header without decoding it.

A decompression bomb is a small file (a PNG of a few MB) that declares a huge
picture (30000 x 30000 pixels, 2.7 GB once decoded). ``declared_size(path)`` reads
only the few bytes that hold the size, so ``sources`` can refuse such a file before
any decoder allocates memory for it.

The format is recognised by the file's signature, as OpenCV's ``imdecode`` does
(never by its name), for every format OpenCV can read: PNG, JPEG, BMP, WebP, TIFF
(classic and BigTIFF), JPEG 2000 (.jp2 and raw codestreams), PNM/PAM/PFM, Sun
raster, Radiance HDR, OpenEXR and GIF. A file whose signature is none of these,
or whose header is cut short or inconsistent, raises ``HeaderError``; it is never
handed to a decoder.
"""
from __future__ import annotations

import re
import struct
from pathlib import Path

# How far into a file a header is looked for (JPEG: the SOF marker comes after the
# APPn segments, each at most 64 KiB; EXR/HDR/PNM: text or attribute headers).
MAX_HEADER_SCAN = 4 * 2**20


class HeaderError(Exception):
    """The image size cannot be read from the header; the message says why (no path)."""


def declared_size(path) -> tuple[int, int, str]:
    """``(width, height, format name)`` as the file's header declares them."""
    with open(Path(path), "rb") as fh:
        head = fh.read(64)
        for name, sniff, reader in _FORMATS:
            if sniff(head):
                w, h = reader(fh, head)
                if w <= 0 or h <= 0:
                    raise HeaderError(f"the {name} header declares a size of {w}x{h}")
                return int(w), int(h), name
    raise HeaderError("not an image format whose size can be checked before decoding")


def _read_at(fh, offset: int, n: int) -> bytes:
    """Exactly ``n`` bytes at ``offset``, else HeaderError."""
    data = _read_upto(fh, offset, n)
    if len(data) != n:
        raise HeaderError("the header is cut short")
    return data


def _read_upto(fh, offset: int, n: int) -> bytes:
    """Up to ``n`` bytes at ``offset`` (fewer at the end of the file)."""
    if offset < 0:
        raise HeaderError("the header points outside the file")
    fh.seek(offset)
    return fh.read(n)


# ------------------------------------------------------------------------------ readers
def _png(fh, head):
    # 8-byte signature, then the IHDR chunk: length 13, "IHDR", width, height (big-endian).
    if len(head) < 24 or head[12:16] != b"IHDR":
        raise HeaderError("the PNG has no IHDR chunk first")
    return struct.unpack(">II", head[16:24])


_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg(fh, head):
    pos = 2
    while pos < MAX_HEADER_SCAN:
        b = _read_at(fh, pos, 2)
        if b[0] != 0xFF:
            raise HeaderError("the JPEG's markers are damaged")
        marker = b[1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            pos += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image / start of scan before any frame header
            raise HeaderError("the JPEG has no frame header before its image data")
        (length,) = struct.unpack(">H", _read_at(fh, pos + 2, 2))
        if length < 2:
            raise HeaderError("the JPEG's markers are damaged")
        if marker in _SOF:
            _precision, h, w = struct.unpack(">BHH", _read_at(fh, pos + 4, 5))
            if h == 0:
                raise HeaderError("the JPEG declares its height later (DNL), which is not "
                                  "supported")
            return w, h
        pos += 2 + length
    raise HeaderError("no JPEG frame header in the first 4 MiB")


def _bmp(fh, head):
    if len(head) < 26:
        raise HeaderError("the BMP header is cut short")
    (dib,) = struct.unpack("<I", head[14:18])
    if dib == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sizes
        return struct.unpack("<HH", head[18:22])
    w, h = struct.unpack("<ii", head[18:26])
    return w, abs(h)  # negative height: rows stored top-down


def _webp(fh, head):
    if len(head) < 30:
        raise HeaderError("the WebP header is cut short")
    kind = head[12:16]
    if kind == b"VP8 ":
        if head[23:26] != b"\x9d\x01\x2a":
            raise HeaderError("the WebP (VP8) frame header is damaged")
        w, h = struct.unpack("<HH", head[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if kind == b"VP8L":
        if head[20] != 0x2F:
            raise HeaderError("the WebP (VP8L) header is damaged")
        (bits,) = struct.unpack("<I", head[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if kind == b"VP8X":
        w = int.from_bytes(head[24:27], "little") + 1
        h = int.from_bytes(head[27:30], "little") + 1
        return w, h
    raise HeaderError("the WebP has an unknown first chunk")


_TIFF_TYPES = {3: ("H", 2), 4: ("I", 4), 16: ("Q", 8)}  # SHORT, LONG, LONG8


def _tiff(fh, head):
    end = "<" if head[:2] == b"II" else ">"
    (magic,) = struct.unpack(end + "H", head[2:4])
    big = magic == 43
    if big:
        (offset,) = struct.unpack(end + "Q", head[8:16])
        count_fmt, entry, count_size = "Q", 20, 8
    else:
        (offset,) = struct.unpack(end + "I", head[4:8])
        count_fmt, entry, count_size = "H", 12, 2
    (count,) = struct.unpack(end + count_fmt, _read_at(fh, offset, count_size))
    if count > 4096:
        raise HeaderError("the TIFF's first directory is damaged")
    table = _read_at(fh, offset + count_size, count * entry)
    found = {}
    for i in range(count):
        e = table[i * entry:(i + 1) * entry]
        tag, typ = struct.unpack(end + "HH", e[:4])
        if tag in (256, 257) and typ in _TIFF_TYPES:
            fmt, _size = _TIFF_TYPES[typ]
            value = e[12:] if big else e[8:]
            (found[tag],) = struct.unpack(end + fmt, value[:struct.calcsize(fmt)])
    if 256 not in found or 257 not in found:
        raise HeaderError("the TIFF's first image has no width or height")
    return found[256], found[257]


def _jp2(fh, head):
    # Boxes: length (4), type (4) [, 64-bit length]; the size is in jp2h/ihdr: height, width.
    pos, end_of = 0, MAX_HEADER_SCAN
    while pos < end_of:
        length, kind = struct.unpack(">I4s", _read_at(fh, pos, 8))
        hdr = 8
        if length == 1:
            (length,) = struct.unpack(">Q", _read_at(fh, pos + 8, 8))
            hdr = 16
        if kind == b"jp2h":  # a superbox: look inside it
            end_of = pos + length if length else MAX_HEADER_SCAN
            pos += hdr
            continue
        if kind == b"ihdr":
            h, w = struct.unpack(">II", _read_at(fh, pos + hdr, 8))
            return w, h
        if kind == b"jp2c" or length == 0 or length < hdr:
            break
        pos += length
    raise HeaderError("the JPEG 2000 file has no image header (jp2h/ihdr)")


def _j2k(fh, head):
    # Codestream: SOC, SIZ marker: Lsiz, Rsiz, Xsiz, Ysiz, XOsiz, YOsiz.
    if len(head) < 24:
        raise HeaderError("the JPEG 2000 codestream is cut short")
    xs, ys, xo, yo = struct.unpack(">IIII", head[8:24])
    return xs - xo, ys - yo


_TOKEN = re.compile(rb"\s*(?:#[^\n]*\n\s*)*(\S+)")


def _pnm(fh, head):
    data = _read_upto(fh, 0, 4096)
    if head[:2] == b"P7":  # PAM: WIDTH/HEIGHT lines up to ENDHDR
        text = data.split(b"ENDHDR", 1)[0]
        w = re.search(rb"\nWIDTH\s+(\d+)", text)
        h = re.search(rb"\nHEIGHT\s+(\d+)", text)
        if not (w and h):
            raise HeaderError("the PAM header has no WIDTH or HEIGHT")
        return int(w.group(1)), int(h.group(1))
    pos, vals = 2, []
    for _ in range(2):
        m = _TOKEN.match(data, pos)
        if not m or not m.group(1).isdigit():
            raise HeaderError("the PNM header is damaged")
        vals.append(int(m.group(1)))
        pos = m.end()
    return vals[0], vals[1]


def _sunras(fh, head):
    w, h = struct.unpack(">ii", head[4:12])
    return w, h


def _hdr(fh, head):
    data = _read_upto(fh, 0, 65536)
    parts = re.split(rb"\r?\n\r?\n", data, maxsplit=1)
    if len(parts) != 2:
        raise HeaderError("the Radiance HDR header has no end")
    m = re.match(rb"\s*[-+]([XY])\s+(\d+)\s+[-+]([XY])\s+(\d+)", parts[1])
    if not m or m.group(1) == m.group(3):
        raise HeaderError("the Radiance HDR resolution line is damaged")
    a, b = int(m.group(2)), int(m.group(4))
    return (b, a) if m.group(1) == b"Y" else (a, b)


def _exr(fh, head):
    pos = 8
    while pos < MAX_HEADER_SCAN:
        chunk = _read_upto(fh, pos, 520)
        name_end = chunk.find(b"\0")
        if name_end == 0:
            break
        type_end = chunk.find(b"\0", name_end + 1)
        if name_end < 0 or type_end < 0:
            raise HeaderError("the OpenEXR header is damaged")
        name = chunk[:name_end]
        (size,) = struct.unpack("<i", _read_at(fh, pos + type_end + 1, 4))
        value_at = pos + type_end + 5
        if name == b"dataWindow":
            x0, y0, x1, y1 = struct.unpack("<iiii", _read_at(fh, value_at, 16))
            return x1 - x0 + 1, y1 - y0 + 1
        if size < 0:
            raise HeaderError("the OpenEXR header is damaged")
        pos = value_at + size
    raise HeaderError("the OpenEXR header has no dataWindow")


def _gif(fh, head):
    return struct.unpack("<HH", head[6:10])


_FORMATS = (
    ("PNG", lambda h: h[:8] == b"\x89PNG\r\n\x1a\n", _png),
    ("JPEG", lambda h: h[:2] == b"\xff\xd8", _jpeg),
    ("BMP", lambda h: h[:2] == b"BM", _bmp),
    ("WebP", lambda h: h[:4] == b"RIFF" and h[8:12] == b"WEBP", _webp),
    ("TIFF", lambda h: h[:4] in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"), _tiff),
    ("JPEG 2000", lambda h: h[:12] == b"\0\0\0\x0cjP  \r\n\x87\n", _jp2),
    ("JPEG 2000", lambda h: h[:4] == b"\xff\x4f\xff\x51", _j2k),
    ("PNM", lambda h: len(h) > 2 and h[:1] == b"P" and h[1:2] in b"1234567"
     and h[2:3] in b" \t\r\n", _pnm),
    ("PFM", lambda h: h[:2] in (b"PF", b"Pf") and h[2:3] in b" \t\r\n", _pnm),
    ("Sun raster", lambda h: h[:4] == b"\x59\xa6\x6a\x95", _sunras),
    ("Radiance HDR", lambda h: h.startswith((b"#?RADIANCE", b"#?RGBE")), _hdr),
    ("OpenEXR", lambda h: h[:4] == b"\x76\x2f\x31\x01", _exr),
    ("GIF", lambda h: h[:6] in (b"GIF87a", b"GIF89a"), _gif),
)
