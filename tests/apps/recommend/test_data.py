from __future__ import annotations

import pandas as pd
import pytest

from kgfusion.apps.recommend.data import (
    read_movies,
    read_ratings,
    split_by_time,
    split_stats,
    target_size,
    to_sets,
)
from kgfusion.core.errors import DataError


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_read_ratings_rejects_bad_rows_with_reasons(tmp_path):
    path = _write(tmp_path, "ratings.csv", (
        "userId,movieId,rating,timestamp\n"
        "1,10,4.0,100\n"      # row 1 ok
        "x,11,4.0,100\n"      # row 2 bad user
        "1,abc,4.0,100\n"     # row 3 bad item
        "1,12,6.0,100\n"      # row 4 rating too high
        "1,13,0.0,100\n"      # row 5 rating too low
        "1,14,3.5,yesterday\n"  # row 6 bad timestamp
        "2,10,5.0,200\n"      # row 7 ok
    ))
    frame, rejects = read_ratings(path)
    assert list(frame.columns) == ["userId", "movieId", "rating", "timestamp"]
    assert frame[["userId", "movieId"]].values.tolist() == [[1, 10], [2, 10]]
    by_row = {r.row: r.reason for r in rejects}
    assert set(by_row) == {2, 3, 4, 5, 6}
    assert "userId" in by_row[2] and "movieId" in by_row[3]
    assert "outside" in by_row[4] and "outside" in by_row[5]
    assert "timestamp" in by_row[6]
    assert all(r.source == str(path) for r in rejects)


def test_read_ratings_keeps_latest_duplicate_and_reports_it(tmp_path):
    path = _write(tmp_path, "ratings.csv",
                  "userId,movieId,rating,timestamp\n1,10,2.0,300\n1,10,5.0,100\n1,11,3.0,50\n")
    frame, rejects = read_ratings(path)
    assert len(frame) == 2
    assert frame.loc[frame.movieId == 10, "rating"].item() == 2.0  # timestamp 300 is the latest
    assert [(r.row, "duplicate" in r.reason) for r in rejects] == [(2, True)]


def test_read_ratings_missing_column_names_file_columns_and_fix(tmp_path):
    path = _write(tmp_path, "ratings.csv", "user,movieId,rating,timestamp\n1,2,3.0,4\n")
    with pytest.raises(DataError) as err:
        read_ratings(path)
    msg = str(err.value)
    assert str(path) in msg and "userId" in msg and "'user'" in msg and "header row must be" in msg


def test_read_ratings_all_rows_bad_is_an_error(tmp_path):
    path = _write(tmp_path, "ratings.csv", "userId,movieId,rating,timestamp\n1,2,9,4\n")
    with pytest.raises(DataError, match="no usable ratings"):
        read_ratings(path)


def test_read_movies_genres_and_year(tmp_path):
    path = _write(tmp_path, "movies.csv", (
        "movieId,title,genres\n"
        '1,"Toy Story (1995)",Adventure|Animation\n'
        '2,"Misérables, Les (1995) ",Drama\n'
        "3,Babylon 5,(no genres listed)\n"
    ))
    movies = read_movies(path)
    assert movies["genres"].tolist() == [["Adventure", "Animation"], ["Drama"], []]
    assert movies["year"].tolist() == [1995, 1995, None]
    assert movies["title"][1] == "Misérables, Les (1995)"


def test_read_movies_missing_column(tmp_path):
    path = _write(tmp_path, "movies.csv", "movieId,title\n1,A\n")
    with pytest.raises(DataError, match="genres"):
        read_movies(path)


def _frame(rows):
    return pd.DataFrame(rows, columns=["userId", "movieId", "rating", "timestamp"])


def test_target_size_limits():
    assert target_size(1, 0.2) == 0
    assert target_size(2, 0.2) == 1
    assert target_size(10, 0.2) == 2
    assert target_size(13, 0.2) == 3  # 2.6 rounds to 3
    assert target_size(3, 0.9) == 2   # never the whole history


def test_split_is_last_fraction_by_time_disjoint_and_deterministic():
    # user 1: 10 ratings, timestamps out of file order; items 108 and 109 share the last timestamp.
    rows = [(1, 100 + i, 4.0, t) for i, t in enumerate([5, 3, 9, 1, 2, 4, 6, 7, 10, 10])]
    rows += [(2, 200, 3.0, 1)]  # single rating: history only
    rows += [(3, 300, 3.0, 2), (3, 301, 3.0, 1)]
    ratings = _frame(rows)
    history, target = split_by_time(ratings, frac=0.2)
    assert to_sets(target) == {1: {108, 109}, 3: {300}}
    hist_sets = to_sets(history)
    assert hist_sets[2] == {200}
    for user, items in to_sets(target).items():
        assert not items & hist_sets[user]
        assert history.loc[history.userId == user, "timestamp"].max() <= \
            target.loc[target.userId == user, "timestamp"].min()
    assert len(history) + len(target) == len(ratings)
    stats = split_stats(history, target)
    assert (stats.users, stats.target_users, stats.single_rating_users) == (3, 2, 1)
    # Same result whatever the input row order.
    h2, t2 = split_by_time(ratings.sample(frac=1.0, random_state=3), frac=0.2)
    pd.testing.assert_frame_equal(history, h2)
    pd.testing.assert_frame_equal(target, t2)


def test_split_tie_broken_by_movie_id():
    ratings = _frame([(1, 20, 4.0, 5), (1, 10, 4.0, 5), (1, 30, 4.0, 5), (1, 40, 4.0, 5), (1, 5, 4.0, 5)])
    _, target = split_by_time(ratings, frac=0.2)
    assert target["movieId"].tolist() == [40]


def test_split_rejects_bad_fraction():
    with pytest.raises(ValueError, match="frac"):
        split_by_time(_frame([(1, 1, 4.0, 1)]), frac=1.0)


def test_binary_non_utf8_empty_and_garbage_files_are_explained(tmp_path):
    """Issue 11: say what a bad MovieLens file is (and where), never echo it."""
    parquet = tmp_path / "ratings.csv"
    parquet.write_bytes(b"PAR1\x15\x04\x15\x10\x00\x00" + bytes(range(256)))
    with pytest.raises(DataError, match=r"ratings\.csv is binary, not text \(it looks like a Parquet file\)"):
        read_ratings(parquet)
    latin = tmp_path / "movies.csv"
    latin.write_bytes("movieId,title,genres\n1,Am\xe9lie (2001),Comedy\n".encode("latin-1"))
    with pytest.raises(DataError) as err:
        read_movies(latin)
    assert str(err.value) == f"{latin} is not UTF-8 text (invalid byte at offset 25, line 2); convert it to UTF-8"
    assert read_movies(latin, encoding="latin-1")["title"].tolist() == ["Am\xe9lie (2001)"]
    with pytest.raises(DataError, match=r"the file is empty; the header row must be userId,movieId,rating,timestamp"):
        read_ratings(_write(tmp_path, "empty.csv", ""))
    with pytest.raises(DataError, match=r"no movies \(the file has a header but no rows\)"):
        read_movies(_write(tmp_path, "header.csv", "movieId,title,genres\n"))
    with pytest.raises(DataError) as err:
        read_movies(_write(tmp_path, "wide.csv", "movieId,title,genres\n" + "9" * 10_000 + "x,T,Drama\n"))
    assert "data row 1: movieId '99999" in str(err.value) and len(str(err.value)) < 300
    with pytest.raises(DataError) as err:
        read_ratings(_write(tmp_path, "one_line.csv", "u" * 100_000))
    assert "missing column(s)" in str(err.value) and len(str(err.value)) < 400
