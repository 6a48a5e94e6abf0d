"""core.fileio.update_json: read-change-write of a JSON object shared by several writers."""
from __future__ import annotations

import json

import pytest

from kgfusion.core.fileio import update_json


def test_update_keeps_other_writers_keys_and_creates_the_file(tmp_path):
    path = tmp_path / "results" / "scale.json"
    assert update_json(path, lambda cur: cur | {"a": 1}) == {"a": 1}
    update_json(path, lambda cur: cur | {"b": [2]})
    assert json.loads(path.read_text()) == {"a": 1, "b": [2]}
    assert sorted(p.name for p in path.parent.iterdir()) == ["scale.json"]  # no lock or temp file left beside it


def test_invalid_json_is_left_alone(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{bad")
    with pytest.raises(ValueError):
        update_json(path, lambda cur: cur | {"a": 1})
    assert path.read_text() == "{bad"
