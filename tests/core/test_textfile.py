"""core.textfile: the one "is this text?" check, at the edges of UTF-8 and its byte-order mark."""
from __future__ import annotations

import pytest

from kgfusion.core.textfile import NotTextError, check_bytes, decode, utf_bom


@pytest.mark.parametrize(("data", "offset"), [(b"\xef", 0), (b"\xef\xbb", 0), (b"ok\xef\xbb", 2), (b"a\xc3", 1)])
def test_a_file_cut_inside_a_character_or_bom_is_not_text(data, offset):
    """Found by the reader fuzz test: utf-8-sig kept a lone b"\\xef" pending instead of failing."""
    with pytest.raises(NotTextError) as info:
        check_bytes(data, "g.ttl", hint="convert it to UTF-8")
    assert info.value.offset == offset
    assert str(info.value).startswith(f"g.ttl is not UTF-8 text (invalid byte at offset {offset}")


def test_a_whole_bom_is_dropped_and_utf16_boms_are_named():
    assert decode(b"\xef\xbb\xbfok", "f.csv") == "ok"
    assert decode(b"", "f.csv") == ""
    assert (utf_bom(b"\xff\xfe\x00\x00x"), utf_bom(b"\xff\xfex"), utf_bom(b"\xfe\xffx"), utf_bom(b"ok")) == \
        ("utf-32", "utf-16", "utf-16", None)


def test_the_graph_loader_reports_a_cut_off_file_instead_of_crashing(tmp_path):
    from kgfusion.knowledge.graph import GraphError, KnowledgeGraph

    path = tmp_path / "g.ttl"
    path.write_bytes(b"\xef")
    with pytest.raises(GraphError, match=r"g\.ttl is not UTF-8 text \(invalid byte at offset 0"):
        KnowledgeGraph.load(path)
