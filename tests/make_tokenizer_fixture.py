"""Write the tokenizer fixture: a corpus of texts and open_clip's token ids for them.

    python tests/make_tokenizer_fixture.py        # needs open_clip_torch (and torch)

writes ``tests/data/tokenizer/open_clip_tokens.json`` (the texts, open_clip's rows at
context length 77 without their zero padding, and the versions of open_clip, torch,
ftfy and regex that made them) and copies open_clip's ``bpe_simple_vocab_16e6.txt.gz``
beside it, so ``tests/test_tokenizer.py`` checks numclip against open_clip where
neither open_clip nor torch is installed.

The corpus is ``corpus()``: hand-written cases for each rule of the tokenizer (the
cleaning, the split pattern, BPE, truncation) and seeded random texts that mix them.
It uses only ``random.Random(seed)``, whose draws are the same on every Python 3, so
the test can check that the committed file still holds ``corpus()``.
"""

from __future__ import annotations

import gzip
import json
import random
import shutil
from pathlib import Path

FOLDER = Path(__file__).parent / "data" / "tokenizer"
FIXTURE = FOLDER / "open_clip_tokens.json"
MERGES = FOLDER / "bpe_simple_vocab_16e6.txt.gz"
CONTEXT_LENGTH = 77
SEED = 20240611

HAND_WRITTEN = [
    # empty and blank: only the start and end tokens
    "", " ", "   ", "\t\n", "\u3000\xa0\u2003", "\x85", "\u200b",
    # captions as CLIP sees them
    "a photo of a cat.", "A photo of a dog.", "a photo of a {}.", "A PHOTO OF TWO RED CIRCLES",
    "an image of a yellow cross on a black background",
    "a close-up photo of the large bird, sitting on a branch.",
    "itap of a cool bagel", "a bad photo of the hot dog", "a sketch of a leaf.",
    # whitespace runs and line breaks collapse to one space
    "a   photo\tof\n\na\r\ncat", "  leading and trailing  ", "tab\there", "no\u00a0break",
    # contractions: 's 't 're 've 'm 'll 'd are words of their own
    "it's", "don't", "they're", "we've", "i'm", "you'll", "he'd", "IT'S", "DON'T",
    "the cat's toy", "cats' toys", "rock 'n' roll", "'s", "'", "''", "o'clock",
    "it\u2019s a dog\u2019s life",  # curly apostrophes: ftfy straightens them
    "\u201cquoted\u201d and \u2018single\u2019",
    # numbers split into single digits
    "12345", "3.14159", "1,000,000", "2nd place", "the 1990s", "0", "007", "-42", "1e-5",
    "\u0663\u0664 (Arabic-Indic digits)", "\u00b2\u00b3 \u00bd \u2153", "\u2160\u2161\u216b",
    # punctuation runs stay together
    "hello, world!", "wait...", "what?!", "!!!", "?!?!", "--", "(a)", "[b]", "{c}", "#hashtag",
    "@user", "email@example.com", "http://example.com/a?b=c&d=e", "C++ and C#", "50% off",
    "$9.99", "\u00a3100", "\u20ac5", "a/b\\c", "~tilde~", "snake_case_name", "kebab-case",
    # accents, ligatures, other scripts
    "caf\u00e9", "na\u00efve", "r\u00e9sum\u00e9", "\u00fcber", "stra\u00dfe", "\u00e5ngstr\u00f6m",
    "ni\u00f1o", "\u0130stanbul", "\u01c5", "\ufb01ne \ufb02ow",
    "cafe\u0301 (combining accent)", "x\u0345y", "\u24d0\u24d1\u24d2", "\uff21\uff22\uff23",
    "\u732b\u304c\u597d\u304d", "\u65e5\u672c\u8a9e\u306e\u6587\u7ae0", "\u4e2d\u6587\u5b57",
    "\ud55c\uad6d\uc5b4", "\u0627\u0644\u0639\u0631\u0628\u064a\u0629",
    "\u05e2\u05d1\u05e8\u05d9\u05ea",
    "\u0939\u093f\u0928\u094d\u0926\u0940", "\u0e20\u0e32\u0e29\u0e32\u0e44\u0e17\u0e22",
    "\u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac",
    "\u0420\u0443\u0441\u0441\u043a\u0438\u0439",
    # emoji: several code points per grapheme, four UTF-8 bytes each
    "\U0001f600", "\U0001f44d\U0001f3fd", "\U0001f468\u200d\U0001f469\u200d\U0001f467",
    "\U0001f1eb\U0001f1f7", "I \u2764\ufe0f NY", "\U0001f431\U0001f436\U0001f426",
    # mojibake: UTF-8 read as Latin-1 or Windows-1252, which ftfy repairs
    "caf\u00c3\u00a9", "\u00c3\u00bcber", "it\u00e2\u20ac\u2122s",
    "\u00e2\u20ac\u0153hi\u00e2\u20ac\u009d",
    "na\u00c3\u00afve caf\u00c3\u00a9", "\u00c3\u00a6\u00c2\u00bd", "\u00f0\u0178\u02dc\u20ac",
    # HTML entities, unescaped twice
    "fish &amp; chips", "fish &amp;amp; chips", "&amp;amp;amp;", "&lt;b&gt;bold&lt;/b&gt;",
    "&quot;quoted&quot;", "&#39;s", "&eacute;t&eacute;", "&#x1F600;", "a&nbsp;b", "&notanentity;",
    "&lt;end_of_text&gt;", "&amp;lt;start_of_text&amp;gt;",
    # the special tokens spelled out are one token each
    "<start_of_text>", "<end_of_text>", "<END_OF_TEXT>", "a <end_of_text> b", "<end_of_text",
    # control characters and odd code points
    "a\x00b", "bell\x07", "\x1b[31mred\x1b[0m", "\ufeffbom", "\ufffd", "\ud800 lone surrogate",
    "\U0010ffff", "\u00ad soft hyphen", "zero\u200bwidth", "rtl\u202emark",
]


def _long_texts() -> list[str]:
    """Texts past 77 tokens: truncation keeps the first 76 tokens, then the end token."""
    return [" ".join(["word"] * 100), "a photo of " * 40, "1" * 200, "!" * 300,
            "\U0001f600" * 80, "\u732b" * 120, " ".join(str(i) for i in range(60)),
            "supercalifragilisticexpialidocious " * 12, "x" * 1000, "a b " * 38 + "c",
            "a " * 75, "a " * 76, "a " * 77]  # 75 words fit with the two specials; 76 do not


# What the random texts are made of: whole words, and characters from every class the
# split pattern and the cleaning treat differently.
_WORDS = ("a photo of the an image with two three red green blue yellow black white cat dog "
          "bird car tree house person people small large circle square triangle cross on in "
          "next to background sitting running flying bright dark").split()
_CHARACTERS = (
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    ".,;:!?'\"()[]{}<>/\\|-_+=*&^%$#@~`"
    " \t\n\r\xa0\u2003\u3000"
    "\u00e9\u00e8\u00ea\u00eb\u00e0\u00e4\u00f6\u00fc\u00df\u00f1\u00e7\u00f8\u00e5\u0153\u0130\u0131"
    "\u0301\u0308\u0345\u01c5\ufb01\u24d0\uff21\u2160\u00b2\u00bd\u0663"
    "\u732b\u72ac\u65e5\u672c\u4e2d\u6587\u3042\u30a2\ud55c\u0627\u05d0\u0939\u0e01\u03b1\u0436"
    "\U0001f600\U0001f44d\U0001f3fd\u200d\u2764\ufe0f\U0001f1eb\u20ac\u00a3\u2019\u201c\u201d"
    "\x00\x07\x1b\u200b\ufeff\ufffd\u00ad"
)
_ENTITIES = ("&amp;", "&amp;amp;", "&lt;", "&gt;", "&quot;", "&#39;", "&eacute;", "&nbsp;",
             "&#x263A;", "&#9731;", "&copy;")
_CONTRACTIONS = ("'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "\u2019s", "'S", "'RE")


def _mojibake(text: str, rng: random.Random) -> str:
    """``text`` as UTF-8 bytes misread as Latin-1 or Windows-1252 (what ftfy repairs)."""
    encoding = rng.choice(["latin-1", "cp1252"])
    return text.encode("utf-8").decode(encoding, errors="replace")


def _caption(rng: random.Random) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(1, 14))]
    text = " ".join(words)
    return text.capitalize() + rng.choice(["", ".", "!", " ...", "?"])


def _soup(rng: random.Random) -> str:
    """Random characters from every class, with words, entities and contractions mixed in."""
    pieces = []
    for _ in range(rng.randint(1, 30)):
        kind = rng.random()
        if kind < 0.6:
            pieces.append(rng.choice(_CHARACTERS))
        elif kind < 0.8:
            pieces.append(rng.choice(_WORDS) + rng.choice(" ,.-'"))
        elif kind < 0.9:
            pieces.append(rng.choice(_ENTITIES))
        else:
            pieces.append(rng.choice(_CONTRACTIONS))
    return "".join(pieces)


def _random_texts(rng: random.Random, count: int) -> list[str]:
    texts = []
    for _ in range(count):
        kind = rng.random()
        text = _caption(rng) if kind < 0.4 else _soup(rng)
        if rng.random() < 0.1:
            text = _mojibake(text, rng)
        if rng.random() < 0.05:
            text = " ".join([text] * rng.randint(5, 30))  # long: truncated at 77
        texts.append(text)
    return texts


def corpus(count: int = 2000) -> list[str]:
    """The hand-written cases, the long texts, then ``count`` seeded random texts."""
    return [*HAND_WRITTEN, *_long_texts(), *_random_texts(random.Random(SEED), count)]


def _unpadded(row) -> list[int]:
    """A row up to its end token (id 0 is "!" and may occur inside a text's tokens)."""
    row = [int(t) for t in row]
    return row[:len(row) - row[::-1].index(49407)]


def write_broken_merges() -> None:
    """Small merges files that tokenize must refuse, each for one reason."""
    lines = ["#version: 0.2", *(["a b"] * 48894)]
    broken = {
        "not_gzip.txt.gz": None,
        "truncated.txt.gz": gzip.compress("\n".join(lines).encode(), mtime=0)[:40],
        "latin1.txt.gz": gzip.compress("#version\n\xe9 t\n".encode("latin-1"), mtime=0),
        "short.txt.gz": gzip.compress(b"#version: 0.2\nh e\nt h\n", mtime=0),
        "bad_line.txt.gz": gzip.compress(
            "\n".join([*lines[:5], "a b c", *lines[6:]]).encode(), mtime=0),
    }
    for name, data in broken.items():
        path = FOLDER / "broken" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"#version: 0.2\nh e\n" if data is None else data)


def main() -> None:
    import ftfy
    import open_clip
    import regex
    import torch

    texts = corpus()
    rows = open_clip.tokenize(texts, context_length=CONTEXT_LENGTH).numpy()
    FOLDER.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(Path(open_clip.__file__).parent / MERGES.name, MERGES)
    fixture = {
        "made_by": "tests/make_tokenizer_fixture.py: open_clip.tokenize(texts, context_length)",
        "versions": {"open_clip": open_clip.__version__, "torch": torch.__version__,
                     "ftfy": ftfy.__version__, "regex": regex.__version__},
        "context_length": CONTEXT_LENGTH,
        "texts": texts,
        "tokens": [_unpadded(row) for row in rows],
    }
    # ensure_ascii keeps lone surrogates and control characters readable by any JSON tool
    FIXTURE.write_text(json.dumps(fixture, ensure_ascii=True, separators=(",", ":")) + "\n")
    write_broken_merges()
    print(f"wrote {len(texts)} texts to {FIXTURE} ({FIXTURE.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
