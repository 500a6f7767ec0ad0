"""The docs quote the code; these checks keep the quotes true."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCE_LINES = {line.strip() for path in (ROOT / "numclip").glob("*.py")
                for line in path.read_text(encoding="utf-8").splitlines()}


def code_blocks(markdown):
    return re.findall(r"```python\n(.*?)```", markdown, flags=re.DOTALL)


@pytest.mark.parametrize("page", ["derivations.md", "siglip.md"])  # distributed.md: its own test
def test_every_line_quoted_in_the_docs_is_in_the_source(page):
    blocks = code_blocks((ROOT / "docs" / page).read_text(encoding="utf-8"))
    assert blocks, f"docs/{page} quotes no code"
    missing = [line for block in blocks for line in block.splitlines()
               if line.strip() and line.strip() not in SOURCE_LINES]
    assert not missing, f"docs/{page} quotes lines that are not in numclip/: {missing}"


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
