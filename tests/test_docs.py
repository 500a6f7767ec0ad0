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
