"""The docs quote the code; these checks keep the quotes true."""

import importlib
import inspect
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CODE_NAME = re.compile(r"`(numclip(?:\.\w+)+)`")


def code_blocks(markdown):
    return re.findall(r"```python\n(.*?)```", markdown, flags=re.DOTALL)


def labelled_blocks(markdown):
    """``(label, block)`` for every python block: the label is the last ``numclip.*`` name
    in inline code since the block before (``**Code** (`numclip.losses.cross_entropy`)``);
    a block with no name of its own continues the one before it."""
    out, label, start = [], None, 0
    for match in re.finditer(r"```python\n(.*?)```", markdown, flags=re.DOTALL):
        names = CODE_NAME.findall(markdown[start:match.start()])
        label = names[-1] if names else label
        out.append((label, match.group(1)))
        start = match.end()
    return out


def resolve(name):
    """The object a dotted name names: the longest importable module, then attributes."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise LookupError(name)


@pytest.mark.parametrize("page", ["derivations.md", "siglip.md"])  # distributed.md: its own test
def test_every_line_quoted_in_the_docs_is_in_the_function_it_is_labelled_with(page):
    """A quote is only true where the docs say it comes from: the lines of a block must be
    in the source of the function (or module) the text names just before it."""
    blocks = labelled_blocks((ROOT / "docs" / page).read_text(encoding="utf-8"))
    assert blocks, f"docs/{page} quotes no code"
    wrong = {}
    for label, block in blocks:
        assert label is not None, f"docs/{page}: a code block names no numclip function"
        source = {line.strip() for line in inspect.getsource(resolve(label)).splitlines()}
        missing = [line for line in block.splitlines() if line.strip()
                   and line.strip() not in source]
        if missing:
            wrong.setdefault(label, []).extend(missing)
    assert not wrong, f"docs/{page} quotes lines that are not in the function named: {wrong}"


def test_a_wrong_label_is_caught():
    """clip_loss's lines quoted under clip_loss_reference's name would pass a check that
    looks for them anywhere in numclip/; this one does not let them."""
    markdown = ("**Code** (`numclip.losses.clip_loss`):\n\n```python\n"
                "dlogits = (dlogits_per_image + dlogits_per_text.T) / 2  # (N, N) both "
                "directions meet\n```\n")
    ((label, block),) = labelled_blocks(markdown)
    source = {line.strip() for line in inspect.getsource(resolve(label)).splitlines()}
    assert block.strip() not in source
    assert block.strip() in {line.strip() for line in inspect.getsource(
        resolve("numclip.losses.clip_loss_reference")).splitlines()}


@pytest.mark.parametrize("anchor", ["l2-normalization", "the-logit-matrix",
                                    "softmax-and-log-softmax", "cross-entropy",
                                    "the-symmetric-clip-loss"])
def test_anchors_the_docstrings_link_to_exist(anchor):
    headings = re.findall(r"^## (.+)$", (ROOT / "docs" / "derivations.md").read_text(
        encoding="utf-8"), flags=re.MULTILINE)
    slugs = {re.sub(r"[^a-z0-9]+", "-", h.lower()).strip("-") for h in headings}
    assert anchor in slugs
    assert any(f"derivations.md#{anchor}" in (ROOT / "numclip" / f).read_text(encoding="utf-8")
               for f in ("normalize.py", "similarity.py", "softmax.py", "losses.py"))


def derivation_slugs():
    """The anchors of docs/derivations.md's sections, slugified as MkDocs' toc does."""
    headings = re.findall(r"^## (.+)$", (ROOT / "docs" / "derivations.md").read_text(
        encoding="utf-8"), flags=re.MULTILINE)
    return {re.sub(r"[^a-z0-9]+", "-", h.lower()).strip("-") for h in headings}


@pytest.mark.parametrize(("anchor", "module"), [
    ("linear-layer", "nn/affine.py"), ("layer-norm", "nn/normalization.py"),
    ("gelu-and-quickgelu", "nn/activations.py"), ("multi-head-attention", "nn/attention.py"),
    ("the-residual-block", "nn/block.py"), ("embeddings-and-pooling", "nn/embeddings.py")])
def test_the_encoder_layers_derivations_exist_where_their_modules_say(anchor, module):
    assert anchor in derivation_slugs()
    assert f"docs/derivations.md#{anchor}" in (ROOT / "numclip" / module).read_text(
        encoding="utf-8")


def test_every_derivation_the_code_cites_is_a_section_of_the_page():
    """Any ``docs/derivations.md#anchor`` in numclip/, subpackages included, is a heading:
    a renamed section cannot leave a docstring pointing nowhere."""
    cited = {(path.relative_to(ROOT).as_posix(), anchor)
             for path in sorted((ROOT / "numclip").rglob("*.py"))
             for anchor in re.findall(r"derivations\.md#([\w-]+)",
                                      path.read_text(encoding="utf-8"))}
    assert {"numclip/nn/attention.py", "numclip/losses.py"} <= {path for path, _ in cited}
    slugs = derivation_slugs()
    missing = sorted((path, anchor) for path, anchor in cited if anchor not in slugs)
    assert not missing, f"docstrings cite sections docs/derivations.md does not have: {missing}"


def test_the_readme_python_snippets_run():
    for block in code_blocks((ROOT / "README.md").read_text(encoding="utf-8")):
        exec(compile(block, "README.md", "exec"), {})


def test_the_readme_worked_example_table_matches_the_code():
    """The README quotes numclip's values for the page's example: they must be the computed ones."""
    from numclip import worked_example as we

    r = we.compute()
    table = (ROOT / "README.md").read_text(encoding="utf-8")
    quoted = {
        "norms": ", ".join(f"{v:.4f}" for v in r["text_norms"]),
        "row sums": f"{r['row_sum_exp'][0]:.8g}, {r['row_sum_exp'][2]:.8g}",
        "p(T1 given I1)": f"{r['softmax_image_to_text'][0, 0]:.8g}",
        "loss terms": ", ".join(f"{v:.5g}" for v in r["pair_loss_image_to_text"]),
        "L(I->T)": f"| {r['loss_image_to_text']:.5g} |",
        "L(T->I)": f"| {r['loss_text_to_image']:.5g} |",
        "symmetric": f"| {r['loss']:.5g} |",
    }
    missing = {k: v for k, v in quoted.items() if v not in table}
    assert not missing, f"README.md's worked-example table is out of date: {missing}"


# --- references: every page cites like the course page, with linked footnotes -----------------

DOCS = ROOT / "docs"
# Names of papers and code a page cannot mention without saying where they come from.
# (not inside a longer identifier: TinyCLIP is numclip's own class)
CITED_NAMES = re.compile(r"(?<![\w-])(CLIP|open_clip|OpenCLIP|SigLIP|Inf-CL|ViT|NegCLIP|ARO)"
                         r"(?!\w)")
FOOTNOTE_DEF = re.compile(r"^\[\^([^\]\s]+)\]:[ \t]*(.*)$", flags=re.MULTILINE)
FOOTNOTE_REF = re.compile(r"\[\^([^\]\s]+)\]")  # definitions are taken out first
# The course page's format: [^name]: [Title](https://...){:target="_blank"}, authors, venue year
LINK = re.compile(r'\[[^\]\n]+\]\((?P<url>[^)\s]+)\)(?P<attrs>\{:target="_blank"\})?')
SNIPPET = re.compile(r'^--8<-- "([^"]+)"$', flags=re.MULTILINE)


def page_source(path):
    """A page's markdown with its ``--8<--`` snippets included, as pymdownx.snippets does."""
    text = path.read_text(encoding="utf-8")
    return SNIPPET.sub(lambda m: (ROOT / m.group(1)).read_text(encoding="utf-8"), text)


def without_code_blocks(markdown):
    """A page without front matter, fenced code and comments: a ``[^x]`` there is no footnote."""
    markdown = re.sub(r"\A---\n.*?\n---\n", "", markdown, flags=re.DOTALL)
    markdown = re.sub(r"^([ \t]*)(`{3,}|~{3,}).*?^\1\2[ \t]*$", "", markdown,
                      flags=re.DOTALL | re.MULTILINE)
    return re.sub(r"<!--.*?-->", "", markdown, flags=re.DOTALL)


def prose(markdown):
    """The text a reader reads as prose, inline code removed too: a name in code is an
    identifier (``numclip.model.TinyCLIP``), not a mention of a paper."""
    return re.sub(r"`[^`\n]+`", "", without_code_blocks(markdown))


def footnote_problems(markdown):
    """What is wrong with a page's references, as a list of sentences (empty: nothing)."""
    text = prose(markdown)
    defs = FOOTNOTE_DEF.findall(without_code_blocks(markdown))  # a title may be code
    defined = [name for name, _ in defs]
    refs = set(FOOTNOTE_REF.findall(FOOTNOTE_DEF.sub("", text)))
    problems = []
    named = sorted(set(CITED_NAMES.findall(text)))
    if named and not defs:
        problems.append(f"names {', '.join(named)} but has no footnote")
    problems += [f"[^{n}] is used but never defined" for n in sorted(refs - set(defined))]
    problems += [f"[^{n}] is defined but never used" for n in sorted(set(defined) - refs)]
    problems += [f"[^{n}] is defined twice" for n in sorted({n for n in defined
                                                           if defined.count(n) > 1})]
    for n, body in defs:
        links = list(LINK.finditer(body))
        if not any(re.match(r"https?://", link["url"]) for link in links):
            problems.append(f"[^{n}] has no http(s) link")
        problems += [f"[^{n}] links {link['url']} without {{:target=\"_blank\"}}, "
                     "as the course page's footnotes do" for link in links if not link["attrs"]]
    return problems


@pytest.mark.parametrize("page", sorted(p.relative_to(DOCS).as_posix()
                                        for p in DOCS.rglob("*.md")))
def test_every_page_cites_what_it_names_with_linked_footnotes(page):
    """The course page cites with linked footnotes; so does every page of the site that names
    a paper or its code, and no footnote is left dangling on either side."""
    problems = footnote_problems(page_source(DOCS / page))
    assert not problems, f"docs/{page}: " + "; ".join(problems)


@pytest.mark.parametrize(("markdown", "words"), [
    ("CLIP trains two encoders.\n", "has no footnote"),
    ("open_clip's loss.[^oc]\n", "[^oc] is used but never defined"),
    ("MPI[^mpi]: a standard.\n", "[^mpi] is used but never defined"),  # not a definition
    ("ViT.[^vit]\n\n[^vit]: [ViT](https://arxiv.org/abs/2010.11929){:target=\"_blank\"}.\n"
     "\n[^x]: [X](https://example.org){:target=\"_blank\"}.\n", "[^x] is defined but never used"),
    ("SigLIP.[^s]\n\n[^s]: Zhai et al., 2023, no link.\n", "has no http(s) link"),
    ("SigLIP.[^s]\n\n[^s]: [Sigmoid](siglip.md){:target=\"_blank\"}.\n", "has no http(s) link"),
    ("SigLIP.[^s]\n\n[^s]: [Sigmoid](http://x.org).\n", 'without {:target="_blank"}'),
    ("CLIP.[^c]\n\n[^c]: [A](https://a.org){:target=\"_blank\"}, code [B](https://b.org).\n",
     "links https://b.org without"),
    ("CLIP.[^c]\n\n[^c]: [A](https://a.org){:target=\"_blank\"}\n\n"
     "[^c]: [B](https://b.org){:target=\"_blank\"}\n", "[^c] is defined twice"),
])
def test_the_footnote_check_catches(markdown, words):
    assert any(words in problem for problem in footnote_problems(markdown))


def test_the_footnote_check_passes_a_page_cited_like_the_course_page_and_ignores_code():
    markdown = ("CLIP[^clip] and `TinyCLIP`.\n\n```python\nx = a[^b]  # ViT\n```\n\n"
                "[^clip]: [Learning Transferable Visual Models From Natural Language Supervision]"
                "(https://arxiv.org/abs/2103.00020){:target=\"_blank\"}, Radford et al., 2021.\n")
    assert footnote_problems(markdown) == []
    assert footnote_problems("A page about `numclip.clip_loss` in code only.\n") == []


# --- quotations: the sources' own words, as the course page quotes them ------------------------

# The passages of the two sources the course page quotes, verbatim (checked against the paper's
# text, arXiv 2103.00020, and the course page's own quotation of OpenAI's post). A quotation
# on the site footnoted to one of them must be a piece of one of its passages.
SOURCE_TEXT = {
    "https://arxiv.org/abs/2103.00020": [  # Radford et al. 2021
        "Learning Transferable Visual Models From Natural Language Supervision",  # its title
        # section 2.3
        "Given a batch of N (image, text) pairs, CLIP is trained to predict which of the N × N "
        "possible (image, text) pairings across a batch actually occurred. To do this, CLIP "
        "learns a multi-modal embedding space by jointly training an image encoder and text "
        "encoder to maximize the cosine similarity of the image and text embeddings of the N "
        "real pairs in the batch while minimizing the cosine similarity of the embeddings of the "
        "N² − N incorrect pairings. We optimize a symmetric cross entropy loss over these "
        "similarity scores.",
        "Finally, the temperature parameter which controls the range of the logits in the "
        "softmax, τ, is directly optimized during training as a log-parameterized "
        "multiplicative scalar to avoid turning as a hyper-parameter.",
        # section 2.5
        "The learnable temperature parameter τ was initialized to the equivalent of 0.07 from "
        "(Wu et al., 2018) and clipped to prevent scaling the logits by more than 100 which we "
        "found necessary to prevent training instability. We use a very large minibatch size of "
        "32,768.",
        # section 3.1.4
        "To help bridge this distribution gap, we found that using the prompt template “A photo "
        "of a {label}.” to be a good default that helps specify the text is about the content of "
        "the image. This often improves performance over the baseline of using only the label "
        "text. For instance, just using this prompt improves accuracy on ImageNet by 1.3%.",
        "We construct the ensemble over the embedding space instead of probability space.",
        "On ImageNet, we ensemble 80 different context prompts and this improves performance by "
        "an additional 3.5% over the single default prompt discussed above.",
        # section 6
        "CLIP only achieves 88% accuracy on the handwritten digits of MNIST. An embarrassingly "
        "simple baseline of logistic regression on raw pixels outperforms zero-shot CLIP.",
    ],
    "https://openai.com/index/clip": [  # OpenAI's post, as the course page quotes it
        "CLIP: Connecting Text and Images",
        "To apply CLIP to a new task, all we need to do is “tell” CLIP’s text-encoder the names "
        "of the task’s visual concepts, and it will output a linear classifier of CLIP’s visual "
        "representations.",
        "On these two datasets, zero-shot CLIP is only slightly better than random guessing.",
        "Finally, we’ve observed that CLIP’s zero-shot classifiers can be sensitive to wording or "
        "phrasing and sometimes require trial and error “prompt engineering” to perform well.",
    ],
}
# "words"[^name], "words".[^name], and a > blockquote whose last line ends with [^name]
INLINE_QUOTE = re.compile(r'"(?P<words>[^"\n]*(?:\n[^"\n]+)*?)"[.,;:]?\[\^(?P<name>[^\]\s]+)\]')
BLOCK_QUOTE = re.compile(r"(?P<words>(?:^> .*\n)+)", flags=re.MULTILINE)


def normalized(text):
    """Compare words, not typography: one kind of quote mark, single spaces, no > markers."""
    text = re.sub(r"^> ?", "", text, flags=re.MULTILINE)
    text = text.translate(str.maketrans("“”‘’", "\"\"''"))
    return " ".join(text.split())


def footnoted_quotations(markdown):
    """``(url, words)`` for every quotation footnoted to a source of SOURCE_TEXT."""
    text = without_code_blocks(markdown)
    urls = {name: LINK.search(body)["url"] for name, body in FOOTNOTE_DEF.findall(text)
            if LINK.search(body)}
    found = [(m["name"], m["words"]) for m in INLINE_QUOTE.finditer(text)]
    for block in BLOCK_QUOTE.finditer(text):
        ref = re.search(r"\[\^([^\]\s]+)\]\s*$", block["words"])
        if ref:
            found.append((ref.group(1), block["words"][:ref.start()]))
    return [(urls.get(name), words) for name, words in found if urls.get(name) in SOURCE_TEXT]


def misquotations(markdown):
    """The footnoted quotations that are not the source's words (elisions "[...]" allowed)."""
    wrong = []
    for url, words in footnoted_quotations(markdown):
        passages = [normalized(p) for p in SOURCE_TEXT[url]]
        pieces = [normalized(piece).rstrip(".,;:") for piece in words.split("[...]")]
        if not all(any(piece in p for p in passages) for piece in pieces if piece):
            wrong.append(normalized(words))
    return wrong


@pytest.mark.parametrize("page", sorted(p.relative_to(DOCS).as_posix()
                                        for p in DOCS.rglob("*.md")))
def test_every_quotation_footnoted_to_the_clip_paper_or_openais_post_is_verbatim(page):
    wrong = misquotations(page_source(DOCS / page))
    assert not wrong, f"docs/{page} quotes words its footnoted source does not have: {wrong}"


def test_the_quotations_are_found_and_a_changed_word_is_caught():
    """The check reads the site's quotations (a check that finds none cannot fail) and
    refuses one word changed."""
    quoted = [words for p in DOCS.rglob("*.md")
              for _, words in footnoted_quotations(page_source(p))]
    assert len(quoted) >= 10, quoted
    foot = ('\n\n[^c]: [Learning Transferable Visual Models From Natural Language Supervision]'
            '(https://arxiv.org/abs/2103.00020){:target="_blank"}, Radford et al.\n')
    assert misquotations('It was "clipped to prevent scaling the logits by more than 100"[^c].'
                         + foot) == []
    assert misquotations('It was "clipped to prevent scaling the outputs by more than 100"[^c].'
                         + foot)
    assert misquotations("> We optimize a symmetric loss over these similarity scores.[^c]\n"
                         + foot)
