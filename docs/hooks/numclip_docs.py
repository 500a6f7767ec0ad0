"""MkDocs hooks for the numclip site (``hooks:`` in ``mkdocs.yml``).

What a plain ``docs/`` folder cannot do, done here:

* **Notebooks.** ``notebooks/**/*.ipynb`` live outside ``docs/``; :func:`on_files`
  adds each as a page at ``notebooks/...`` before mkdocs-jupyter sees the file
  list, and mkdocs-jupyter executes and renders it.  Glob entries in the ``nav``
  (``notebooks/*.ipynb``) are expanded to the notebooks that exist, so a new
  notebook needs no edit here; one that no glob covers fails the strict build.
  Executed notebooks are cached in ``.cache/`` under a key that includes the
  source of ``numclip/``, so a change to the code re-runs them.
* **API pages.** One page per public module of ``numclip/`` (``api/*.md`` in the
  nav), rendered by mkdocstrings with source; private helpers that the docs
  name (``numclip.fused._merge_columns``) are rendered too, so they can be linked.
* **Links from prose to code.** Inline code that is a dotted ``numclip.*`` name
  becomes a link to that object's API entry (and a name that does not exist
  fails the build); ``docs/page.md#anchor``, ``notebooks/x.ipynb`` or
  ``benchmarks/README.md`` quoted in a docstring become links to their pages, and a
  notebook's links to repository files (``../docs/derivations.md``) are pointed at
  the site's pages.
* **Snippets that run.** Every ```` ```python ```` block of a page runs at build,
  in order, in one namespace per page, inside a temporary folder.  What it prints
  is shown under it.  Options after ``python``: ``hide`` (run, show nothing),
  ``output`` (show only what it prints), ``markdown`` (insert what it prints as
  Markdown), ``norun`` (show, do not run: GPU or MPI code).  ``{{ expr }}`` (with
  spaces, optionally ``{{ expr:.4f }}``) in the text is replaced by the value of
  ``expr`` in that namespace.  Pages whose front matter says ``snippets: quoted``
  quote lines of ``numclip/`` instead (tests/test_docs.py checks them), and run nothing.
* **Plain text where MathJax does not reach.**  The table of contents and the search
  index show a heading's text, not its typeset formula: :func:`plain_tex` writes
  ``\\(O(Nd)\\)`` there as ``O(Nd)`` and ``$\\tau$`` as ``τ``.  In notebooks, the
  prompts (``In [3]:``), the copy button and the hidden copy of each code cell are
  kept out of the search index, so a cell is found once, as its code.
* **MathJax 3, locally.** Copied from the ``django-static-mathjax`` wheel (MathJax
  3.2.2, no Django needed) so that the site, and CI, load nothing from a CDN.

:func:`render_snippets` works without MkDocs; ``tests/test_site.py`` uses it.
"""

from __future__ import annotations

import ast
import base64
import contextlib
import fnmatch
import hashlib
import importlib
import io
import logging
import os
import posixpath
import re
import shutil
import tempfile
import time
import types
from html import escape as html_escape
from html import unescape as html_unescape
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

try:
    from mkdocs.exceptions import PluginError
    from mkdocs.plugins import event_priority
except ImportError:  # render_snippets() is used by the tests without MkDocs
    PluginError = RuntimeError

    def event_priority(priority):
        return lambda f: f

ROOT = Path(__file__).resolve().parents[2]
log = logging.getLogger("mkdocs.hooks.numclip_docs")

# Teaching order, as in DESIGN.md; modules not listed follow alphabetically.
API_ORDER = ["backend", "normalize", "similarity", "softmax", "losses", "fused", "siglip",
             "gradcheck", "checks", "worked_example", "data", "text", "model", "optim", "train",
             "zeroshot", "report", "plot", "scenes", "probes", "gap", "threads", "distributed",
             "cli"]

FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^\n`]*)\n"
                   r"(?P<body>.*?)^(?P=indent)(?P=fence)[ \t]*$", flags=re.MULTILINE | re.DOTALL)
PLACEHOLDER = re.compile(r"\{\{\s+(?P<expr>.+?)\s+\}\}")
SNIPPET_OPTIONS = ("hide", "output", "markdown", "norun")
CODE_NAME = re.compile(r"(?<![\[`])`(?P<name>numclip(?:\.[A-Za-z_]\w*)+)`(?![\]`])")
DOC_REF = re.compile(r"<code>(?P<path>docs/[\w/-]+\.md|benchmarks/README\.md|"
                     r"notebooks/[\w/-]+\.ipynb)(?:#(?P<anchor>[\w-]+))?</code>")


# ----------------------------------------------------------------------------- snippets

def render_snippets(markdown: str, name: str) -> str:
    """Run a page's python blocks and fill its ``{{ expr }}`` placeholders; see the module doc."""
    namespace = {"__name__": "__docs__", "docs": HELPERS}
    out, pos, count = [], 0, 0
    with tempfile.TemporaryDirectory() as tmp, _cwd(tmp):
        for match in FENCE.finditer(markdown):
            out.append(_fill(markdown[pos:match.start()], namespace, name))
            pos = match.end()
            info = match["info"].strip()
            if info.split()[:1] not in (["python"], ["py"]):
                out.append(match.group(0))
                continue
            count += 1
            out.append(_snippet(match, namespace, f"docs/{name}, python block {count}"))
        out.append(_fill(markdown[pos:], namespace, name))
    return "".join(out)


def _snippet(match: re.Match, namespace: dict, where: str) -> str:
    indent, fence = match["indent"], match["fence"]
    words = match["info"].split()
    options = {w for w in words[1:] if w in SNIPPET_OPTIONS}
    info = " ".join(w for w in words if w not in SNIPPET_OPTIONS)
    code = "".join(line[len(indent):] if line.startswith(indent) else line.lstrip()
                   for line in match["body"].splitlines(keepends=True))
    printed = "" if "norun" in options else _run(code, namespace, where)
    parts = []
    if not options & {"hide", "output", "markdown"}:
        parts.append(match.group(0).replace(match["info"], info, 1))
    if printed and "hide" not in options:
        if "markdown" in options:
            parts.append(_indent(printed.rstrip("\n"), indent))
        else:
            block = f'{fence}text title="output"\n{printed.rstrip()}\n{fence}'
            parts.append(_indent(block, indent))
    return "\n\n".join(parts)


def _run(code: str, namespace: dict, where: str) -> str:
    buffer = io.StringIO()
    start = time.perf_counter()
    try:
        with contextlib.redirect_stdout(buffer):
            exec(compile(code, where, "exec"), namespace)
    except (Exception, SystemExit) as error:  # SystemExit: an argparse error in a CLI call
        raise PluginError(f"{where} failed: {type(error).__name__}: {error}") from error
    log.debug("%s ran in %.1f s", where, time.perf_counter() - start)
    return buffer.getvalue()


def _fill(text: str, namespace: dict, name: str) -> str:
    def value(match):
        expr = match["expr"]
        try:
            return eval("f" + repr("{" + expr + "}"), namespace)
        except Exception as error:
            raise PluginError(f"docs/{name}: {{{{ {expr} }}}} failed: "
                              f"{type(error).__name__}: {error}") from error
    return PLACEHOLDER.sub(value, text)


def _indent(text: str, indent: str) -> str:
    return "\n".join(indent + line if line.strip() else line for line in text.split("\n"))


@contextlib.contextmanager
def _cwd(path):
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


# ----------------------------------------------------------------------------- helpers for pages

def readme_blocks(section: str) -> list[str]:
    """The fenced blocks (with their fences) under ``## section`` in README.md."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(rf"^## {re.escape(section)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    if not found:
        raise ValueError(f"README.md has no section '## {section}'")
    return [m.group(0) for m in FENCE.finditer(found.group(1))]


def number(value: float, fmt: str = ".4f") -> str:
    r"""A number as LaTeX: where the format writes an exponent (``e``, or ``g`` for a small
    number), it is written ``-4.44 \times 10^{-5}``, never ``-4.44e-05`` (which TeX shows
    as a product with a minus sign)."""
    text = format(float(value), fmt)
    if "e" not in text or not re.fullmatch(r"-?[\d.]+e[-+]\d+", text):
        return text
    mantissa, exponent = text.split("e")
    return rf"{mantissa} \times 10^{{{int(exponent)}}}"


def bmatrix(array, fmt: str = ".4f") -> str:
    r"""A 2-d array as LaTeX ``\begin{bmatrix} ... \end{bmatrix}``."""
    rows = [" & ".join(number(v, fmt) for v in row) for row in array]
    return r"\begin{bmatrix} " + r" \\ ".join(rows) + r" \end{bmatrix}"


def table(header, rows) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def figure(fig, alt: str, *, caption: str, width: str = "100%") -> str:
    """A matplotlib figure as a captioned Markdown image (a PNG inside the page), and close it.

    ``alt`` says what the picture shows, for a reader who cannot see it; ``caption`` (Markdown)
    is printed under it, as the course page captions every figure.
    """
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return image(buffer.getvalue(), alt, caption=caption, width=width)


def image(png, alt: str, *, caption: str, width: str = "100%") -> str:
    """PNG bytes, or the path of a PNG file, as a captioned Markdown image inside the page
    (``/// caption`` of pymdownx.blocks.caption: a ``<figure>`` with its ``<figcaption>``)."""
    if not caption.strip():
        raise ValueError(f"image {alt!r}: caption must be a non-empty text, got {caption!r}")
    data = Path(png).read_bytes() if isinstance(png, (str, Path)) else png
    alt = alt.replace("[", "(").replace("]", ")")
    src = "data:image/png;base64," + base64.b64encode(data).decode()
    return f'![{alt}]({src}){{ width="{width}" }}\n/// caption\n{caption.strip()}\n///\n'


HELPERS = types.SimpleNamespace(readme_blocks=readme_blocks, bmatrix=bmatrix, number=number,
                                table=table,
                                figure=figure, image=image)


# ----------------------------------------------------------------------------- TeX as text

TEX_SYMBOLS = {"tau": "τ", "to": "→", "sigma": "σ", "theta": "θ", "lambda": "λ", "mu": "μ",
               "alpha": "α", "beta": "β", "ell": "ℓ", "top": "ᵀ", "cdot": "·", "times": "×",
               "le": "≤", "ge": "≥", "leq": "≤", "geq": "≥", "approx": "≈", "infty": "∞",
               "nabla": "∇", "partial": "∂", "sum": "Σ", "log": "log", "exp": "exp"}
TEX_MATH = re.compile(r"\\\((?P<a>.+?)\\\)|\$(?P<b>[^$]+?)\$")


def plain_tex(text: str) -> str:
    r"""Inline TeX in ``text`` as readable plain text, for places MathJax does not typeset
    (the table of contents, search results): ``Why \(O(Nd)\)`` is ``Why O(Nd)``,
    ``$\log(1/\tau)$`` is ``log(1/τ)``."""
    def one(match):
        tex = match["a"] if match["a"] is not None else match["b"]
        tex = re.sub(r"\\(?:mathcal|mathrm|mathbf|text|operatorname|hat)\{([^{}]*)\}", r"\1", tex)
        tex = re.sub(r"\\([A-Za-z]+)", lambda m: TEX_SYMBOLS.get(m[1], m[1]), tex)
        tex = re.sub(r"(?P<op>[_^])\{(?P<x>[^{}]*)\}", lambda m: (m["op"] if m["op"] == "^" else "")
                     + (m["x"] if len(m["x"]) < 2 else f"({m['x']})"), tex)
        return re.sub(r"\s+", " ", tex.replace("{", "").replace("}", "").replace("_", "")).strip()
    return TEX_MATH.sub(one, text)


def _plain_toc(items) -> None:
    for item in items:
        item.title = plain_tex(item.title)
        _plain_toc(item.children)


# Notebook chrome that is not content: kept out of the search index
SEARCH_NOISE = re.compile(r'<div class="(?P<cls>jp-InputPrompt|jp-OutputPrompt|'
                          r'zeroclipboard-container|clipboard-copy-txt)\b')


def _exclude_from_search(html: str) -> str:
    return SEARCH_NOISE.sub(lambda m: m.group(0).replace("<div ", "<div data-search-exclude ", 1),
                            html)


# ----------------------------------------------------------------------------- names in numclip

def resolve(name: str):
    """The object a dotted ``numclip.*`` name stands for, or raise LookupError."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                raise LookupError(f"{'.'.join(parts[:cut])} has no {'.'.join(parts[cut:])}")
            obj = getattr(obj, attr)
        return obj
    raise LookupError(f"no module {parts[0]}")


def canonical(name: str) -> str:
    """Where the API reference documents ``name``: ``numclip.clip_loss`` is
    ``numclip.losses.clip_loss``.  Raises LookupError for a name that does not exist."""
    obj = resolve(name)
    if isinstance(obj, types.ModuleType):
        return obj.__name__
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if module and qualname and module.startswith("numclip") and "<" not in qualname:
        return f"{module}.{qualname}"
    return name


def api_modules() -> list[str]:
    """Public modules of numclip/, in teaching order."""
    names = [".".join(p.relative_to(ROOT / "numclip").with_suffix("").parts)
             for p in (ROOT / "numclip").rglob("*.py")
             if not any(part.startswith("_") for part in p.relative_to(ROOT / "numclip").parts)]
    order = {m: i for i, m in enumerate(API_ORDER)}
    return sorted(names, key=lambda m: (order.get(m, len(order)), m))


def _module_summary(module: str) -> str:
    path = (ROOT / "numclip").joinpath(*module.split(".")).with_suffix(".py")
    tree = ast.parse(path.read_text(encoding="utf-8"))
    doc = ast.get_docstring(tree) or ""
    return doc.strip().split("\n\n")[0].replace("\n", " ").replace("|", "\\|")


def _named_in_docs(docs_dir: Path) -> set[str]:
    """Every dotted ``numclip.*`` name written as inline code in the docs' Markdown."""
    names = set()
    for page in docs_dir.rglob("*.md"):
        names.update(m["name"] for m in CODE_NAME.finditer(page.read_text(encoding="utf-8")))
    return names


def _api_page(module: str, private: list[str]) -> str:
    lines = [f"::: numclip.{module}", "    options:", "      heading_level: 1", ""]
    if private:
        lines += ["## Helpers the derivations quote", "",
                  "Private functions, shown here because the docs quote their lines.", ""]
        for name in sorted(private):
            lines += [f"::: {name}", "    options:", "      heading_level: 3", ""]
    return "\n".join(lines)


def _api_index(modules: list[str]) -> str:
    rows = [(f"[`numclip.{m}`]({m}.md)", _module_summary(m)) for m in modules]
    return "\n".join([
        "# API reference", "",
        "Every public function and class of numclip, generated from its docstring, with its "
        "source. The top-level package re-exports the core functions: "
        "`numclip.clip_loss` is [`numclip.losses.clip_loss`](losses.md#numclip.losses.clip_loss). "
        "Each backward function's derivation is on [Derivations](../derivations.md).", "",
        table(["module", "what it holds"], rows), ""])


# ----------------------------------------------------------------------------- nav

def _virtual_pages(config) -> list[str]:
    notebooks = [p.relative_to(ROOT).as_posix() for p in _notebooks()]
    api = ["api/index.md"] + [f"api/{m}.md" for m in api_modules()]
    docs = [p.relative_to(config["docs_dir"]).as_posix()
            for p in sorted(Path(config["docs_dir"]).rglob("*.md"))]
    return notebooks + api + docs


# An instructor's source, not a page: `otter assign` makes the student's notebook from it
OFF_SITE = ("notebooks/exercises/otter",)


def _notebooks() -> list[Path]:
    return [p for p in sorted((ROOT / "notebooks").rglob("*.ipynb"))
            if ".ipynb_checkpoints" not in p.parts
            and not p.relative_to(ROOT).as_posix().startswith(OFF_SITE)]


def _glob(pattern: str, pages: list[str]) -> list:
    want = PurePosixPath(pattern).parts
    hits = [p for p in pages if len(PurePosixPath(p).parts) == len(want)
            and all(fnmatch.fnmatchcase(a, b)
                    for a, b in zip(PurePosixPath(p).parts, want, strict=True))]
    hits = [p for p in hits if p != "api/index.md"]
    return [{f"numclip.{PurePosixPath(p).stem}": p} if p.startswith("api/") else p for p in hits]


def _expand(items: list, pages: list[str]) -> list:
    out = []
    for item in items:
        if isinstance(item, str) and "*" in item:
            out.extend(_glob(item, pages))
        elif isinstance(item, dict) and len(item) == 1:
            (title, value), = item.items()
            if isinstance(value, str) and "*" in value:
                value = _glob(value, pages)
            elif isinstance(value, list):
                value = _expand(value, pages)
            if value:  # an empty section (no notebooks yet) is left out
                out.append({title: value})
        else:
            out.append(item)
    return out


# ----------------------------------------------------------------------------- MkDocs events

def on_config(config):
    config["nav"] = _expand(config["nav"], _virtual_pages(config))
    # The snippets draw with matplotlib in this process: no windows.  The notebooks'
    # kernels inherit the environment, and ipykernel shows figures inline only where
    # MPLBACKEND is unset: a global MPLBACKEND=Agg would build notebooks without figures.
    import matplotlib

    matplotlib.use("Agg")
    if os.environ.pop("MPLBACKEND", None):
        log.info("MPLBACKEND unset for the notebooks' kernels, so that they draw inline")
    # Executed notebooks are cached by mkdocs-jupyter under a key made from the notebook
    # and the plugin options only; add the code they import to it.
    jupyter = config["plugins"].get("mkdocs-jupyter")
    if jupyter is not None:
        code = hashlib.sha256()
        for path in sorted((ROOT / "numclip").glob("*.py")):
            code.update(path.read_bytes())
        cache = ROOT / ".cache" / "mkdocs-jupyter" / code.hexdigest()[:16]
        jupyter.config["cache_dir"] = str(cache)
        for old in cache.parent.glob("*") if cache.parent.is_dir() else []:
            if old.is_dir() and old != cache:  # outputs of an older numclip
                shutil.rmtree(old, ignore_errors=True)
    config["watch"].extend([str(ROOT / "notebooks"), str(ROOT / "numclip"),
                            str(ROOT / "benchmarks" / "README.md"), str(ROOT / "README.md")])
    return config


@event_priority(100)  # before mkdocs-jupyter's on_files, which wraps the notebooks
def on_files(files, config):
    from mkdocs.structure.files import File

    for path in _notebooks():
        # a File with the repository root as its source folder (not File.generated):
        # mkdocs-jupyter's wrapper recomputes abs_src_path from src_dir
        files.append(File(path.relative_to(ROOT).as_posix(), src_dir=str(ROOT),
                          dest_dir=config["site_dir"],
                          use_directory_urls=config["use_directory_urls"]))
    modules = api_modules()
    private = {}
    for name in _named_in_docs(Path(config["docs_dir"])):
        parts = name.split(".")
        first = next((i for i, part in enumerate(parts) if i >= 2 and part.startswith("_")), None)
        module = ".".join(parts[:first] if first else parts[:2])
        if first:
            private.setdefault(module.removeprefix("numclip."), []).append(name)
    files.append(File.generated(config, "api/index.md", content=_api_index(modules)))
    for module in modules:
        files.append(File.generated(config, f"api/{module}.md",
                                    content=_api_page(module, private.get(module, []))))
    for src, uri in _mathjax_files():
        files.append(File.generated(config, uri, abs_src_path=str(src)))
    return files


def _mathjax_files():
    """(file, site path) for MathJax 3's tex-mml-chtml component and what it loads."""
    try:
        import mathjax  # the django-static-mathjax wheel; Django itself is not needed
    except ImportError:
        raise PluginError("MathJax 3 is missing: pip install -e '.[docs]' "
                          "(it comes from the django-static-mathjax wheel)") from None
    es5 = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    wanted = [es5 / "tex-mml-chtml.js"]
    for folder in ("input", "output/chtml", "a11y", "ui", "sre", "adaptors"):
        wanted += [p for p in sorted((es5 / folder).rglob("*")) if p.is_file()]
    return [(p, "javascripts/mathjax/" + p.relative_to(es5).as_posix()) for p in wanted]


def on_page_markdown(markdown, page, config, files):
    name = page.file.src_uri
    if name.startswith("api/") or name.endswith(".ipynb"):  # generated, or a notebook's JSON
        return markdown
    if page.meta.get("snippets") != "quoted":
        start = time.perf_counter()
        markdown = render_snippets(markdown, name)
        log.info("docs/%s: snippets ran in %.1f s", name, time.perf_counter() - start)
    return _link_names(markdown, name)


def _link_names(markdown: str, name: str) -> str:
    """Link inline-code ``numclip.*`` names (outside fenced blocks) to their API entry."""
    out, pos = [], 0
    for match in FENCE.finditer(markdown):
        out.append(CODE_NAME.sub(lambda m: _code_link(m, name), markdown[pos:match.start()]))
        out.append(match.group(0))
        pos = match.end()
    out.append(CODE_NAME.sub(lambda m: _code_link(m, name), markdown[pos:]))
    return "".join(out)


def _code_link(match: re.Match, page: str) -> str:
    dotted = match["name"]
    try:
        target = canonical(dotted)
    except LookupError as error:
        log.warning("docs/%s: `%s` is not in numclip (%s)", page, dotted, error)
        return match.group(0)
    return f"[`{dotted}`][{target}]"


def _link_names_in_html(html: str, page: str) -> str:
    """The same for HTML that no Markdown of ours produced (notebooks, included files):
    ``<code>numclip.x</code>`` outside ``<pre>`` and not already inside a link."""
    def link(match):
        if re.search(r"<(?:a|autoref)\b[^>]*>\s*$", match.string[max(0, match.start() - 400):
                                                             match.start()]):
            return match.group(0)
        try:
            target = canonical(match[1])
        except LookupError as error:
            log.warning("%s: `%s` is not in numclip (%s)", page, match[1], error)
            return match.group(0)
        return f'<autoref identifier="{target}">{match.group(0)}</autoref>'

    parts = re.split(r"(<pre\b.*?</pre>)", html, flags=re.DOTALL)
    return "".join(part if part.startswith("<pre") else
                   re.sub(r"<code>(numclip(?:\.[A-Za-z_]\w*)+)</code>", link, part)
                   for part in parts)


def on_page_content(html, page, config, files):
    if not page.file.src_uri.startswith("api/"):
        html = _link_names_in_html(html, page.file.src_uri)
    if page.file.src_uri.endswith(".ipynb"):
        # mkdocs-jupyter's template loads MathJax 2 from a CDN; the site has MathJax 3
        html = re.sub(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->", "",
                      html, flags=re.DOTALL)
        source = PurePosixPath(page.file.src_uri).name
        html = _notebook_links(html, page, files)
        html = _notebook_figures(html, page.file.src_uri)
        html = _exclude_from_search(html)
        html = (f'<p class="nb-download"><a href="{source}" download>Download {source}</a> '
                "(committed without outputs; the outputs below were computed when this site "
                "was built)</p>\n" + html)
    return DOC_REF.sub(lambda m: _doc_link(m, page, files), html)


# A notebook's figure is captioned by the markdown cell right after the cell that draws it,
# starting "**Figure 3.**": in Jupyter it reads as a caption under the picture, and on the
# site the hook moves it into the output as the <figcaption> of a <figure>, as the
# Markdown pages' "/// caption" blocks render.
NB_IMAGE = re.compile(r'<div class="jp-Rendered(?:Image|SVG) jp-OutputArea-output"[^>]*>\s*'
                      r'(?P<img>(?:<a\b[^>]*>\s*)?(?:<img\b[^>]*>|<svg\b.*?</svg>)(?:\s*</a>)?)',
                      flags=re.DOTALL)
NB_CAPTION = re.compile(r'<div class="jp-RenderedHTMLCommon jp-RenderedMarkdown jp-MarkdownOutput"'
                        r'[^>]*>\s*(?P<body><p><strong>Figure (?P<n>\d+)\.</strong>.*?)\s*</div>',
                        flags=re.DOTALL)
NB_CELL = re.compile(r'<div class="jp-Cell jp-(?:Markdown|Code|Raw)Cell\b')


def _div_end(html: str, start: int) -> int:
    """The index just past the </div> that closes the <div> opening at ``start``."""
    depth = 0
    for tag in re.finditer(r"<div\b|</div>", html[start:]):
        depth += 1 if tag.group(0) == "<div" else -1
        if depth == 0:
            return start + tag.end()
    raise ValueError(f"unbalanced <div> at {start}")


def _notebook_figures(html: str, page: str) -> str:
    """Each figure of a notebook in a <figure> with the caption cell that follows it; a
    figure without one, or a caption after no figure, fails the strict build."""
    out, pos, numbers = [], 0, []
    for cell in NB_CELL.finditer(html):
        if cell.start() < pos or "jp-MarkdownCell" not in cell.group(0):
            continue
        end = _div_end(html, cell.start())
        caption = NB_CAPTION.search(html, cell.start(), end)
        if caption is None:
            continue
        numbers.append(int(caption["n"]))
        before = html[pos:cell.start()]
        figures = list(NB_IMAGE.finditer(before))
        last = figures[-1] if figures else None
        if last is None or NB_CELL.search(before, last.end()):
            log.warning("%s: the caption 'Figure %s.' follows no figure (it must be the "
                        "markdown cell right after the cell that draws it)", page, caption["n"])
            out.append(html[pos:end])
        else:
            text = re.sub(r"<[^>]+>", "", caption["body"])
            alt = html_escape(plain_tex(html_unescape(" ".join(text.split()))), quote=True)
            img = re.sub(r'(<img\b[^>]*?\balt=")[^"]*"', lambda m, alt=alt: f'{m[1]}{alt}"',
                         last["img"])
            out += [before[:last.start("img")],
                    f'<figure class="nb-figure">{img}<figcaption>{caption["body"]}</figcaption>'
                    "</figure>", before[last.end("img"):]]
        pos = end
    out.append(html[pos:])
    html = "".join(out)
    bare = [m for m in NB_IMAGE.finditer(html)
            if not html[m.start("img") - 40:m.start("img")].endswith('<figure class="nb-figure">')]
    if bare:
        log.warning("%s: %d figure(s) without a caption: add a markdown cell starting "
                    "'**Figure N.**' right after the cell that draws each", page, len(bare))
    if numbers != list(range(1, len(numbers) + 1)):
        log.warning("%s: the figures are numbered %s, not 1, 2, 3, ...", page, numbers)
    return html


def _site_page(repo_path: str) -> str | None:
    """The page of the site that stands for a file of the repository, if any."""
    if repo_path.startswith("docs/") and repo_path.endswith(".md"):
        return repo_path.removeprefix("docs/")
    if repo_path.startswith("notebooks/") and repo_path.endswith(".ipynb"):
        return repo_path
    if repo_path == "benchmarks/README.md":
        return "benchmarks.md"
    if re.fullmatch(r"numclip/[a-z]\w*\.py", repo_path):
        return f"api/{repo_path[8:-3]}.md"
    return None


def _notebook_links(html: str, page, files) -> str:
    """A notebook links to files as they lie in the repository (``../docs/derivations.md``,
    right in Jupyter); point those links at the pages of the site instead."""
    from mkdocs.utils import get_relative_url

    folder = PurePosixPath(page.file.src_uri).parent

    def fix(match):
        href = html_unescape(match["href"])
        parts = urlsplit(href)
        if parts.scheme or parts.netloc or not parts.path:
            return match.group(0)
        repo_path = posixpath.normpath((folder / parts.path).as_posix())
        target = files.get_file_from_path(_site_page(repo_path) or "")
        if target is None:
            log.warning("%s links to %s, which is not a page of the site", page.file.src_uri,
                        repo_path)
            return match.group(0)
        new = get_relative_url(target.url or ".", page.url or ".")
        if parts.fragment:
            new += "#" + parts.fragment
        return f'{match["before"]}href="{new}"'

    return re.sub(r'(?P<before><a\s[^>]*?)href="(?P<href>[^"#][^"]*)"', fix, html)


def _doc_link(match: re.Match, page, files) -> str:
    from mkdocs.utils import get_relative_url

    path = match["path"]
    target = files.get_file_from_path(_site_page(path) or "")
    if target is None:
        log.warning("%s: %s is not a page of the site", page.file.src_uri, path)
        return match.group(0)
    href = get_relative_url(target.url or ".", page.url or ".")
    if match["anchor"]:
        href += "#" + match["anchor"]
    return f'<a href="{href}">{match.group(0)}</a>'


def on_page_context(context, page, config, nav):
    _plain_toc(page.toc)
    return context


def on_post_build(config):
    """Search titles in plain text (the search plugin reads headings with their TeX)."""
    import json

    index = Path(config["site_dir"]) / "search" / "search_index.json"
    if not index.is_file():
        return
    data = json.loads(index.read_text(encoding="utf-8"))
    for doc in data["docs"]:
        doc["title"] = plain_tex(doc["title"])
    index.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")),
                     encoding="utf-8")
