"""open_clip's byte-level BPE tokenizer (``open_clip.tokenize``), without torch.

CLIP (Radford et al., 2021) reads text as byte-pair-encoded tokens (Sennrich et al.,
2016, in GPT-2's byte-level form).  One text becomes one row of ``context_length``
token ids in four steps, the same as open_clip 3.3.0's ``SimpleTokenizer`` (copied from
openai/CLIP):

1. clean: ``ftfy.fix_text`` (repairs mojibake such as "cafÃ©"), HTML entities
   unescaped twice, whitespace runs collapsed to one space, lower-cased;
2. split into words with a ``regex`` pattern: contractions ('s 't 're 've 'm 'll 'd),
   runs of letters (``\\p{L}``), single digits (``\\p{N}``), runs of other symbols;
3. each word's UTF-8 bytes become printable stand-in characters, and BPE merges
   adjacent pairs in the order of CLIP's merge list (the end of a word is marked
   ``</w>``);
4. the symbols' ids go between <start_of_text> (49406) and <end_of_text> (49407); a
   row is padded with 0, or truncated keeping <end_of_text> as its last token.

The vocabulary is 49408 ids: the 256 byte symbols, their 256 ``</w>`` forms, the
first 48894 merges of ``bpe_simple_vocab_16e6.txt.gz`` and the two special tokens.
Nothing here downloads: the merges come from a path the user names or from an
installed ``open_clip`` package, whose wheel ships the file.
"""

from __future__ import annotations

import functools
import gzip
import html
import importlib
import importlib.util
import itertools
import math
import os
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

from numclip.backend import as_int
from numclip.text import as_texts

__all__ = ["tokenize", "MergesNotFoundError", "MERGES_FILE"]

MERGES_FILE = "bpe_simple_vocab_16e6.txt.gz"
# SimpleTokenizer keeps lines 1 .. 49152 - 256 - 2 of the file (line 0 is a header):
# 49152 ids minus 256 byte symbols minus 2 specials, plus the 256 "</w>" forms = 49408.
_N_MERGES = 49152 - 256 - 2
_SPECIALS = ("<start_of_text>", "<end_of_text>")
# openai/CLIP's pattern; the special tokens come first so a text that spells one out
# ("<end_of_text>") gets its id, as in open_clip.
_WORDS = "|".join(_SPECIALS) + r"""|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
_WHERE_TO_GET = (
    f"numclip never downloads it. Get {MERGES_FILE} (MIT license, about 1.3 MB) with "
    f"`pip download --no-deps open_clip_torch` (the wheel is a zip holding "
    f"open_clip/{MERGES_FILE}), or from OpenAI's CLIP repository "
    f"(https://github.com/openai/CLIP/raw/main/clip/{MERGES_FILE}), and pass "
    f"merges=<its path>; or `pip install open_clip_torch` to have it found")


class MergesNotFoundError(FileNotFoundError, ValueError):
    """No BPE merges file: the named path does not exist, or none was named and no
    installed open_clip package holds one.  A FileNotFoundError, and a ValueError like
    numclip's other refusals, so either ``except`` catches it."""


class _Encoder(NamedTuple):
    ids: dict  # symbol -> token id, the 49408 of them
    words: object  # the compiled `regex` pattern that splits a cleaned text into words
    bpe: object  # word (as byte symbols) -> tuple of symbols, cached


def tokenize(texts, context_length: int = 77, *, merges=None) -> np.ndarray:
    """Token ids of ``texts``, exactly as ``open_clip.tokenize(texts, context_length)``.

    Args:
        texts: one str, or a sequence (list, tuple, 1-d NumPy array) of N str.
        context_length: tokens per row, an int >= 2 (room for <start_of_text> and
            <end_of_text>); CLIP's text encoders take 77.
        merges: path (str or os.PathLike) of ``bpe_simple_vocab_16e6.txt.gz``; None
            looks for the copy inside an installed ``open_clip`` package (found
            without importing it, so torch is not loaded).

    Returns:
        int64 array (N, context_length) (N = 1 for a single str): 49406, the text's
            BPE ids, 49407, then zeros.  A text too long keeps its first
            ``context_length - 1`` tokens and ends with 49407.  A text that spells out
            "<end_of_text>" gets that id inside its row, as in open_clip.

    Where open_clip gives an answer that is no tokenization, numclip refuses: an empty
    list (open_clip: shape (0, L)), context_length 1 (open_clip: [[49407]]), and 0
    (open_clip silently takes 77).  Each merges file is read once per process (cached
    by its resolved path).

    Raises:
        TypeError: texts not a str or a sequence of str; context_length not an int;
            merges not a path or None.
        ValueError: texts empty; context_length < 2, or too large to allocate; the
            merges file is not CLIP's
            (not gzip, not UTF-8, fewer than 48894 merges, a line that is not a pair).
        MergesNotFoundError: (a FileNotFoundError and a ValueError) no merges file:
            the message says where to get one.
        ImportError: ``regex`` or ``ftfy`` missing: ``pip install "numclip[pretrained]"``.
    """
    texts = [texts] if isinstance(texts, str) else as_texts(texts, "texts")
    context_length = as_int(context_length, "context_length", low=2)
    try:
        rows = np.zeros((len(texts), context_length), dtype=np.int64)  # (N, L), 0 pads
    except (ValueError, MemoryError):  # NumPy's "maximum allowed dimension exceeded"
        raise ValueError(f"context_length = {context_length} asks for {len(texts)} rows of "
                         f"{context_length} int64 ids, more than this machine can allocate "
                         "(CLIP's is 77)") from None
    encoder = _load_encoder(_merges_path(merges))
    start, end = (encoder.ids[s] for s in _SPECIALS)
    for i, text in enumerate(texts):
        ids = [start, *_encode(encoder, text), end][:context_length]
        ids[-1] = end  # a truncated row still ends its text (the encoder pools there)
        rows[i, :len(ids)] = ids
    return rows


def _encode(encoder: _Encoder, text: str) -> list[int]:
    """The BPE ids of one text, without the start and end tokens."""
    ids = []
    for word in encoder.words.findall(_clean(text)):
        if word in _SPECIALS:  # open_clip's BPE cache starts with them: one id each
            ids.append(encoder.ids[word])
            continue
        symbols = "".join(_BYTE_SYMBOLS[b] for b in word.encode("utf-8"))
        ids.extend(encoder.ids[s] for s in encoder.bpe(symbols))
    return ids


def _clean(text: str) -> str:
    """openai/CLIP's cleaning: ftfy, HTML entities twice (captions scraped from pages
    are often escaped twice, "&amp;amp;"), whitespace runs to one space, lower case."""
    ftfy = _optional("ftfy")
    text = html.unescape(html.unescape(ftfy.fix_text(text)))
    return " ".join(text.split()).lower()


def _merge_word(ranks: dict, word: str) -> tuple[str, ...]:
    """BPE of one word (already in byte symbols): mark its end with ``</w>``, then merge
    the adjacent pair that comes first in CLIP's merge list, everywhere, until no
    adjacent pair is in the list."""
    parts = [*word[:-1], word[-1] + "</w>"]
    while len(parts) > 1:
        best = min(itertools.pairwise(parts), key=lambda pair: ranks.get(pair, math.inf))
        if best not in ranks:
            break
        parts = _merge_pair(parts, best)
    return tuple(parts)


def _merge_pair(parts: list[str], pair: tuple[str, str]) -> list[str]:
    """Join each occurrence of ``pair`` in ``parts``, scanning left to right, so in
    "a a a" the first two merge ("aa a"), as in openai/CLIP."""
    merged, i = [], 0
    while i < len(parts):
        if i + 1 < len(parts) and (parts[i], parts[i + 1]) == pair:
            merged.append(parts[i] + parts[i + 1])
            i += 2
        else:
            merged.append(parts[i])
            i += 1
    return merged


def _byte_symbols() -> dict[int, str]:
    """openai/CLIP's map from the 256 byte values to characters BPE can work on.

    Printable Latin-1 bytes stand for themselves; the other 68 (controls, space, NBSP,
    soft hyphen) borrow chr(256), chr(257), ... in byte order, so no symbol is
    whitespace and every byte string has a spelling.  The dict's order (printable
    bytes first) is the order of ids 0..255 in the vocabulary.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in printable}
    others = [b for b in range(256) if b not in table]
    table.update({b: chr(256 + k) for k, b in enumerate(others)})
    return table


_BYTE_SYMBOLS = _byte_symbols()


@functools.lru_cache(maxsize=8)
def _load_encoder(path: str) -> _Encoder:
    """The vocabulary, merge ranks and word pattern of one merges file (cached per
    resolved path: reading and ranking 48894 merges takes a good fraction of a second)."""
    merges = _read_merges(path)
    regex = _optional("regex")
    words = regex.compile(_WORDS, regex.IGNORECASE)
    _optional("ftfy")  # refuse here, not at the first text
    symbols = list(_BYTE_SYMBOLS.values())
    vocab = [*symbols, *(s + "</w>" for s in symbols), *("".join(m) for m in merges),
             *_SPECIALS]
    ranks = {merge: rank for rank, merge in enumerate(merges)}  # a repeat: the later wins
    # Words repeat (captions are short, "a", "photo", "of"): cache their BPE, bounded.
    bpe = functools.lru_cache(maxsize=2**16)(functools.partial(_merge_word, ranks))
    return _Encoder({symbol: i for i, symbol in enumerate(vocab)}, words, bpe)


def _read_merges(path: str) -> list[tuple[str, ...]]:
    """Merges 1..48894 of a gzip-compressed merges file, split as SimpleTokenizer does."""
    try:
        with gzip.open(path) as file:
            lines = file.read().decode("utf-8").split("\n")
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as err:  # BadGzipFile: OSError
        raise ValueError(f"merges file {path} cannot be read as gzip-compressed UTF-8 text "
                         f"({type(err).__name__}: {err}); expected CLIP's {MERGES_FILE}. "
                         f"{_WHERE_TO_GET}") from None
    merges = [tuple(line.split()) for line in lines[1:_N_MERGES + 1]]
    bad = next((i for i, m in enumerate(merges) if len(m) != 2), None)
    if len(merges) < _N_MERGES or bad is not None:
        what = (f"it has only {len(merges)} lines after its header" if len(merges) < _N_MERGES
                else f"line {bad + 1} is {lines[bad + 1][:40]!r}, not a pair of symbols")
        raise ValueError(f"merges file {path} is not CLIP's {MERGES_FILE}: {what} "
                         f"(expected {_N_MERGES} merges after a header line). {_WHERE_TO_GET}")
    return merges


def _merges_path(merges) -> str:
    """The resolved path of the merges file to use (``merges``, or open_clip's copy)."""
    if merges is None:
        found = _installed_merges()
        if found is None:
            raise MergesNotFoundError(f"merges=None and no installed open_clip package holds "
                                      f"{MERGES_FILE}. {_WHERE_TO_GET}")
        return found
    if not isinstance(merges, str | os.PathLike) or not isinstance(os.fspath(merges), str):
        raise TypeError(f"merges must be None or a path (str or os.PathLike) to {MERGES_FILE}, "
                        f"got {type(merges).__name__}")
    path = Path(merges)
    if not path.is_file():
        raise MergesNotFoundError(f"merges file {str(path)!r} does not exist or is not a file. "
                                  f"{_WHERE_TO_GET}")
    return str(path.resolve())


def _installed_merges() -> str | None:
    """open_clip's own copy of the merges, found by its import spec: finding a spec
    does not run ``open_clip/__init__.py``, which would import torch (seconds)."""
    try:
        spec = importlib.util.find_spec("open_clip")
    except (ImportError, ValueError):  # ValueError: a module object without a __spec__
        return None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder) / MERGES_FILE
        if candidate.is_file():
            return str(candidate.resolve())
    return None


def _optional(name: str):
    """Import ``regex`` or ``ftfy``, the [pretrained] extra, at the first call: ``import
    numclip.pretrained`` stays fast and works without them."""
    try:
        return importlib.import_module(name)
    except ImportError as err:
        raise ImportError(f"numclip.pretrained.tokenize needs the {name!r} package: "
                          f'pip install "numclip[pretrained]" (or pip install {name})') from err
