"""A word tokenizer, a vocabulary and bag-of-words features: the text encoder's input.

CLIP's text encoder is a transformer over byte-pair tokens; numclip's is one
linear map over a bag of words, which is enough for captions like
``"a photo of two red circles"``.  The vocabulary is built from the training
captions only.  A word it has never seen cannot have a learned embedding, so
it maps to the unknown token ``<unk>`` (index 0, its own feature column) and
is *reported*, by :meth:`Vocabulary.unknown_words` and by a warning from
:meth:`Vocabulary.features`: a zero-shot prompt with a typo should not be
quietly scored as if the word were not there.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from numclip.backend import as_bool

__all__ = ["UNK", "tokenize", "Vocabulary", "as_texts"]

UNK = "<unk>"
_WORD = re.compile(r"[^\W_]+")  # runs of letters and digits, in any script; the rest separates
_ARRAY_KEY = "vocab_words"  # the key to_arrays() uses, so a checkpoint can hold other arrays too


def tokenize(text: str) -> list[str]:
    """Lower-case ``text`` and split it into words; punctuation and spaces only separate.

    ``tokenize("There are TWO red circles.")`` gives
    ``["there", "are", "two", "red", "circles"]``.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return _WORD.findall(text.lower())


@dataclass(frozen=True)
class Vocabulary:
    """The words a text encoder knows; ``words[i]`` owns feature column ``i``.

    ``words[0]`` is always :data:`UNK`, the column every unknown word lands in;
    every other word is a token (``tokenize(w) == [w]``: lower-case letters and
    digits), because a word ``tokenize`` can never produce would own a column
    nothing ever lands in.  Build one from training captions with
    :meth:`Vocabulary.build`; a tuple, a list or a 1-d unicode array of words
    is accepted, and anything else raises a ``TypeError`` or ``ValueError``.
    """

    words: tuple[str, ...]  # (V,) words[0] == UNK, then the known words, sorted
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        words = self.words
        if isinstance(words, np.ndarray) and words.ndim == 1:
            words = words.tolist()  # e.g. a checkpoint's unicode array
        if not isinstance(words, tuple | list):
            raise TypeError(f"words must be a tuple of str, got {type(words).__name__}")
        bad = next((i for i, w in enumerate(words) if not isinstance(w, str)), None)
        if bad is not None:
            raise TypeError(f"words[{bad}] must be a str, got {type(words[bad]).__name__}")
        words = tuple(str(w) for w in words)  # np.str_ -> str
        object.__setattr__(self, "words", words)  # frozen: a list would be mutable behind us
        if not words or words[0] != UNK:
            raise ValueError(f"words[0] must be {UNK!r}, got {words[:1]}")
        if len(set(words)) != len(words):
            dupes = sorted(w for w, k in Counter(words).items() if k > 1)
            raise ValueError(f"words must not repeat, got duplicates {dupes}")
        # a word tokenize() can never produce ("Red", "two words", "") would own a dead column
        bad = next((i for i, w in enumerate(words[1:], 1) if tokenize(w) != [w]), None)
        if bad is not None:
            raise ValueError(f"words[{bad}] = {words[bad]!r} is not a token: every word after "
                             f"{UNK!r} must be what tokenize() makes of it, got "
                             f"{tokenize(words[bad])}")
        object.__setattr__(self, "_index", {w: i for i, w in enumerate(words)})

    @classmethod
    def build(cls, captions: Sequence[str]) -> Vocabulary:
        """Collect every word of ``captions`` (the training captions), sorted after ``<unk>``.

        Sorting makes the vocabulary, and so the meaning of each feature
        column, independent of the order of the captions.

        Args:
            captions: ``(n,)`` sequence of str, non-empty.
        """
        captions = as_texts(captions, "captions", ordered=False)  # the words come out sorted
        seen = {word for text in captions for word in tokenize(text)}  # never "<unk>": no "<"
        if not seen:
            raise ValueError("captions must contain at least one word, got only punctuation")
        return cls((UNK, *sorted(seen)))

    def __len__(self) -> int:
        return len(self.words)

    def index(self, word: str) -> int:
        """Return the feature column of ``word``; 0 (``<unk>``) if it is not in the vocabulary."""
        if not isinstance(word, str):
            raise TypeError(f"word must be a str, got {type(word).__name__}")
        return self._index.get(word, 0)

    def encode(self, text: str) -> list[int]:
        """Return the feature column of each word of ``text``, in order (0 for unknown words)."""
        return [self._index.get(word, 0) for word in tokenize(text)]

    def word_ids(self, texts: Sequence[str], *, warn: bool = True) -> list[list[int]]:
        """Every text's :meth:`encode`, checked: each text has a word, unknown words warn.

        What :meth:`features` counts and a transformer's token ids are made of.

        Args:
            texts: ``(n,)`` sequence of str, each with at least one word.
            warn: warn about unknown words; pass ``False`` once they are expected.
        """
        texts = as_texts(texts, "texts")
        warn = as_bool(warn, "warn")
        ids = [self.encode(text) for text in texts]
        empty = [i for i, row in enumerate(ids) if not row]
        if empty:
            raise ValueError(f"texts[{empty[0]}] = {texts[empty[0]]!r} has no words; "
                             "a bag of no words has no direction")
        if warn:
            self._warn_unknown(texts)
        return ids

    def features(self, texts: Sequence[str], *, warn: bool = True) -> np.ndarray:
        r"""Bag-of-words features: how often each word occurs, divided by the caption's length.

        .. math:: X_{ij} = \frac{\#\{\text{words of text } i \text{ with column } j\}}
                                {\#\{\text{words of text } i\}}

        so every row sums to 1 and a long caption weighs no more than a short
        one.  Unknown words count in column 0 (``<unk>``) and, with ``warn``,
        raise a ``UserWarning`` that lists them (see :meth:`unknown_words`).

        Args:
            texts: ``(n,)`` sequence of str, each with at least one word.
            warn: warn about unknown words; pass ``False`` once they are expected.

        Returns:
            ``(n, V)`` float32 array, ``V = len(self)``.
        """
        ids = self.word_ids(texts, warn=warn)
        rows = np.repeat(np.arange(len(ids)), [len(row) for row in ids])  # (total words,)
        cols = np.concatenate([np.asarray(row, dtype=np.int64) for row in ids])  # (total words,)
        counts = np.zeros((len(ids), len(self)), dtype=np.float32)  # (n, V)
        np.add.at(counts, (rows, cols), 1.0)  # add.at, not +=: a word may repeat in a caption
        return counts / counts.sum(axis=1, keepdims=True)

    def unknown_words(self, texts: Sequence[str]) -> dict[str, int]:
        """Words of ``texts`` that map to ``<unk>``, with their counts, most frequent first.

        Args:
            texts: ``(n,)`` sequence of str.
        """
        texts = as_texts(texts, "texts", ordered=False)  # counts, sorted by count and word
        unknown = Counter(w for text in texts for w in tokenize(text) if w not in self._index)
        return dict(sorted(unknown.items(), key=lambda item: (-item[1], item[0])))

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Return ``{"vocab_words": (V,) numpy unicode array}``, storable in an ``.npz``.

        A unicode array (dtype ``<U...``) needs no pickling, so the checkpoint
        loads with ``np.load(path, allow_pickle=False)``.
        """
        return {_ARRAY_KEY: np.array(self.words, dtype=str)}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> Vocabulary:
        """Rebuild a vocabulary from :meth:`to_arrays` output or a loaded ``.npz`` holding it.

        Args:
            arrays: mapping with key ``"vocab_words"``, a ``(V,)`` unicode array.
        """
        if not isinstance(arrays, Mapping):  # a dict or an open .npz (NpzFile is a Mapping)
            raise TypeError("arrays must be a mapping such as a dict or a loaded .npz, "
                            f"got {type(arrays).__name__}")
        if _ARRAY_KEY not in arrays:
            raise ValueError(f"arrays must hold {_ARRAY_KEY!r} (from Vocabulary.to_arrays()), "
                             f"got keys {sorted(map(str, arrays))}")
        words = np.asarray(arrays[_ARRAY_KEY])
        if words.dtype.kind != "U":
            raise TypeError(f"arrays[{_ARRAY_KEY!r}] must be a 1-d unicode array, "
                            f"got dtype {words.dtype}")
        if words.ndim != 1:
            raise ValueError(f"arrays[{_ARRAY_KEY!r}] must be a 1-d unicode array, "
                             f"got shape {words.shape}")
        return cls(tuple(str(w) for w in words))

    def _warn_unknown(self, texts: Sequence[str]) -> None:
        """Warn, once per call, about the words of ``texts`` that fall into ``<unk>``."""
        unknown = self.unknown_words(texts)
        if unknown:
            listed = ", ".join(f"{w!r} ×{k}" for w, k in unknown.items())
            warnings.warn(f"{len(unknown)} word(s) not in the vocabulary map to {UNK!r}: "
                          f"{listed}", UserWarning, stacklevel=3)


def as_texts(texts, name: str, *, ordered: bool = True) -> list[str]:
    """Return ``texts`` as a non-empty list of str, or raise an error that names ``name``.

    A lone str (or bytes) is refused rather than split into its letters; a 1-d
    NumPy array of strings and any other ordered iterable of str are accepted.  A set
    or a dict is refused unless ``ordered=False`` (for a result that does not depend on
    the order): row ``i`` of what is computed from the texts belongs to text ``i``, and
    a set has no order to keep.

    Raises:
        TypeError: not an ordered iterable of str (the message names the first bad
            element).
        ValueError: empty.
    """
    if not isinstance(name, str):
        raise TypeError(f"name (of the argument, for messages) must be a str, "
                        f"got {type(name).__name__}")
    ordered = as_bool(ordered, "ordered")  # ordered="no" is truthy: it would mean yes
    if isinstance(texts, str | bytes):
        raise TypeError(f"{name} must be a list of str, got a single {type(texts).__name__}; "
                        f"wrap it: [{name}]")
    if ordered and isinstance(texts, set | frozenset | Mapping):  # the order is not the caller's
        raise TypeError(f"{name} must be an ordered sequence of str (a list, a tuple), got a "
                        f"{type(texts).__name__}: its order would decide which row is which")
    if isinstance(texts, np.ndarray):
        texts = texts.tolist()  # np.str_ is a str, but a 2-d array would hide in here
    try:
        texts = list(texts)
    except TypeError:
        raise TypeError(f"{name} must be a list of str, got {type(texts).__name__}") from None
    if not texts:
        raise ValueError(f"{name} must not be empty")
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise TypeError(f"{name}[{bad}] must be a str, got {type(texts[bad]).__name__}")
    return texts
