"""Dictionary (gazetteer) features for token models: knowledge fused *into* the network.

A :class:`TokenGazetteer` holds names by type (e.g. Disease Ontology names as ``Disease``, drug names
as ``Chemical``; the apps build it from their knowledge graph). For a sentence it marks every word
inside a longest dictionary match with a feature id — ``B-<type>``/``I-<type>`` — that the model
embeds and adds to its input embeddings (``FeatureFusedTokenModel`` in core/tokenmodel.py), so the
network learns when to trust the dictionary. The gazetteer travels inside the bundle
(``gazetteer.tsv.gz``), so inference needs no graph.

Matching: names are split into words the way BERT's basic tokenizer splits text (runs of letters and
digits; every punctuation mark a word of its own), so "non-Hodgkin lymphoma" is four words, as in the
CoNLL files and in the Predictor's own word split; words compare lower-cased without accents; longest
match first (then earliest), names of 1..``max_words`` words; a regular plural of the last word
("-s"/"-es") matches too.
"""
from __future__ import annotations

import gzip
import io
import re
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path

from kgfusion.core.errors import DataError

GAZETTEER_FILE = "gazetteer.tsv.gz"
_WORD = re.compile(r"[^\W_]+|[^\w\s]|_")


def normalize_word(word: str) -> str:
    """Lower-case without accents (as an uncased BERT normalises)."""
    word = unicodedata.normalize("NFKD", word.lower())
    return "".join(c for c in word if not unicodedata.combining(c))


def split_words(text: str) -> list[str]:
    """Words as BERT's basic tokenizer makes them: alphanumeric runs and single punctuation marks."""
    return _WORD.findall(normalize_word(text))


def _plural_stems(word: str) -> list[str]:
    out = []
    if len(word) > 4 and word.endswith("es"):
        out.append(word[:-2])
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        out.append(word[:-1])
    return out


class TokenGazetteer:
    """Typed multi-word names -> per-word feature ids (0 = no match, 1 + 2k = B-type_k, 2 + 2k = I-type_k)."""

    def __init__(self, entries: Iterable[tuple[str, str]], types: Sequence[str] | None = None,
                 max_words: int = 8, min_chars: int = 3) -> None:
        self.max_words = max_words
        table: dict[tuple[str, ...], str] = {}
        seen_types: list[str] = list(types or [])
        for name, etype in entries:
            words = tuple(split_words(name))
            if not words or len(words) > max_words or len("".join(words)) < min_chars:
                continue
            if etype not in seen_types:
                if types is not None:
                    continue  # a type the model was not built for
                seen_types.append(etype)
            table.setdefault(words, etype)  # first type listed wins on a name of several types
        self.types = seen_types
        self.table = table

    def extended(self, entries: Iterable[tuple[str, str]]) -> TokenGazetteer:
        """A new gazetteer with these names added (same types; names of other types are skipped)."""
        own = [(" ".join(words), etype) for words, etype in self.table.items()]
        return TokenGazetteer([*own, *entries], types=self.types, max_words=self.max_words, min_chars=0)

    @property
    def n_features(self) -> int:
        return 1 + 2 * len(self.types)

    def feature_names(self) -> list[str]:
        return ["O"] + [f"{p}-{t}" for t in self.types for p in ("B", "I")]

    def __len__(self) -> int:
        return len(self.table)

    def _lookup(self, words: tuple[str, ...]) -> str | None:
        hit = self.table.get(words)
        if hit is None:
            for stem in _plural_stems(words[-1]):
                hit = self.table.get(words[:-1] + (stem,))
                if hit is not None:
                    break
        return hit

    def word_features(self, words: Sequence[str]) -> list[int]:
        """Feature id per word (longest match first, then earliest)."""
        low = [normalize_word(w) for w in words]
        feats = [0] * len(low)
        i = 0
        while i < len(low):
            found = None
            for n in range(min(self.max_words, len(low) - i), 0, -1):
                etype = self._lookup(tuple(low[i : i + n]))
                if etype is not None:
                    found = (n, etype)
                    break
            if found is None:
                i += 1
                continue
            n, etype = found
            k = self.types.index(etype)
            feats[i] = 1 + 2 * k
            for j in range(i + 1, i + n):
                feats[j] = 2 + 2 * k
            i += n
        return feats

    # -- persistence (inside bundles) -----------------------------------------------------
    def to_bytes(self) -> bytes:
        buf = io.StringIO()
        buf.write("#types\t" + "\t".join(self.types) + f"\n#max_words\t{self.max_words}\n")
        for words, etype in sorted(self.table.items()):
            buf.write(" ".join(words) + "\t" + etype + "\n")
        return gzip.compress(buf.getvalue().encode("utf-8"), mtime=0)

    def save(self, path: str | Path) -> Path:
        from kgfusion.core.fileio import atomic_write_bytes

        path = Path(path)
        atomic_write_bytes(path, self.to_bytes())
        return path

    @classmethod
    def load(cls, path: str | Path) -> TokenGazetteer:
        path = Path(path)
        try:
            text = gzip.decompress(path.read_bytes()).decode("utf-8")
        except (OSError, EOFError, UnicodeDecodeError) as exc:
            raise DataError(f"{path}: unreadable gazetteer ({exc}); rebuild the bundle") from exc
        types: list[str] = []
        max_words = 8
        entries = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.startswith("#types\t"):
                types = line.split("\t")[1:]
            elif line.startswith("#max_words\t"):
                max_words = int(line.split("\t")[1])
            elif line:
                name, sep, etype = line.rpartition("\t")
                if not sep:
                    raise DataError(f"{path}: line {n} is not 'name<TAB>type'; rebuild the bundle")
                entries.append((name, etype))
        return cls(entries, types=types, max_words=max_words, min_chars=0)


def subtoken_features(word_feats: Sequence[int], word_ids: Sequence[int | None]) -> list[int]:
    """Spread word features over sub-tokens: every sub-token of a word carries the word's feature;
    special tokens get 0."""
    return [0 if w is None else word_feats[w] for w in word_ids]
