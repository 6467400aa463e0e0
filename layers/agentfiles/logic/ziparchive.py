"""A ZIP archive written as a stream of bytes, entry by entry, whose state is a small
value: so an archive can be written by one run, continued by another, and finished by a
third, each appending to the same multipart upload.

Each entry has a local header with a data descriptor (its CRC and sizes follow its data,
so nothing is known in advance and nothing is seeked back to); the central directory at
the end names every entry's offset. Past 4 GiB the central directory uses ZIP64 records,
as readers expect. JSON is deflated; files, mostly compressed already (images, PDFs,
Office), are stored as uploaded.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

_LOCAL = 0x04034B50
_DESCRIPTOR = 0x08074B50
_CENTRAL = 0x02014B50
_END = 0x06054B50
_END64 = 0x06064B50
_LOCATOR64 = 0x07064B50
_DESCRIPTOR_FLAG = 0x08
_UTF8_FLAG = 0x800
STORED, DEFLATED = 0, 8
_LIMIT = 0xFFFFFFFF
_VERSION = 45  # 4.5: ZIP64


@dataclass
class Entry:
    name: str
    method: int
    offset: int
    crc: int = 0
    compressed: int = 0
    size: int = 0
    # MS-DOS time and date, as the central directory holds them.
    dos_time: int = 0
    dos_date: int = 0

    def dump(self) -> list[Any]:
        return [
            self.name,
            self.method,
            self.offset,
            self.crc,
            self.compressed,
            self.size,
            self.dos_time,
            self.dos_date,
        ]

    @classmethod
    def load(cls, value: list[Any]) -> Entry:
        return cls(*value)


def _dos(timestamp: tuple[int, int, int, int, int, int]) -> tuple[int, int]:
    year, month, day, hour, minute, second = timestamp
    return (hour << 11) | (minute << 5) | (second // 2), ((year - 1980) << 9) | (month << 5) | day


@dataclass
class ZipStream:
    """Where the archive is: bytes written so far, and every finished entry."""

    offset: int = 0
    entries: list[Entry] = field(default_factory=list)
    _open: Entry | None = None
    _crc: int = 0
    _deflate: Any = None

    def dump(self) -> dict[str, Any]:
        if self._open is not None:
            raise ValueError("an entry is still open")
        return {"offset": self.offset, "entries": [e.dump() for e in self.entries]}

    @classmethod
    def load(cls, value: dict[str, Any]) -> ZipStream:
        return cls(offset=int(value["offset"]), entries=[Entry.load(e) for e in value["entries"]])

    def _emit(self, data: bytes) -> bytes:
        self.offset += len(data)
        return data

    def begin(self, name: str, *, deflate: bool, when: tuple[int, int, int, int, int, int]) -> bytes:
        dos_time, dos_date = _dos(when)
        entry = Entry(
            name, DEFLATED if deflate else STORED, self.offset, dos_time=dos_time, dos_date=dos_date
        )
        self._open, self._crc = entry, 0
        self._deflate = zlib.compressobj(6, zlib.DEFLATED, -15) if deflate else None
        encoded = name.encode()
        header = struct.pack(
            "<IHHHHHIIIHH",
            _LOCAL,
            20,
            _DESCRIPTOR_FLAG | _UTF8_FLAG,
            entry.method,
            dos_time,
            dos_date,
            0,
            0,
            0,
            len(encoded),
            0,
        )
        return self._emit(header + encoded)

    def write(self, data: bytes) -> bytes:
        entry = self._open
        assert entry is not None, "no entry is open"
        self._crc = zlib.crc32(data, self._crc)
        entry.size += len(data)
        out = self._deflate.compress(data) if self._deflate is not None else data
        entry.compressed += len(out)
        return self._emit(out)

    def end(self) -> bytes:
        entry = self._open
        assert entry is not None, "no entry is open"
        tail = self._deflate.flush() if self._deflate is not None else b""
        entry.compressed += len(tail)
        entry.crc = self._crc
        self._open, self._deflate = None, None
        self.entries.append(entry)
        if entry.compressed >= _LIMIT or entry.size >= _LIMIT:
            descriptor = struct.pack("<IIQQ", _DESCRIPTOR, entry.crc, entry.compressed, entry.size)
        else:
            descriptor = struct.pack("<IIII", _DESCRIPTOR, entry.crc, entry.compressed, entry.size)
        return self._emit(tail + descriptor)

    def finish(self) -> bytes:
        """The central directory and its end records: the last bytes of the archive."""
        start = self.offset
        directory = b"".join(self._central(entry) for entry in self.entries)
        end = start + len(directory)
        records = b""
        count = len(self.entries)
        if start >= _LIMIT or end >= _LIMIT or count >= 0xFFFF:
            records += struct.pack(
                "<IQHHIIQQQQ", _END64, 44, _VERSION, _VERSION, 0, 0, count, count, len(directory), start
            )
            records += struct.pack("<IIQI", _LOCATOR64, 0, end, 1)
        records += struct.pack(
            "<IHHHHIIH",
            _END,
            0,
            0,
            min(count, 0xFFFF),
            min(count, 0xFFFF),
            min(len(directory), _LIMIT),
            min(start, _LIMIT),
            0,
        )
        return self._emit(directory + records)

    @staticmethod
    def _central(entry: Entry) -> bytes:
        extra_values = []
        size, compressed, offset = entry.size, entry.compressed, entry.offset
        if size >= _LIMIT:
            extra_values.append(size)
            size = _LIMIT
        if compressed >= _LIMIT:
            extra_values.append(compressed)
            compressed = _LIMIT
        if offset >= _LIMIT:
            extra_values.append(offset)
            offset = _LIMIT
        extra = b""
        if extra_values:
            extra = struct.pack("<HH", 1, 8 * len(extra_values)) + struct.pack(
                f"<{len(extra_values)}Q", *extra_values
            )
        encoded = entry.name.encode()
        return (
            struct.pack(
                "<IHHHHHHIIIHHHHHII",
                _CENTRAL,
                _VERSION,
                _VERSION if extra_values else 20,
                _DESCRIPTOR_FLAG | _UTF8_FLAG,
                entry.method,
                entry.dos_time,
                entry.dos_date,
                entry.crc,
                compressed,
                size,
                len(encoded),
                len(extra),
                0,
                0,
                0,
                0o644 << 16,
                offset,
            )
            + encoded
            + extra
        )
