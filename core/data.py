"""Readers for labelled data and seeded, stratified splits.

Text classification: CSV / JSONL with text and label columns, or the Financial PhraseBank
``sentence@label`` latin-1 format. Token classification: CoNLL/IOB2 TSV (token<TAB>tag, blank line
between sentences). Every input row ends in the examples or in ``rejects`` with a reason. Files are
checked up front (core.textfile): a binary file or one that is not text in its encoding is a DataError
naming the file and the offset of the first bad byte.
"""
from __future__ import annotations

import csv
import gzip
import io
import json
import random
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, Literal, TypeVar

from kgfusion.core.errors import DataError
from kgfusion.core.textfile import UTF8_HINT, brief, check_text, decoding_name, not_text_message, show_names

TextFormat = Literal["auto", "csv", "jsonl", "phrasebank"]


@dataclass(frozen=True)
class TextExample:
    text: str
    label: str
    row: int = 0  # 1-based line/row in the source file, for messages
    head: str = ""  # multi-task training: the task (head) the label belongs to, e.g. "topic"


@dataclass(frozen=True)
class TokenExample:
    tokens: tuple[str, ...]
    tags: tuple[str, ...]
    row: int = 0  # line of the sentence's first token

    @property
    def text(self) -> str:
        return " ".join(self.tokens)


@dataclass(frozen=True)
class Reject:
    source: str
    row: int
    reason: str
    raw: str = ""


E = TypeVar("E")


@dataclass
class ReadResult(Generic[E]):
    examples: list[E]
    rejects: list[Reject] = field(default_factory=list)

    def labels(self) -> list[str]:
        return sorted({lab for ex in self.examples for lab in _labels_of(ex)})


def _labels_of(ex) -> Iterable[str]:
    return ex.tags if isinstance(ex, TokenExample) else (ex.label,)


def _open_text(path: Path, encoding: str):
    encoding = decoding_name(encoding)  # utf-8 -> utf-8-sig: a leading BOM (Excel exports) is not part of the first field
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding=encoding, newline="")
    return open(path, encoding=encoding, newline="")


@contextmanager
def _reading(path: Path, encoding: str) -> Iterator[None]:
    """Turn decoding, gzip and CSV-parser failures into a DataError naming the file and the fix."""
    try:
        yield
    except UnicodeDecodeError as exc:  # check_text ran first; this is the safety net (e.g. a file changed meanwhile)
        raise DataError(not_text_message(path, None, encoding, UTF8_HINT)) from exc
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: corrupt or truncated gzip file ({exc}); re-compress it or pass the plain file") from exc
    except csv.Error as exc:
        raise DataError(f"{path}: CSV parse error ({exc}); fix the quoting or split the huge field") from exc


def _check(path: Path, encoding: str) -> None:
    """Binary data or a byte that does not decode: one DataError naming the file and the offset."""
    check_text(path, encoding, hint=UTF8_HINT)


def _detect_format(path: Path) -> TextFormat:
    name = path.name.lower().removesuffix(".gz")
    if name.endswith((".jsonl", ".json", ".ndjson")):
        return "jsonl"
    if name.endswith((".csv", ".tsv")):
        return "csv"
    if name.endswith(".txt"):
        return "phrasebank"
    raise DataError(f"{path}: unknown file type; use .csv, .tsv, .jsonl or a PhraseBank .txt, or pass fmt=")


def read_text_classification(
    path: str | Path,
    text_col: str = "text",
    label_col: str = "label",
    fmt: TextFormat = "auto",
    label_map: dict[str, str] | None = None,
    encoding: str | None = None,
) -> ReadResult[TextExample]:
    """Read (text, label) rows. ``label_map`` renames labels (e.g. {"0": "negative"}); unmapped labels are rejected."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    fmt = _detect_format(path) if fmt == "auto" else fmt
    if fmt == "phrasebank":
        result = read_phrasebank(path, encoding=encoding or "latin-1")
    elif fmt == "csv":
        result = _read_csv(path, text_col, label_col, encoding or "utf-8")
    elif fmt == "jsonl":
        result = _read_jsonl(path, text_col, label_col, encoding or "utf-8")
    else:
        raise DataError(f"{path}: unknown format {fmt!r}; choose auto, csv, jsonl or phrasebank")
    if label_map is not None:
        kept, rejects = [], list(result.rejects)
        for ex in result.examples:
            if ex.label in label_map:
                kept.append(TextExample(ex.text, label_map[ex.label], ex.row))
            else:
                rejects.append(Reject(str(path), ex.row, f"label {brief(ex.label)} not in label map {show_names(sorted(label_map))}"))
        result = ReadResult(kept, rejects)
    if not result.examples:
        raise DataError(f"{path}: no usable rows ({len(result.rejects)} rejected); first reason: "
                        + (result.rejects[0].reason if result.rejects else "file is empty"))
    return result


def read_phrasebank(path: str | Path, encoding: str = "latin-1") -> ReadResult[TextExample]:
    """Financial PhraseBank: one ``sentence@label`` per line, ISO-8859-1."""
    path = Path(path)
    _check(path, encoding)
    examples, rejects = [], []
    with _reading(path, encoding), _open_text(path, encoding) as fh:
        for lineno, line in enumerate(fh, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                rejects.append(Reject(str(path), lineno, "empty line"))
                continue
            text, sep, label = line.rpartition("@")
            if not sep or not text.strip() or not label.strip():
                rejects.append(Reject(str(path), lineno, "expected 'sentence@label'", line[:200]))
                continue
            examples.append(TextExample(text.strip(), label.strip().lower(), lineno))
    return ReadResult(examples, rejects)


def _read_csv(path: Path, text_col: str, label_col: str, encoding: str) -> ReadResult[TextExample]:
    delimiter = "\t" if path.name.lower().removesuffix(".gz").endswith(".tsv") else ","
    _check(path, encoding)
    with _reading(path, encoding), _open_text(path, encoding) as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        try:
            return _csv_rows(path, reader, text_col, label_col)
        except csv.Error as exc:
            raise DataError(f"{path}: CSV parse error at line {reader.line_num} ({exc}); fix the quoting or split "
                            "the huge field") from exc


def _csv_rows(path: Path, reader, text_col: str, label_col: str) -> ReadResult[TextExample]:
    header = next(reader, None)
    if header is None:
        raise DataError(f"{path}: the file is empty; expected a header row naming the {text_col!r} and "
                        f"{label_col!r} columns, then one row per example")
    missing = [c for c in (text_col, label_col) if c not in header]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {missing}; found {show_names(header)}. "
            "Pass --text-col/--label-col (text_col=/label_col=) to name them."
        )
    examples: list[TextExample] = []
    rejects: list[Reject] = []
    start = reader.line_num + 1
    for values in reader:
        # A row's number is the file line it starts on (quoted fields may span lines).
        rowno, start = start, reader.line_num + 1
        if not values:
            continue  # a blank line is not a row
        row = dict(zip(header, values))
        _take_row(path, rowno, row.get(text_col), row.get(label_col), examples, rejects)
    return ReadResult(examples, rejects)


def _read_jsonl(path: Path, text_col: str, label_col: str, encoding: str) -> ReadResult[TextExample]:
    _check(path, encoding)
    examples, rejects = [], []
    with _reading(path, encoding), _open_text(path, encoding) as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                rejects.append(Reject(str(path), lineno, "empty line"))
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                rejects.append(Reject(str(path), lineno, f"invalid JSON: {exc.msg}", line[:200]))
                continue
            if not isinstance(obj, dict):
                rejects.append(Reject(str(path), lineno, "expected a JSON object per line", line[:200]))
                continue
            _take_row(path, lineno, obj.get(text_col), obj.get(label_col), examples, rejects)
    return ReadResult(examples, rejects)


def _take_row(path: Path, rowno: int, text, label, examples: list, rejects: list) -> None:
    if text is None or not str(text).strip():
        rejects.append(Reject(str(path), rowno, "empty or missing text"))
    elif label is None or str(label).strip() == "":
        rejects.append(Reject(str(path), rowno, "empty or missing label", str(text)[:200]))
    else:
        examples.append(TextExample(str(text).strip(), str(label).strip(), rowno))


def read_conll(path: str | Path, encoding: str = "utf-8", scheme: Literal["IOB2"] = "IOB2") -> ReadResult[TokenExample]:
    """Read token<TAB>tag lines; blank lines end sentences. Tags are checked against strict IOB2."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    _check(path, encoding)
    examples: list[TokenExample] = []
    rejects: list[Reject] = []
    tokens: list[str] = []
    tags: list[str] = []
    start = 0
    bad: str | None = None

    def flush() -> None:
        nonlocal tokens, tags, bad
        if tokens:
            if bad:
                rejects.append(Reject(str(path), start, bad, " ".join(tokens)[:200]))
            else:
                examples.append(TokenExample(tuple(tokens), tuple(tags), start))
        tokens, tags, bad = [], [], None

    with _reading(path, encoding), _open_text(path, encoding) as fh:
        for lineno, line in enumerate(fh, start=1):
            line = line.rstrip("\r\n")
            if not line.strip() or line.startswith("-DOCSTART-"):
                flush()
                continue
            parts = line.split("\t") if "\t" in line else line.split()
            if not tokens:
                start = lineno
            if len(parts) < 2:
                bad = bad or f"line {lineno}: expected 'token<TAB>tag'"
                tokens.append(parts[0] if parts else "")
                tags.append("O")
                continue
            token, tag = parts[0], parts[-1]
            problem = _iob2_problem(tag, tags[-1] if tags else "O")
            if problem:
                bad = bad or f"line {lineno}: {problem}"
            tokens.append(token)
            tags.append(tag)
        flush()
    if not examples:
        raise DataError(f"{path}: no sentences read ({len(rejects)} rejected); first reason: "
                        + (f"{rejects[0].reason}" if rejects else "the file holds no token<TAB>tag lines"))
    return ReadResult(examples, rejects)


def _iob2_problem(tag: str, prev: str) -> str | None:
    if tag == "O":
        return None
    prefix, _, etype = tag.partition("-")
    if prefix not in ("B", "I") or not etype:
        return f"tag {brief(tag)} is not IOB2 (use O, B-TYPE, I-TYPE)"
    if prefix == "I" and prev[2:] != etype:
        return f"tag {brief(tag)} follows {brief(prev)}; an I- tag must continue a B-/I- of the same type"
    return None


@dataclass
class DuplicateReport:
    exact_duplicates: int  # rows dropped because the same text with the same label came earlier
    conflicts: list[tuple[str, list[str]]]  # texts seen with different labels (all copies dropped)

    def summary(self) -> str:
        return f"{self.exact_duplicates} exact duplicates removed, {len(self.conflicts)} texts with conflicting labels removed"


def deduplicate(examples: Sequence[TextExample]) -> tuple[list[TextExample], DuplicateReport, list[Reject]]:
    """Drop repeated texts (case/space-insensitive) so no text lands in two splits; report conflicts.

    Same text, same label: the first copy is kept. Same text, different labels: every copy is rejected,
    since no label can be trusted.
    """
    groups: dict[str, list[TextExample]] = defaultdict(list)
    for ex in examples:
        groups[" ".join(ex.text.lower().split())].append(ex)
    kept, rejects, conflicts = [], [], []
    dupes = 0
    for exs in groups.values():
        labels = sorted({e.label for e in exs})
        if len(labels) > 1:
            conflicts.append((exs[0].text, labels))
            rejects += [Reject("", e.row, f"conflicting labels for the same text: {labels}") for e in exs]
            continue
        kept.append(exs[0])
        dupes += len(exs) - 1
        rejects += [Reject("", e.row, f"duplicate of row {exs[0].row}") for e in exs[1:]]
    kept.sort(key=lambda e: e.row)
    return kept, DuplicateReport(dupes, conflicts), rejects


@dataclass
class Splits(Generic[E]):
    train: list[E]
    dev: list[E]
    test: list[E]

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "dev": len(self.dev), "test": len(self.test)}


def split_stratified(
    examples: Sequence[E],
    dev: float = 0.1,
    test: float = 0.1,
    seed: int = 13,
    key: Callable[[E], str] | None = None,
) -> Splits[E]:
    """Seeded split keeping each stratum's share in every part (largest-remainder per stratum).

    ``key`` gives the stratum (default: the label; for token examples, the sorted entity types present).
    """
    if not (0 <= dev < 1 and 0 <= test < 1 and dev + test < 1):
        raise DataError(f"split fractions dev={dev}, test={test} must be in [0, 1) and sum below 1")
    key = key or _default_stratum
    strata: dict[str, list[E]] = defaultdict(list)
    for ex in examples:
        strata[key(ex)].append(ex)
    rng = random.Random(seed)
    out: Splits[E] = Splits([], [], [])
    for name in sorted(strata):
        items = strata[name][:]
        rng.shuffle(items)
        n_dev, n_test = round(len(items) * dev), round(len(items) * test)
        out.dev += items[:n_dev]
        out.test += items[n_dev : n_dev + n_test]
        out.train += items[n_dev + n_test :]
    for part in (out.train, out.dev, out.test):
        rng.shuffle(part)
    return out


def _default_stratum(ex) -> str:
    if isinstance(ex, TokenExample):
        return ",".join(sorted({t[2:] for t in ex.tags if t != "O"})) or "O"
    return ex.label


def label_counts(examples: Iterable) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for ex in examples:
        counts.update(_labels_of(ex))
    return dict(sorted(counts.items()))


def rejects_csv(rejects: Sequence[Reject]) -> str:
    """Rejects as CSV text: header source,row,reason,raw."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["source", "row", "reason", "raw"])
    for r in rejects:
        writer.writerow([r.source, r.row, r.reason, r.raw])
    return buf.getvalue()


def write_rejects(rejects: Sequence[Reject], path: str | Path) -> Path:
    """Write rejects as CSV (source,row,reason,raw) atomically."""
    from kgfusion.core.fileio import atomic_write_text

    return atomic_write_text(path, rejects_csv(rejects))
