"""Properties of every data reader: garbage gives only domain errors; well-formed rows are conserved
(each ends in the output or in rejects exactly once), round-trip, and carry the line they start on."""
from __future__ import annotations

import contextlib
import csv
import io
import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from kgfusion.apps.finance.ingest import read_feed
from kgfusion.apps.medical.readers import read_notes
from kgfusion.apps.recommend.data import read_movies, read_ratings
from kgfusion.core import data as D
from kgfusion.core.errors import DataError, KgfusionError
from kgfusion.knowledge.graph import KnowledgeGraph
from tests.property.strategies import examples, garbage, labels, line_endings, one_line, texts, words

FAST = settings(max_examples=examples(20), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
ROUND = settings(max_examples=examples(50), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

READERS = {
    "tc.csv": D.read_text_classification, "tc.tsv": D.read_text_classification,
    "tc.jsonl": D.read_text_classification, "tc.txt": D.read_text_classification,
    "tc.csv.gz": D.read_text_classification, "tc.jsonl.gz": D.read_text_classification,
    "pb.txt": D.read_phrasebank, "c.conll": D.read_conll, "c.tsv.gz": D.read_conll,
    "f.csv": read_feed, "f.tsv": read_feed, "f.jsonl": read_feed, "f.csv.gz": read_feed, "f.jsonl.gz": read_feed,
    "n.txt": read_notes, "n.csv": read_notes, "n.tsv": read_notes, "n.jsonl": read_notes,
    "r.csv": read_ratings, "r.csv.gz": read_ratings, "m.csv": read_movies, "g.ttl": KnowledgeGraph.load,
}


@pytest.mark.parametrize("name", sorted(READERS))
def test_garbage_raises_only_domain_errors(name, tmp_path):
    reader = READERS[name]

    @FAST
    @given(garbage)
    @example(b"\x1f\x8b\x08\x00")  # truncated gzip header
    @example(b"\xff\xfe\x00")  # non-UTF-8 + NUL

    def check(blob: bytes) -> None:
        path = tmp_path / name
        path.write_bytes(blob)
        with contextlib.suppress(KgfusionError):  # the only allowed failure: a domain error
            reader(path)

    check()


# --------------------------------------------------------------------------------- helpers


def _physical_lines(text: str) -> int:
    """Lines as Python's text files split them with newline='' (\\n, \\r\\n and lone \\r)."""
    return len(io.StringIO(text, newline="").readlines())


def _csv_file(header: list[str], rows: list[list[str]], blanks: list[bool], eol: str, delimiter: str = ","
              ) -> tuple[str, list[int]]:
    """CSV text (quoted by csv.writer) and the 1-based line each data row starts on; blank lines
    are inserted before rows where ``blanks`` says so."""
    buf = io.StringIO(newline="")
    # QUOTE_ALL: QUOTE_MINIMAL leaves a lone \r unquoted when the terminator is \n (invalid CSV)
    writer = csv.writer(buf, delimiter=delimiter, lineterminator=eol, quoting=csv.QUOTE_ALL)
    writer.writerow(header)
    starts = []
    for row, blank in zip(rows, blanks):
        if blank:
            buf.write(eol)
        starts.append(_physical_lines(buf.getvalue()) + 1)
        writer.writerow(row)
    return buf.getvalue(), starts


row_lists = st.lists(st.tuples(texts, labels, st.booleans()), min_size=1, max_size=12)


# --------------------------------------------------------------------------------- core.data


@ROUND
@given(rows=row_lists, eol=line_endings, tsv=st.booleans(), bom=st.booleans())
@example(rows=[("a", "positive", True), ("b", "negative", False)], eol="\n", tsv=False, bom=False)  # blank line
@example(rows=[("a\nb", "", False), ("c", "positive", False)], eol="\r\n", tsv=False, bom=False)  # multi-line
@example(rows=[("a", "positive", False)], eol="\n", tsv=False, bom=True)  # Excel's UTF-8 BOM
def test_text_csv_conserves_rows_and_round_trips(rows, eol, tsv, bom, tmp_path_factory):
    path = tmp_path_factory.mktemp("csv") / ("d.tsv" if tsv else "d.csv")
    body, starts = _csv_file(["text", "label"], [[t, lab] for t, lab, _ in rows], [b for _, _, b in rows], eol,
                             "\t" if tsv else ",")
    path.write_text(("\ufeff" if bom else "") + body, encoding="utf-8", newline="")
    usable = [(t.strip(), lab.strip(), s) for (t, lab, _), s in zip(rows, starts) if t.strip() and lab.strip()]
    if "\x00" in body:  # a NUL byte: the file is judged binary, one error names it
        with pytest.raises(DataError, match="is binary, not text"):
            D.read_text_classification(path)
        return
    if not usable:
        with pytest.raises(DataError, match="no usable rows"):
            D.read_text_classification(path)
        return
    res = D.read_text_classification(path)
    assert len(res.examples) + len(res.rejects) == len(rows)
    assert sorted([e.row for e in res.examples] + [r.row for r in res.rejects]) == starts
    assert [(e.text, e.label, e.row) for e in res.examples] == usable


@ROUND
@given(rows=st.lists(st.one_of(st.tuples(texts, labels), st.sampled_from(["", "{bad json", "[1, 2]", "  "])),
                     min_size=1, max_size=12),
       eol=line_endings, bom=st.booleans())
@example(rows=[("a", "positive")], eol="\n", bom=True)
def test_text_jsonl_conserves_lines(rows, eol, bom, tmp_path_factory):
    path = tmp_path_factory.mktemp("jsonl") / "d.jsonl"
    lines = [json.dumps({"text": r[0], "label": r[1]}, ensure_ascii=False) if isinstance(r, tuple) else r
             for r in rows]
    path.write_text(("\ufeff" if bom else "") + eol.join(lines) + eol, encoding="utf-8", newline="")
    usable = [(r[0].strip(), r[1].strip(), i) for i, r in enumerate(rows, 1)
              if isinstance(r, tuple) and r[0].strip() and r[1].strip()]
    if not usable:
        with pytest.raises(DataError):
            D.read_text_classification(path)
        return
    res = D.read_text_classification(path)
    assert sorted([e.row for e in res.examples] + [r.row for r in res.rejects]) == list(range(1, len(rows) + 1))
    assert [(e.text, e.label, e.row) for e in res.examples] == usable


@ROUND
@given(rows=st.lists(st.tuples(one_line, st.sampled_from(["positive", "negative", "neutral", ""])), min_size=1,
                     max_size=12), eol=st.sampled_from(["\n", "\r\n", "\r"]))
def test_phrasebank_round_trips_latin1(rows, eol, tmp_path_factory):
    rows = [(t.encode("latin-1", "replace").decode("latin-1"), lab) for t, lab in rows]
    path = tmp_path_factory.mktemp("pb") / "p.txt"
    path.write_bytes(eol.join(f"{t}@{lab}" for t, lab in rows).encode("latin-1") + eol.encode())
    res = D.read_phrasebank(path)
    assert len(res.examples) + len(res.rejects) == len(rows)
    expected = [(t.strip(), lab, i) for i, (t, lab) in enumerate(rows, 1) if t.strip() and lab]
    assert [(e.text, e.label, e.row) for e in res.examples] == expected


def _iob2(n_tokens: int, draw) -> list[str]:
    tags, prev = [], "O"
    for _ in range(n_tokens):
        choices = ["O", "B-DIS", "B-CHEM"] + ([f"I-{prev[2:]}"] if prev != "O" else [])
        prev = draw(st.sampled_from(choices))
        tags.append(prev)
    return tags


@st.composite
def sentences(draw):
    n = draw(st.integers(1, 6))
    toks = draw(st.lists(words, min_size=n, max_size=n))
    return toks, _iob2(n, draw), draw(st.booleans())  # last: corrupt one tag


@ROUND
@given(sents=st.lists(sentences(), min_size=1, max_size=8), eol=line_endings)
def test_conll_conserves_sentences_and_points_at_first_token(sents, eol, tmp_path_factory):
    path = tmp_path_factory.mktemp("conll") / "c.tsv"
    lines, starts, good = [], [], []
    for toks, tags, corrupt in sents:
        tags = ["X-BAD", *tags[1:]] if corrupt else tags
        starts.append(len(lines) + 1)
        lines += [f"{t}\t{g}" for t, g in zip(toks, tags)] + [""]
        if not corrupt:
            good.append((tuple(toks), tuple(tags), starts[-1]))
    path.write_text(eol.join(lines) + eol, encoding="utf-8", newline="")
    if not good:
        with pytest.raises(DataError):
            D.read_conll(path)
        return
    res = D.read_conll(path)
    assert [(e.tokens, e.tags, e.row) for e in res.examples] == good
    assert sorted([e.row for e in res.examples] + [r.row for r in res.rejects]) == starts


def test_conll_non_utf8_is_a_data_error(tmp_path):
    """Regression: a latin-1 CoNLL file raised UnicodeDecodeError instead of DataError."""
    path = tmp_path / "c.conll"
    path.write_bytes("caf\xe9\tO\n".encode("latin-1"))
    with pytest.raises(DataError, match="UTF-8"):
        D.read_conll(path)


# --------------------------------------------------------------------------------- finance feed


@ROUND
@given(rows=st.lists(st.tuples(texts, st.booleans(), st.booleans()), min_size=1, max_size=12), eol=line_endings,
       bom=st.booleans())
@example(rows=[("a", True, False), ("b", False, False)], eol="\n", bom=True)
@example(rows=[("a\nb", False, False), ("c", False, True)], eol="\r\n", bom=False)
def test_feed_csv_conserves_rows(rows, eol, bom, tmp_path_factory):
    path = tmp_path_factory.mktemp("feed") / "f.csv"
    # distinct timestamps, so no row is a (text, time) duplicate of another
    data = [[f"id{i}", f"2014-01-02T10:{i:02d}:00Z" if good_ts else "not a date", t]
            for i, (t, good_ts, _) in enumerate(rows)]
    body, starts = _csv_file(["id", "created_at", "text"], data, [b for _, _, b in rows], eol)
    path.write_text(("\ufeff" if bom else "") + body, encoding="utf-8", newline="")
    if "\x00" in body:  # a NUL byte: the file is judged binary, one error names it
        with pytest.raises(DataError, match="is binary, not text"):
            read_feed(path)
        return
    res = read_feed(path)
    assert res.rows_read == len(rows)
    assert len(res.items) + len(res.rejects) == len(rows)
    assert sorted([it.row for it in res.items] + [r.row for r in res.rejects]) == starts
    import html

    expected = [(f"id{i}", html.unescape(t).strip(), s) for i, ((t, ok, _), s) in enumerate(zip(rows, starts))
                if ok and html.unescape(t).strip()]
    assert [(it.id, it.text, it.row) for it in res.items] == expected


@ROUND
@given(rows=st.lists(st.one_of(texts, st.sampled_from(["{bad", "[]", "\udcff"])), min_size=1, max_size=12),
       bom=st.booleans())
@example(rows=["a"], bom=True)
def test_feed_jsonl_conserves_lines(rows, bom, tmp_path_factory):
    path = tmp_path_factory.mktemp("feed") / "f.jsonl"
    lines = []
    for i, r in enumerate(rows):
        if r in ("{bad", "[]"):
            lines.append(r.encode())
        elif r == "\udcff":
            lines.append(b'{"text": "caf\xe9"}')  # latin-1 byte in a UTF-8 feed
        else:
            lines.append(json.dumps({"id": f"i{i}", "text": r}).encode())
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + b"\n".join(lines) + b"\n")
    try:
        res = read_feed(path)
    except DataError as exc:  # latin-1 in the first line or in half the lines: the file is in another encoding
        assert "is not UTF-8 text" in str(exc) and "\udcff" in rows
        return  # (a feed in which no line is a JSON object is all rejects, not a column error)
    assert len(res.items) + len(res.rejects) == len(rows) == res.rows_read
    assert sorted([it.row for it in res.items] + [r.row for r in res.rejects]) == list(range(1, len(rows) + 1))


# --------------------------------------------------------------------------------- medical notes


@ROUND
@given(rows=st.lists(st.tuples(texts, st.booleans()), min_size=1, max_size=10), eol=line_endings)
@example(rows=[("a", True), ("b", False)], eol="\n")
def test_notes_csv_conserves_rows(rows, eol, tmp_path_factory):
    path = tmp_path_factory.mktemp("notes") / "n.csv"
    body, starts = _csv_file(["note_id", "text"], [[f"n{i}", t] for i, (t, _) in enumerate(rows)],
                             [b for _, b in rows], eol)
    path.write_text(body, encoding="utf-8", newline="")
    out = read_notes(path)
    if not out.notes and out.rejects and out.rejects[0].row == 0:
        return  # the whole file was judged binary (NUL-heavy); one reject names it
    assert len(out.notes) + len(out.rejects) == len(rows)
    assert sorted([n.row for n in out.notes] + [r.row for r in out.rejects]) == starts
    expected = [(f"n{i}", t) for i, (t, _) in enumerate(rows) if t.strip() and "\x00" not in t]
    assert [(n.note_id, n.text) for n in out.notes] == expected


@ROUND
@given(rows=st.lists(st.one_of(texts, st.just("{bad")), min_size=1, max_size=10), eol=line_endings)
@example(rows=["line\u2028separator", "next"], eol="\n")  # U+2028 inside a JSON string is not a line break
def test_notes_jsonl_conserves_lines(rows, eol, tmp_path_factory):
    path = tmp_path_factory.mktemp("notes") / "n.jsonl"
    lines = [r if r == "{bad" else json.dumps({"id": f"n{i}", "text": r}, ensure_ascii=False)
             for i, r in enumerate(rows)]
    path.write_text(eol.join(lines) + eol, encoding="utf-8", newline="")
    out = read_notes(path)
    if not out.notes and out.rejects and out.rejects[0].row == 0:
        return
    assert len(out.notes) + len(out.rejects) == len(rows)
    assert sorted([n.row for n in out.notes] + [r.row for r in out.rejects]) == list(range(1, len(rows) + 1))
    assert [n.text for n in out.notes] == [r for r in rows if r != "{bad" and r.strip() and "\x00" not in r]


@ROUND
@given(text=st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1,
                    max_size=60).filter(str.strip),
       eol=st.sampled_from(["\n", "\r\n", "\r"]), bom=st.booleans())
@example(text="caf\u00e9 \u2028 fever", eol="\r\n", bom=True)
def test_text_note_is_returned_verbatim(text, eol, bom, tmp_path_factory):
    """Downstream offsets index the note text, so it must be the file's text exactly (BOM removed,
    line endings untouched)."""
    text = text.replace("\n", eol)
    path = tmp_path_factory.mktemp("notes") / "note.txt"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    out = read_notes(path)
    if out.rejects:  # control-character heavy text is judged binary, with one file-level reject
        assert len(out.rejects) == 1 and out.rejects[0].row == 0 and not out.notes
        return
    assert [n.text for n in out.notes] == [text]


# --------------------------------------------------------------------------------- recommend


cells = st.one_of(st.integers(-3, 50).map(str), st.sampled_from(["", "x", "1.5", "nan", " 7 ", "1e3"]))
ratings = st.one_of(st.sampled_from(["0.5", "5", "3.5", "0", "5.5", "abc", "", "-1"]), cells)


@ROUND
@given(rows=st.lists(st.tuples(cells, cells, ratings, cells), min_size=1, max_size=15))
def test_ratings_conserve_rows(rows, tmp_path_factory):
    path = tmp_path_factory.mktemp("ml") / "ratings.csv"
    body, _ = _csv_file(["userId", "movieId", "rating", "timestamp"], [list(r) for r in rows], [False] * len(rows), "\n")
    path.write_text(body, encoding="utf-8")
    try:
        frame, rejects = read_ratings(path)
    except DataError as exc:
        assert "no usable ratings" in str(exc) or "cannot parse" in str(exc)
        return
    assert len(frame) + len(rejects) == len(rows)
    assert all(1 <= r.row <= len(rows) for r in rejects)
    assert len({r.row for r in rejects}) == len(rejects)
    assert frame["rating"].between(0.5, 5.0).all()
    assert not frame.duplicated(["userId", "movieId"]).any()


@FAST
@given(titles=st.lists(one_line, min_size=1, max_size=8), bom=st.booleans())
def test_movies_round_trip_titles(titles, bom, tmp_path_factory):
    path = tmp_path_factory.mktemp("ml") / "movies.csv"
    body, _ = _csv_file(["movieId", "title", "genres"], [[str(i), t, "Drama|Comedy"] for i, t in enumerate(titles)],
                        [False] * len(titles), "\n")
    path.write_text(("\ufeff" if bom else "") + body, encoding="utf-8")
    movies = read_movies(path)
    assert list(movies["title"]) == [t.strip() for t in titles]
    assert list(movies["movieId"]) == list(range(len(titles)))


def test_huge_csv_field_is_a_data_error_or_read(tmp_path):
    """Regression: a field over csv's 128 KiB default limit raised _csv.Error from the CSV readers."""
    for name, reader in (("tc.csv", D.read_text_classification), ("f.csv", read_feed), ("n.csv", read_notes)):
        path = tmp_path / name
        big = "x" * 140_000
        path.write_text(f"text,label,note_id\n{big},pos,1\nsmall,neg,2\n", encoding="utf-8")
        try:
            reader(path)
        except DataError as exc:
            assert str(path) in str(exc) and "CSV" in str(exc)

