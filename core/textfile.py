"""Is this input file text in the expected encoding? One check (and one wording) for every reader.

    check_text(path)                       # raises NotTextError for binary data or a bad byte
    text = read_text(path, "utf-8")        # the whole file, checked and decoded (a BOM is dropped)
    check_text(path, rows=True)            # streaming readers: only the header / most lines must decode

Messages say what the file is and never echo its bytes:

    feed.csv is not UTF-8 text (invalid byte at offset 57); convert it or pass --encoding
    feed.csv is binary, not text (it looks like a ZIP archive (.xlsx, .docx, .zip)); pass a text file

``.gz`` files are checked after decompression (offsets are then in the uncompressed text).
"""
from __future__ import annotations

import codecs
import gzip
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import BinaryIO

from kgfusion.core.errors import DataError

HEAD_BYTES = 1 << 20  # what ``rows=True`` samples: the first MiB
CHUNK = 1 << 20
ENCODING_HINT = "convert it or pass --encoding"
UTF8_HINT = "convert it to UTF-8"

# Leading bytes of common binary formats a user might pass by mistake.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "a ZIP archive (.xlsx, .docx, .zip)"),
    (b"\x1f\x8b", "gzip-compressed data (name it .gz)"),
    (b"PAR1", "a Parquet file"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\xd0\xcf\x11\xe0", "an old Office document (.xls, .doc)"),
    (b"BZh", "bzip2-compressed data"),
    (b"\xfd7zXZ\x00", "xz-compressed data"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed data"),
    (b"\x7fELF", "an executable"),
    (b"\x80\x04\x95", "a Python pickle"),
    (b"\x93NUMPY", "a NumPy array file"),
)
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
)


class NotTextError(DataError):
    """An input file is binary, or not text in the expected encoding (the message says which and where)."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message)
        self.offset = offset


def canonical(encoding: str) -> str:
    """Python's name for ``encoding`` (``utf_8`` -> ``utf-8``); DataError naming it when unknown."""
    try:
        return codecs.lookup(encoding).name
    except LookupError as exc:
        raise DataError(f"unknown encoding {encoding!r}; use a Python codec name such as utf-8, latin-1, "
                        "cp1252 or utf-16") from exc


def decoding_name(encoding: str) -> str:
    """The codec to decode with: UTF-8 input may start with a BOM (Excel exports), which is not text."""
    name = canonical(encoding)
    return "utf-8-sig" if name == "utf-8" else name


def _label(encoding: str) -> str:
    """UTF-8 / UTF-16 / UTF-32 spelled as people do; other encodings as the user named them."""
    name = canonical(encoding)
    return {"utf-8": "UTF-8", "utf-8-sig": "UTF-8", "utf-16": "UTF-16", "utf-32": "UTF-32"}.get(name, encoding)


def _ascii_compatible(encoding: str) -> bool:
    return canonical(encoding) not in {"utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"}


def open_bytes(path: str | Path) -> BinaryIO:
    """The file's bytes, gunzipped when the name ends in .gz."""
    path = Path(path)
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")  # type: ignore[return-value]


def utf_bom(data: bytes) -> str | None:
    """"utf-16" / "utf-32" when ``data`` starts with that byte-order mark (UTF-32 checked first), else None."""
    return next((family for bom, family in _BOMS if data.startswith(bom)), None)


def sniff_binary(head: bytes, encoding: str = "utf-8") -> str | None:
    """What binary data ``head`` (a file's first bytes) looks like, or None when it may be text.

    A known format's leading bytes, a UTF-16/32 byte-order mark (when ``encoding`` is not that one),
    or a NUL byte (ASCII-compatible encodings only: UTF-16 text is full of them).
    """
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return what
    name = canonical(encoding)
    for bom, family in _BOMS:
        if head.startswith(bom) and not name.startswith(family):
            return f"{family.upper()} text (byte-order mark)"
    if _ascii_compatible(encoding):
        nul = head.find(b"\x00", 0, 8192)
        if nul >= 0:
            return f"NUL byte at offset {nul}"
    return None


def binary_message(path: str | Path, what: str, hint: str = ENCODING_HINT) -> str:
    """``PATH is binary, not text (it looks like ...)``; a UTF-16/32 file is named as such with the fix."""
    if what.endswith("(byte-order mark)"):  # text, in an encoding the reader was not told about
        family = what.split()[0].lower()
        fix = f"pass --encoding {family} or convert it to UTF-8" if "--encoding" in hint else "convert it to UTF-8"
        return f"{path} is {what}; {fix}"
    shown = what if what.startswith("NUL") else f"it looks like {what}"
    return f"{path} is binary, not text ({shown}); pass a text file"


def not_text_message(path: str | Path, offset: int | None, encoding: str = "utf-8", hint: str = ENCODING_HINT,
                     line: int | None = None) -> str:
    """``PATH is not UTF-8 text (invalid byte at offset N); HINT`` (the one wording every reader uses)."""
    where = [f"invalid byte at offset {offset}" if offset is not None else "invalid bytes"]
    if line is not None:
        where.append(f"line {line}")
    if str(path).lower().endswith(".gz") and offset is not None:
        where.append("uncompressed")
    return f"{path} is not {_label(encoding)} text ({', '.join(where)}); {hint}"


def _decode_error_offset(chunks: Iterable[bytes], encoding: str, final: bool = True) -> tuple[int, int | None] | None:
    """(absolute offset, line or None) of the first byte that does not decode, or None.

    ``final=False``: an incomplete character at the very end is not an error (a sample cut mid-character).
    """
    decoder = codecs.getincrementaldecoder(decoding_name(encoding))(errors="strict")
    count_lines = _ascii_compatible(encoding)
    pos, lines = 0, 1
    for chunk in chunks:
        pending = len(decoder.getstate()[0])
        try:
            decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            offset = pos - pending + exc.start
            return offset, (lines + chunk.count(b"\n", 0, max(0, offset - pos))) if count_lines else None
        lines += chunk.count(b"\n")
        pos += len(chunk)
    if final:
        pending = decoder.getstate()[0]
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            return pos - len(exc.object) + exc.start, lines if count_lines else None
        if pending:  # utf-8-sig swallows a cut-off BOM prefix (b"\xef") at the end instead of raising
            return pos - len(pending), lines if count_lines else None
    return None


def _chunks(fh: BinaryIO) -> Iterable[bytes]:
    while chunk := fh.read(CHUNK):
        yield chunk


def first_bad_byte(data: bytes, encoding: str = "utf-8") -> int | None:
    """Offset of the first byte of ``data`` that does not decode, or None."""
    bad = _decode_error_offset([data], encoding)
    return None if bad is None else bad[0]


def check_bytes(data: bytes, path: str | Path, encoding: str = "utf-8", hint: str = ENCODING_HINT) -> None:
    """NotTextError when ``data`` (the content of ``path``) is binary or does not decode."""
    what = sniff_binary(data, encoding)
    if what:
        raise NotTextError(binary_message(path, what, hint))
    bad = _decode_error_offset([data], encoding)
    if bad is not None:
        raise NotTextError(not_text_message(path, bad[0], encoding, hint, line=bad[1]), bad[0])


def decode(data: bytes, path: str | Path, encoding: str = "utf-8", hint: str = ENCODING_HINT) -> str:
    """``data`` decoded (a leading UTF-8 BOM dropped) after :func:`check_bytes`."""
    check_bytes(data, path, encoding, hint)
    return data.decode(decoding_name(encoding))


def read_text(path: str | Path, encoding: str = "utf-8", hint: str = ENCODING_HINT) -> str:
    """The whole file (gunzipped for .gz) as text; NotTextError for binary data or a bad byte."""
    try:
        with open_bytes(path) as fh:
            data = fh.read()
    except (OSError, EOFError, zlib.error) as exc:  # OSError includes gzip.BadGzipFile
        raise DataError(f"{path}: cannot read the file ({exc}); re-compress it or pass the plain file") from exc
    return decode(data, path, encoding, hint)


def check_text(path: str | Path, encoding: str = "utf-8", *, rows: bool = False, hint: str = ENCODING_HINT) -> None:
    """NotTextError unless ``path`` is text in ``encoding``; streams, so any size is fine.

    ``rows=False``: every byte must decode. ``rows=True`` (readers that reject single bad rows): only
    the first MiB is sampled, and it fails when it is binary, when its first line (a header) does not
    decode, or when half or more of the other lines do not (the file is in another encoding); fewer bad
    lines are left to the reader's per-row rejects.
    """
    canonical(encoding)
    try:
        with open_bytes(path) as fh:
            head = fh.read(8192)
            what = sniff_binary(head, encoding)
            if what:
                raise NotTextError(binary_message(path, what, hint))
            if rows:
                sample = head + fh.read(HEAD_BYTES - len(head))
                _check_sample(path, sample, encoding, hint)
            else:
                bad = _decode_error_offset(_prepend(head, _chunks(fh)), encoding)
                if bad is not None:
                    raise NotTextError(not_text_message(path, bad[0], encoding, hint, line=bad[1]), bad[0])
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: corrupt or truncated gzip file ({exc}); re-compress it or pass the plain file") \
            from exc


def _prepend(first: bytes, rest: Iterable[bytes]) -> Iterable[bytes]:
    yield first
    yield from rest


def _check_sample(path: str | Path, sample: bytes, encoding: str, hint: str) -> None:
    cut = len(sample) >= HEAD_BYTES  # the sample may end in the middle of a character
    if not _ascii_compatible(encoding):  # lines cannot be cut on bytes: decode the sample as a whole
        bad = _decode_error_offset([sample], encoding, final=not cut)
        if bad is not None:
            raise NotTextError(not_text_message(path, bad[0], encoding, hint), bad[0])
        return
    lines = sample.split(b"\n")
    offset, first_bad, bad_lines, counted = 0, None, 0, 0
    for number, line in enumerate(lines, start=1):
        last = number == len(lines)
        counted += number > 1 and bool(line.strip())
        bad = _decode_error_offset([line], encoding, final=not (last and cut))
        if bad is not None:
            bad_lines += 1
            first_bad = first_bad or (offset + bad[0], number)
            if number == 1:
                break
        offset += len(line) + 1
    if first_bad is not None and (first_bad[1] == 1 or 2 * bad_lines >= counted):
        raise NotTextError(not_text_message(path, first_bad[0], encoding, hint, line=first_bad[1]), first_bad[0])


def brief(value: object, width: int = 60) -> str:
    """``repr(str(value))`` cut to about ``width`` characters, for quoting a cell in a message."""
    text = repr(str(value))
    return text if len(text) <= width else text[: width - 4] + "...'"


def show_names(names: Sequence[object], limit: int = 12, width: int = 40) -> str:
    """A list of column names for a message: at most ``limit`` names of at most ``width`` characters.

    A garbage header (one 30 MB line, control characters) must not flood the terminal.
    """
    shown = [brief(name, width) for name in list(names)[:limit]]
    more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    return "[" + ", ".join(shown) + more + "]"
