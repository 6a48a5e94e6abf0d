"""Name normalisation and character n-gram similarity for entity linking.

``normalize`` maps surface variants of one name to one key: Unicode compatibility forms, Greek
letters spelled out, case, possessives, hyphens and punctuation, and plural word endings. The
plural rule is a deliberately crude suffix strip applied to *both* the entity names and the
mentions, so it only has to be consistent, not linguistically right ("diabetes" -> "diabete" on
both sides is harmless); all-capital tokens are acronyms and keep their S ("AIDS" is not "aid"). ``name_keys`` adds a second, looser key without a trailing generic head
noun ("Tay-Sachs disease" ~ "Tay Sachs"). ``ngram_similarity`` is the Dice coefficient over
padded character n-grams of the normalised strings (0..1), robust to misspellings.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

GREEK = {
    "α": "alpha", "β": "beta", "γ": "gamma", "δ": "delta", "ε": "epsilon", "ζ": "zeta", "η": "eta",
    "θ": "theta", "ι": "iota", "κ": "kappa", "λ": "lambda", "μ": "mu", "ν": "nu", "ξ": "xi",
    "ο": "omicron", "π": "pi", "ρ": "rho", "σ": "sigma", "ς": "sigma", "τ": "tau", "υ": "upsilon",
    "φ": "phi", "χ": "chi", "ψ": "psi", "ω": "omega",
}

# Trailing head nouns that many names carry or drop without changing the concept.
GENERIC_SUFFIXES = ("disease", "syndrome", "disorder")

# Endings whose final "s" is usually not a plural ("sepsis", "virus", "pancreas").
_KEEP_S = ("ss", "us", "is", "ys", "os", "as")

_POSSESSIVE = re.compile(r"(\w)(?:'s|’s|s'|s’)(?=\W|$)")
_NON_ALNUM = re.compile(r"[^0-9A-Za-z]+")


def _singular(token: str) -> str:
    """Strip a plural ending from one lower-case token (ies -> y, sses -> ss, s -> '')."""
    if len(token) <= 3 or token.isdigit():
        return token
    if token.endswith("ies") and len(token) > 4:
        return token[:-3] + "y"
    if token.endswith("sses"):
        return token[:-2]
    if token.endswith("s") and not token.endswith(_KEEP_S):
        return token[:-1]
    return token


@lru_cache(maxsize=200_000)
def normalize(text: str) -> str:
    """Return the normalised key of a name: lower-case alphanumeric tokens joined by single spaces."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(f" {GREEK[ch.lower()]} " if ch.lower() in GREEK else ch for ch in text)
    # Possessives before lower-casing and punctuation removal: "Crohn's" -> "Crohn", "Parkinsons'" -> "Parkinson".
    text = _POSSESSIVE.sub(r"\1", text)
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))  # é -> e
    tokens = _NON_ALNUM.sub(" ", text).split()
    # All-capital tokens are acronyms ("AIDS", "CMS"): their final S is not a plural ending.
    return " ".join(t.lower() if t.isupper() else _singular(t.lower()) for t in tokens)


def strip_generic_suffix(key: str) -> str:
    """Drop one trailing generic head noun from a normalised key; '' when nothing would remain."""
    for suffix in GENERIC_SUFFIXES:
        if key.endswith(" " + suffix):
            return key[: -len(suffix) - 1]
    return ""


def name_keys(text: str) -> tuple[str, ...]:
    """The normalised key, then (when different and non-empty) the key without a generic suffix."""
    key = normalize(text)
    if not key:
        return ()
    core = strip_generic_suffix(key)
    return (key, core) if core else (key,)


@lru_cache(maxsize=200_000)
def char_ngrams(text: str, n: tuple[int, ...] = (3,)) -> frozenset[str]:
    """Set of character n-grams of the normalised text, padded with '#' so word edges count."""
    key = normalize(text)
    if not key:
        return frozenset()
    padded = f"#{key}#"
    grams: set[str] = set()
    for size in n:
        if len(padded) < size:
            grams.add(padded)
            continue
        grams.update(padded[i : i + size] for i in range(len(padded) - size + 1))
    return frozenset(grams)


def ngram_similarity(a: str, b: str, n: tuple[int, ...] = (3,)) -> float:
    """Dice coefficient of the character n-gram sets of two strings, in 0..1 (1 = same key)."""
    ga, gb = char_ngrams(a, n), char_ngrams(b, n)
    if not ga or not gb:
        return 0.0
    return 2.0 * len(ga & gb) / (len(ga) + len(gb))


def best_ngram_similarity(mention: str, names: Iterable[str], n: tuple[int, ...] = (3,)) -> tuple[float, str]:
    """Highest n-gram similarity of a mention to any of the names, with the name that reached it."""
    best, best_name = 0.0, ""
    for name in names:
        sim = ngram_similarity(mention, name, n)
        if sim > best:
            best, best_name = sim, name
    return best, best_name


def normalize_xref(raw: str) -> str:
    """Concept ids as the KG stores them: 'D012345' / 'MESH:D012345' -> 'MESH:D012345'; 'OMIM:123' / 'MIM:123' -> 'OMIM:123'."""
    raw = raw.strip()
    if raw.upper().startswith(("OMIM:", "MIM:")):
        return "OMIM:" + raw.split(":", 1)[1].strip()
    if raw.upper().startswith("MESH:"):
        raw = raw.split(":", 1)[1].strip()
    return "MESH:" + raw if re.fullmatch(r"[CD]\d+", raw) else raw
