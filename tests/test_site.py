"""The documentation site: every snippet runs, the strict build passes, links resolve, math renders.

* Every ```` ```python ```` block of ``docs/`` runs (the way the build runs it, through
  ``docs/hooks/numclip_docs.py``), except on pages marked ``snippets: quoted``, whose
  lines must be lines of ``numclip/`` (or of ``tests/mpi/``, which docs/distributed.md quotes).
  This part needs only numclip.
* ``mkdocs build --strict`` (skipped with a message where MkDocs is not installed:
  ``pip install -e '.[docs]'``), then, over the built HTML: every internal link and
  anchor resolves, every notebook is rendered with its outputs, every public module has
  an API page with source, and every function the docs name links to it.
* Headless Chromium (Debian's ``chromium`` package; skipped with a message where
  ``/usr/bin/chromium`` is missing) loads pages from a local server and checks that
  MathJax typeset their formulas: ``mjx-container`` elements, no TeX error, and no raw
  ``\\(``, ``\\[`` or ``$$`` left in the visible text.
"""

from __future__ import annotations

import functools
import html
import importlib.util
import os
import re
import subprocess
import sys
import threading
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
CHROMIUM = os.environ.get("NUMCLIP_CHROMIUM", "/usr/bin/chromium")
PAGES = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")
               if "hooks" not in p.relative_to(DOCS).parts)
NOTEBOOKS = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "notebooks").rglob("*.ipynb")
                   if ".ipynb_checkpoints" not in p.parts
                   and "otter" not in p.relative_to(ROOT).parts)  # the hook's OFF_SITE


def _hook():
    path = DOCS / "hooks" / "numclip_docs.py"
    spec = importlib.util.spec_from_file_location("numclip_docs", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _front_matter(text: str) -> tuple[dict, str]:
    """The ``key: value`` lines of a page's front matter, and the page without it."""
    found = re.match(r"---\n(.*?)\n---\n", text, flags=re.DOTALL)
    if not found:
        return {}, text
    meta = {}
    for line in found.group(1).splitlines():
        key, _, value = line.partition(":")
        meta[key.strip()] = value.split("#")[0].strip()
    return meta, text[found.end():]


# ----------------------------------------------------------------------------- snippets

@pytest.mark.parametrize("page", PAGES)
def test_every_snippet_in_the_docs_runs_or_quotes_the_source(page, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    meta, text = _front_matter((DOCS / page).read_text(encoding="utf-8"))
    if meta.get("snippets") == "quoted":
        source = {line.strip() for path in [*(ROOT / "numclip").rglob("*.py"),
                                             *(ROOT / "tests" / "mpi").glob("*.py")]
                  for line in path.read_text(encoding="utf-8").splitlines()}
        blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
        missing = [line for block in blocks for line in block.splitlines()
                   if line.strip() and line.strip() not in source]
        assert not missing, f"docs/{page} quotes lines that are not in the source: {missing}"
        return
    rendered = _hook().render_snippets(text, page)  # raises, naming the block, if one fails
    assert "{{ " not in rendered, f"docs/{page}: a {{{{ placeholder }}}} was left unfilled"


# ----------------------------------------------------------------------------- the build

@pytest.fixture(scope="module")
def site(tmp_path_factory):
    if os.environ.get("NUMCLIP_SITE"):  # a site built already, to re-run the checks quickly
        return Path(os.environ["NUMCLIP_SITE"])
    if importlib.util.find_spec("mkdocs") is None:
        pytest.skip("MkDocs is not installed, so the site is not built or checked here; "
                    "pip install -e '.[docs]' to run these tests")
    out = tmp_path_factory.mktemp("site")
    env = os.environ | {"NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict",
                           "--config-file", str(ROOT / "mkdocs.yml"), "--site-dir", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{log[-6000:]}"
    return out


class _Page(HTMLParser):
    """Ids, links and the visible text of one HTML file.

    The text leaves out code, scripts, MathJax's output and hidden copies of code cells
    (mkdocs-jupyter's ``clipboard-copy-txt``), which are not formulas to typeset.
    """

    SKIP_TAGS = frozenset({"script", "style", "pre", "code", "mjx-container", "svg", "math",
                           "textarea"})
    SKIP_CLASSES = frozenset({"clipboard-copy-txt"})
    VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link",
                      "meta", "source", "track", "wbr"})

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids, self.links, self.text = set(), [], []
        self._depth = 0  # > 0: inside an element whose text is not visible prose

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("name"):
            self.ids.add(attrs["name"])
        for key in ("href", "src"):
            if attrs.get(key) and tag in ("a", "link", "script", "img", "source", "iframe"):
                self.links.append(attrs[key])
        if tag in self.VOID:
            return
        classes = set((attrs.get("class") or "").split())
        if self._depth or tag in self.SKIP_TAGS or classes & self.SKIP_CLASSES:
            self._depth += 1

    def handle_endtag(self, tag):
        if self._depth and tag not in self.VOID:
            self._depth -= 1

    def handle_data(self, data):
        if not self._depth:
            self.text.append(data)


@functools.cache
def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def _target(site: Path, page: Path, link: str) -> tuple[Path, str] | None:
    """The file and fragment an internal link points to; None for external ones."""
    parts = urlsplit(link)
    if parts.scheme or parts.netloc or link.startswith(("mailto:", "data:", "javascript:")):
        return None
    if not parts.path:
        return page, unquote(parts.fragment)
    path = (page.parent / unquote(parts.path)).resolve()
    if path.is_dir() or parts.path.endswith("/"):
        path = path / "index.html"
    return path, unquote(parts.fragment)


def test_every_internal_link_and_anchor_resolves(site):
    broken = []
    for page in sorted(site.rglob("*.html")):
        if page.name == "404.html":  # its links are written for whichever URL is missing
            continue
        for link in _parse(page).links:
            target = _target(site, page, link)
            if target is None:
                continue
            path, fragment = target
            where = f"{page.relative_to(site)}: {link}"
            if not path.is_file() or site.resolve() not in path.parents:
                broken.append(f"{where} (no file {path})")
            elif fragment and path.suffix == ".html" and fragment not in _parse(path).ids:
                broken.append(f"{where} (no anchor #{fragment})")
    assert not broken, f"{len(broken)} broken internal links:\n" + "\n".join(broken[:40])


def test_the_site_loads_nothing_from_other_hosts(site):
    external = set()
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        external.update(re.findall(r'<(?:script|link|img)\b[^>]*?(?:src|href)="(https?://[^"]+)"',
                                   text))
    assert not external, f"pages load resources from other hosts: {sorted(external)}"


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_every_notebook_is_rendered_with_its_outputs(site, notebook):
    import json

    page = site / Path(notebook).with_suffix("") / "index.html"
    assert page.is_file(), f"{notebook} has no page in the site"
    text = page.read_text(encoding="utf-8")
    assert "jp-Notebook" in text
    cells = json.loads((ROOT / notebook).read_text(encoding="utf-8"))["cells"]
    if any(c["cell_type"] == "code" and "".join(c["source"]).strip() for c in cells):
        assert "jp-OutputArea-output" in text, f"{notebook} was rendered without outputs"
    assert "Traceback (most recent call last)" not in text, f"{notebook} shows an error"
    draws = any(c["cell_type"] == "code" and re.search(r"\bplt\.|numclip\.plot|plot_\w+\(",
                                                       "".join(c["source"])) for c in cells)
    if draws:
        assert "data:image/" in text, f"{notebook} draws figures, but its page shows none"
    assert (page.parent / Path(notebook).name).is_file(), f"{notebook} cannot be downloaded"


def test_every_public_module_has_an_api_page_with_source(site):
    hook = _hook()
    for module in hook.api_modules():
        page = site / "api" / module / "index.html"
        assert page.is_file(), f"numclip.{module} has no API page"
        ids, text = _parse(page).ids, page.read_text(encoding="utf-8")
        assert f"numclip.{module}" in ids
        names = getattr(importlib.import_module(f"numclip.{module}"), "__all__", [])
        missing = [n for n in names if f"numclip.{module}.{n}" not in ids]
        assert not missing, f"api/{module}: no entry for {missing}"
        if any(callable(getattr(importlib.import_module(f"numclip.{module}"), n)) for n in names):
            assert "Source code in" in text, f"api/{module} shows no source"


def test_every_numclip_name_in_the_prose_links_to_its_api_entry(site):
    unlinked = []
    for page in sorted(site.rglob("*.html")):
        if "api" in page.relative_to(site).parts:
            continue
        text = page.read_text(encoding="utf-8")
        for match in re.finditer(r"<code>(numclip(?:\.\w+)+)</code>", text):
            before = text[max(0, match.start() - 300):match.start()]
            if not re.search(r"<a [^>]*href=\"[^\"]*api/[^\"]*\"[^>]*>\s*$", before):
                unlinked.append(f"{page.relative_to(site)}: {match[1]}")
    assert not unlinked, "names of numclip objects without a link to the API:\n" + \
        "\n".join(unlinked[:40])


def test_home_reaches_every_derivation_and_its_source_in_two_clicks(site):
    """Home links to each derivation (one click) and to the function's API entry (one
    click), whose "Source code" panel sits right under its heading (open-source.js opens
    it); the derivations page links each function it derives to the same entry."""
    home = site / "index.html"
    rows = re.findall(r"<tr>(.*?)</tr>", home.read_text(encoding="utf-8"), flags=re.DOTALL)
    checked = 0
    for row in rows:
        links = re.findall(r'href="([^"]+)"', row)
        derivations = [link for link in links if "api/" not in link]
        apis = [link for link in links if "api/" in link]
        if not (derivations and apis):
            continue
        for link in derivations + apis:
            path, fragment = _target(site, home, html.unescape(link))
            assert path.is_file() and fragment in _parse(path).ids, f"home: {link} is broken"
        path, fragment = _target(site, home, html.unescape(apis[0]))
        entry = path.read_text(encoding="utf-8").split(f'id="{fragment}"', 1)[1]
        entry = entry.split(">", 1)[1]  # past the entry's own heading tag
        next_heading = re.search(r'class="doc doc-heading"', entry)
        body = entry[:next_heading.start()] if next_heading else entry
        assert '<details class="mkdocstrings-source">' in body, \
            f"{apis[0]}: no source under the entry"
        checked += 1
    opener = (DOCS / "javascripts" / "open-source.js").read_text(encoding="utf-8")
    assert "details.mkdocstrings-source" in opener, "open-source.js looks for another element"
    assert checked >= 8, f"the home page's formula-to-code table has only {checked} rows"


class _Figures(HTMLParser):
    """The pictures in a page's content (``<article>``) that are not captioned.

    A picture is an ``<img>`` or an ``<svg>`` that is not an icon (icons are
    ``aria-hidden`` or sit in Material's or Jupyter's buttons).  Captioned means: inside a
    ``<figure>`` whose ``<figcaption>`` has text, as ``/// caption`` renders on the Markdown
    pages and as the hook renders a notebook's "**Figure N.**" caption cell.
    """

    ICONS = frozenset({"twemoji", "emojione", "md-icon", "md-content__button",
                       "zeroclipboard-container", "md-clipboard"})
    VOID = _Page.VOID

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack = []  # (tag, classes, is_icon) of the open elements
        self.figures = []  # per open <figure>: [pictures in it, caption text]
        self.uncaptioned, self._in_article, self._caption = [], False, None

    def _picture(self, tag, attrs):
        if not self._in_article or attrs.get("aria-hidden") == "true" or \
                any(icon for _, _, icon in self.stack):
            return
        alt, src = (attrs.get("alt") or "")[:70], (attrs.get("src") or "")[:40]
        what = f"<{tag} alt={alt!r} src={src!r}>"
        if self.figures:
            self.figures[-1][0].append(what)
        else:
            self.uncaptioned.append(what + " (in no <figure>)")

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = set((attrs.get("class") or "").split())
        if tag == "article":
            self._in_article = True
        if tag in ("img", "svg"):
            self._picture(tag, attrs)
        if tag in self.VOID:
            return
        self.stack.append((tag, classes, bool(classes & self.ICONS) or tag == "svg"))
        if tag == "figure":
            self.figures.append([[], ""])
        elif tag == "figcaption" and self.figures:
            self._caption = len(self.stack)

    def handle_endtag(self, tag):
        if tag in self.VOID or not self.stack:
            return
        while self.stack and self.stack[-1][0] != tag:  # an element left open
            self.stack.pop()
        if self._caption and len(self.stack) <= self._caption:
            self._caption = None
        if self.stack:
            self.stack.pop()
        if tag == "article":
            self._in_article = False
        elif tag == "figure" and self.figures:
            pictures, caption = self.figures.pop()
            if not caption.strip():
                self.uncaptioned += [p + " (a <figure> without caption text)" for p in pictures]

    def handle_data(self, data):
        if self._caption and self.figures:
            self.figures[-1][1] += data


def _uncaptioned(text: str) -> list[str]:
    parser = _Figures()
    parser.feed(text)
    return parser.uncaptioned


def test_the_caption_check_finds_a_missing_caption():
    img = '<img alt="a plot" src="data:image/png;base64,AAAA">'
    captioned = f"<article><figure><p>{img}</p><figcaption><p>The plot.</p></figcaption></figure>"
    assert _uncaptioned(captioned + "</article>") == []
    assert _uncaptioned(f"<article><figure><p>{img}</p></figure></article>")
    assert _uncaptioned(f"<article><p>{img}</p></article>")
    assert _uncaptioned(f"<article><figure>{img}<figcaption> </figcaption></figure></article>")
    icon = '<svg aria-hidden="true" class="clipboard-copy-icon"></svg>'
    assert _uncaptioned(f"<article><p>{icon}</p></article><p>{img}</p>") == []


def _nb_cell(kind: str, body: str) -> str:
    """One cell as nbconvert's lab template writes it (enough of it for the hook)."""
    return (f'<div class="jp-Cell jp-{kind}Cell jp-Notebook-cell">'
            f'<div class="jp-Cell-inputWrapper">{body}</div></div>\n')


def test_the_hook_moves_a_caption_cell_under_its_figure_and_flags_a_missing_one(caplog):
    hook = _hook()
    drawn = _nb_cell("Code", '<div class="jp-OutputArea-child"><div class="jp-RenderedImage '
                             'jp-OutputArea-output"><img alt="No description" src="data:x">'
                             "</div></div>")
    caption = _nb_cell("Markdown", '<div class="jp-RenderedHTMLCommon jp-RenderedMarkdown '
                                   'jp-MarkdownOutput"><p><strong>Figure 1.</strong> The '
                                   "$\\tau$ sweep.</p></div>")
    prose = _nb_cell("Markdown", '<div class="jp-RenderedHTMLCommon jp-RenderedMarkdown '
                                 'jp-MarkdownOutput"><p>Some prose.</p></div>')
    with caplog.at_level("WARNING"):
        html = hook._notebook_figures(drawn + caption + prose, "nb.ipynb")
    assert not caplog.records
    assert _uncaptioned(f"<article>{html}</article>") == []
    assert 'alt="Figure 1. The τ sweep."' in html and "Some prose" in html
    assert html.count("The $\\tau$ sweep.") == 1  # moved, not copied
    for page in (drawn + prose, prose + caption):  # a figure without caption, a stray caption
        caplog.clear()
        with caplog.at_level("WARNING"):
            hook._notebook_figures(page, "nb.ipynb")
        assert caplog.records, page


def test_the_search_index_holds_each_code_cell_once_and_no_notebook_chrome(site):
    """Search finds a notebook's cell once, as its code: no "In [3]:" prompt, no "Copied!"
    of the copy button, no second copy of the cell (the copy button's hidden text)."""
    import json

    docs = json.loads((site / "search" / "search_index.json").read_text(encoding="utf-8"))["docs"]
    noise = [f"{d['location']}: {m.group(0)!r}" for d in docs
             for m in re.finditer(r"Copied!|\b(?:In|Out)\s*\[\s*\d*\s*\]:", d["text"])]
    assert not noise, "notebook chrome in the search index:\n" + "\n".join(noise[:20])
    doubled = []
    for notebook in NOTEBOOKS:
        page = Path(notebook).with_suffix("").as_posix() + "/"
        text = " ".join(d["text"] for d in docs if d["location"].split("#")[0] == page)
        text = "".join(html.unescape(re.sub(r"<[^>]+>", "", text)).split())  # no spaces
        cells = json.loads((ROOT / notebook).read_text(encoding="utf-8"))["cells"]
        for cell in cells:
            code = "".join("".join(cell["source"]).split())  # the whole cell, no spaces
            if cell["cell_type"] == "code" and len(code) >= 40 and text.count(code) > 1:
                doubled.append(f"{page}: {code[:60]!r} x{text.count(code)}")
        assert text, f"{page} has no text in the search index"
    assert not doubled, "code cells found twice by search:\n" + "\n".join(doubled[:20])


def test_numbers_in_rendered_maths_are_written_as_powers_of_ten(site):
    """"7.9295e-05" inside a formula is typeset as 7.9295e − 05, a product and a minus: the
    pages write it 7.9295 \\times 10^{-5} (docs.number)."""
    bad = []
    for page in sorted(site.rglob("*.html")):
        text = page.read_text(encoding="utf-8")
        for tex in re.findall(r'class="arithmatex">(.*?)</(?:span|div)>', text, flags=re.DOTALL):
            bad += [f"{page.relative_to(site)}: {m.group(0)!r}"
                    for m in re.finditer(r"\d(?:\.\d+)?e[-+−]\d+", html.unescape(tex))]
    assert not bad, "e-notation inside maths:\n" + "\n".join(bad[:20])


TEX_COMMAND = re.compile(r"\\[A-Za-z]{2,}")  # \hat, \tau, \frac; not \n or a regex's \p{L}


def test_the_api_pages_show_maths_as_maths_and_name_what_they_return(site):
    """A docstring's formula is typeset (``:math:`\\hat I```), not shown as code; and a
    Returns section is one entry per returned value, not a description cut at each line
    into nameless bullets (Google style wants the continuation lines indented)."""
    bad = []
    for page in sorted((site / "api").rglob("index.html")):
        text, where = page.read_text(encoding="utf-8"), page.parent.relative_to(site)
        for code in re.findall(r"<code>([^<]*)</code>", text):
            if TEX_COMMAND.search(html.unescape(code)):
                bad.append(f"{where}: TeX shown as code: {html.unescape(code)!r}")
        for section in re.findall(r'<span class="doc-section-title">Returns:</span></p>\s*'
                                  r"<ul>(.*?)</ul>", text, flags=re.DOTALL):
            items = re.findall(r'<li class="doc-section-item field-body">\s*(.*?)</li>',
                               section, flags=re.DOTALL)
            named = [item.startswith("<b>") for item in items]
            if len(items) > 1 and not all(named):
                first = html.unescape(re.sub(r"<[^>]+>|\s+", " ", items[0])).strip()
                bad.append(f"{where}: a Returns section cut into {len(items)} entries, "
                           f"{named.count(False)} without a name: {first[:80]!r}")
    assert not bad, f"{len(bad)} defects on the API pages:\n" + "\n".join(bad[:40])


# a number and a unit on one line ("87.6 s"), or a table's "seconds  6.24"
TIMING = re.compile(r"\b\d+(?:\.\d+)?[ ]?(?:s|ms|µs|sec|seconds?|min|minutes?)\b"
                    r"|\bseconds?[ ]+\d")


def test_no_output_prints_how_long_the_build_took(site):
    """What a cell or a snippet printed at build time is the same on any machine: no
    "10 epochs in 87.6 s" beside prose that says "trains in seconds"."""
    timings = []
    for page in sorted(site.rglob("*.html")):
        text = page.read_text(encoding="utf-8")
        outputs = re.findall(r'<div class="jp-RenderedText\b.*?</pre>', text, flags=re.DOTALL)
        outputs += re.findall(r'<span class="filename">output</span>.*?</pre>', text,
                              flags=re.DOTALL)
        for output in outputs:
            plain = html.unescape(re.sub(r"<[^>]+>", "", output))
            timings += [f"{page.relative_to(site)}: ...{plain[max(0, m.start() - 50):m.end()]}"
                        for m in TIMING.finditer(plain)]
    assert not timings, "outputs that print the build machine's timings:\n" + "\n".join(timings)


def test_the_timing_pattern_finds_timings_and_nothing_else():
    for printed in ("10 epochs in 87.6 s", "checked in 2.5 s\n", "ran in 73 s", "390 steps, 4.0 s",
                    "seconds                      6.2400", "took 12 ms"):
        assert TIMING.search(printed), printed
    for printed in ("10 epochs of 10000 pairs, 390 steps", "3 shapes", "0.5 scale", "2 sizes",
                    "seconds                      (the run's wall time; not shown here)",
                    "= 12.857142857142856\nS[1, 1]", "scale    30.2073\nseconds   (not shown)"):
        assert not TIMING.search(printed), printed


def test_every_figure_has_a_caption(site):
    """As the course page captions each figure: every picture of every page (Markdown pages,
    notebooks, API pages) is in a <figure> with a <figcaption> that has text."""
    pictures, bad = 0, []
    for page in sorted(site.rglob("*.html")):
        text = page.read_text(encoding="utf-8")
        pictures += len(re.findall(r"<img\b", text))
        bad += [f"{page.relative_to(site)}: {what}" for what in _uncaptioned(text)]
    assert pictures >= 40, f"only {pictures} pictures on the whole site: is the check looking?"
    assert not bad, f"{len(bad)} figures without a caption:\n" + "\n".join(bad[:40])


# ----------------------------------------------------------------------------- the browser

@pytest.fixture(scope="module")
def server(site):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing, so MathJax rendering is not checked here; "
                    "apt-get install -y chromium (Debian) to run these tests")

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def _rendered_dom(url: str, tmp_path: Path) -> str:
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'chromium'}",
         "--virtual-time-budget=20000", "--dump-dom", url],
        capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0 and "<html" in proc.stdout, \
        f"chromium could not load {url}:\n{proc.stderr[-2000:]}"
    return proc.stdout


def _math_pages():
    pages = ["derivations/", "worked-example/", "siglip/", "api/normalize/"]
    for notebook in NOTEBOOKS:
        text = (ROOT / notebook).read_text(encoding="utf-8")
        if "$" in text:
            pages.append(Path(notebook).with_suffix("").as_posix() + "/")
    return pages


@pytest.mark.parametrize("page", _math_pages())
def test_mathjax_typesets_every_formula(server, page, tmp_path):
    dom = _rendered_dom(server + page, tmp_path)
    assert dom.count("<mjx-container") > 0, f"{page}: MathJax typeset nothing"
    assert "<mjx-merror" not in dom and "data-mjx-error=" not in dom, \
        f"{page}: MathJax reports a TeX error: " + \
        re.search(r"data-mjx-error=\"[^\"]*\"|<mjx-merror.{0,200}", dom, re.S).group(0)
    parsed = _Page()
    parsed.feed(dom)
    text = " ".join(parsed.text)
    for raw in ("\\(", "\\)", "\\[", "\\]", "$$", "\\begin{", "\\frac"):
        assert raw not in text, f"{page}: raw TeX {raw!r} is left in the text: " + \
            text[max(0, text.index(raw) - 80):text.index(raw) + 80]
    inline = re.search(r"\$[^$\s][^$]{0,200}?\$", text)
    assert inline is None, f"{page}: an untypeset $...$ formula: {inline and inline.group(0)}"


# ----------------------------------------------------------------------------- layout, in a browser

# One Chromium run loads every page in an iframe of a given width (a phone's, a laptop's)
# and measures, after MathJax has typeset it, what a reader would see cut off or spilling.
PROBE = r"""<!doctype html><html><body><pre id="out"></pre><script>
const pages = %(pages)s, width = %(width)d, mode = "%(mode)s", results = {};
// mode "figures": each picture of the page's content, as it is drawn and as it was made
function pictures(win, doc) {
  return [...doc.querySelectorAll("article img")].map((img) => ({
    src: img.currentSrc.startsWith("data:") ? "data:" : img.currentSrc,
    alt: (img.alt || "").slice(0, 50), natural: img.naturalWidth,
    shown: img.getBoundingClientRect().width, notebook: !!img.closest(".jupyter-wrapper")}));
}
function layout(win, doc) {
  const vw = doc.documentElement.clientWidth, found = [];
  const where = (el) => (el.id ? "#" + el.id : "") + " " + el.tagName.toLowerCase() + "." +
      (el.className && el.className.baseVal === undefined ? el.className : "").split(" ")[0] +
      ": " + (el.textContent || "").trim().slice(0, 60);
  if (doc.documentElement.scrollWidth > vw + 1)
    found.push("page body " + doc.documentElement.scrollWidth + " px wide in " + vw + " px");
  // display math must fit a laptop's column (split into aligned lines, not scrolled);
  // on a phone a long formula scrolls inside its own box
  for (const m of width < 1000 ? [] :
       doc.querySelectorAll('.md-content mjx-container[display="true"]')) {
    const box = m.closest(".arithmatex") || m.parentElement;
    if (box.scrollWidth > box.clientWidth + 2 || m.scrollWidth > m.clientWidth + 2)
      found.push("display math cut off: " + where(box));
  }
  // inline math inside a paragraph or list item must not run past the column
  for (const m of doc.querySelectorAll('.md-content mjx-container:not([display="true"])')) {
    const col = m.closest("p, li, td, dd");
    if (col && m.getBoundingClientRect().right > col.getBoundingClientRect().right + 2 &&
        !m.closest("table, .jp-OutputArea"))
      found.push("inline math clipped: " + where(col));
  }
  // an identifier in a table cell is not broken across lines ("block_size=81|92")
  for (const code of doc.querySelectorAll(".md-content td code, .md-content th code"))
    if (code.getClientRects().length > 1)
      found.push("code broken across lines in a table: " + where(code));
  // the copy button must not sit on the text of a code line
  for (const btn of doc.querySelectorAll(".md-content .md-clipboard")) {
    const pre = btn.closest("pre"), code = pre && pre.querySelector("code");
    if (!code) continue;
    const b = btn.getBoundingClientRect(), range = doc.createRange();
    range.selectNodeContents(code);
    for (const r of range.getClientRects())
      if (r.right > b.left + 1 && r.left < b.right && r.bottom > b.top && r.top < b.bottom &&
          r.width > 0) { found.push("copy button covers code: " + where(pre)); break; }
  }
  // a number a notebook printed is not cut across lines ("3e-" | "05")
  for (const pre of doc.querySelectorAll(".jupyter-wrapper .jp-OutputArea-output pre")) {
    const walker = doc.createTreeWalker(pre, NodeFilter.SHOW_TEXT);
    let cut = null;
    for (let node = walker.nextNode(); node && !cut; node = walker.nextNode())
      for (const m of node.data.matchAll(/[-+]?\d[\d.]*(?:e[-+]?\d+)?/g)) {
        const range = doc.createRange();
        range.setStart(node, m.index); range.setEnd(node, m.index + m[0].length);
        if (range.getClientRects().length > 1) { cut = m[0]; break; }
      }
    if (cut) found.push("a printed number broken across lines: " + cut + " in " + where(pre));
  }
  return found;
}
async function run() {
  for (const page of pages) {
    const frame = document.createElement("iframe");
    frame.style.width = width + "px"; frame.style.height = "1200px";
    document.body.appendChild(frame);
    await new Promise((ok) => { frame.onload = ok; frame.src = page; });
    const win = frame.contentWindow;
    try { if (win.MathJax && win.MathJax.startup) await win.MathJax.startup.promise; }
    catch (e) { results[page] = ["MathJax failed: " + e]; continue; }
    await new Promise((ok) => setTimeout(ok, 300));
    results[page] = (mode === "figures" ? pictures : layout)(win, frame.contentDocument);
    frame.remove();
  }
  document.getElementById("out").textContent = "RESULTS" + JSON.stringify(results) + "END";
}
run();
</script></body></html>"""


def _content_pages():
    pages = [p.removesuffix(".md").removesuffix("index") + "/" for p in PAGES]
    pages = ["" if p == "/" else p.replace("//", "/") for p in pages]
    return pages + [Path(n).with_suffix("").as_posix() + "/" for n in NOTEBOOKS]


def _probe(server, site, width, tmp_path, mode="layout", pages=None):
    import json

    pages = _content_pages() if pages is None else pages
    driver = site / f"__probe_{mode}_{width}.html"
    driver.write_text(PROBE % {"pages": json.dumps(["/" + p for p in pages]), "width": width,
                               "mode": mode}, encoding="utf-8")
    try:
        proc = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'chromium'}", f"--window-size={width + 40},1300",
             "--virtual-time-budget=600000", "--dump-dom", server + driver.name],
            capture_output=True, text=True, timeout=600)
    finally:
        driver.unlink()
    found = re.search(r"RESULTS(.*?)END", html.unescape(proc.stdout), flags=re.DOTALL)
    assert found, f"the layout probe did not finish:\n{proc.stderr[-2000:]}"
    return json.loads(found.group(1))


@pytest.mark.parametrize("width", [390, 1280])
def test_nothing_spills_or_is_cut_off_at_a_phones_and_a_laptops_width(server, site, width,
                                                                       tmp_path):
    """No page body wider than the screen, no display formula wider than its column (split
    it into aligned lines), no inline formula past its paragraph, no identifier in a table
    broken across lines, no code under the copy button: at 390 px (a phone) and 1280 px
    (a laptop)."""
    results = _probe(server, site, width, tmp_path)
    assert set(results) == {"/" + p for p in _content_pages()}
    bad = [f"{page}: {problem}" for page, problems in results.items() for problem in problems]
    assert not bad, f"{len(bad)} layout defects at {width} px:\n" + "\n".join(bad[:60])


# ----------------------------------------------------------------------- figures, in a browser

# A notebook's figure is made at the inline backend's 100 dpi.  At a laptop's width (1280 px)
# it must be shown at no less than this fraction of the size it was made at: matplotlib's
# default 10-point text is 13.9 px there, so at 0.7 it reads at 9.7 px, and the 9-point
# legends at 8.75 px.  A figure drawn 14 in wide (1400 px) for a 690 px column fails (49%).
FIGURE_SCALE = 0.7
# The site's diagrams (docs/figures/*.svg) draw their smallest words at this many pixels or
# more on screen, on a phone (390 px: docs/index.md picks a portrait drawing there) and on
# a laptop (1280 px).
DIAGRAM_TEXT_PX = 9.0


def _page_of(notebook: str) -> str:
    return Path(notebook).with_suffix("").as_posix() + "/"


@pytest.fixture(scope="module")
def notebook_figures(server, site, tmp_path_factory):
    pages = [_page_of(n) for n in NOTEBOOKS]
    return _probe(server, site, 1280, tmp_path_factory.mktemp("figures"), "figures", pages)


# Not yet drawn for the column (issue 13, part 1): strict, so a fixed one must leave the list.
FIGURES_LEFT: set[str] = set()


@pytest.mark.parametrize("notebook", [
    pytest.param(n, marks=pytest.mark.xfail(strict=True, reason="figures still too wide"))
    if n in FIGURES_LEFT else n for n in NOTEBOOKS])
def test_a_notebooks_figures_are_drawn_for_the_column_they_are_shown_in(notebook_figures,
                                                                       notebook):
    """Every figure of a notebook, at 1280 px, is shown at FIGURE_SCALE of its size or more:
    a figure drawn twice as wide as the column is shown at half size, and its text with it."""
    shown = [f for f in notebook_figures["/" + _page_of(notebook)] if f["notebook"]]
    small = [f"{f['alt']!r}: {f['natural']} px wide, shown at {f['shown']:.0f} px "
             f"({f['shown'] / f['natural']:.0%})"
             for f in shown if f["natural"] and f["shown"] < FIGURE_SCALE * f["natural"]]
    assert not small, f"{notebook}: figures shown below {FIGURE_SCALE:.0%} of their size " \
        "(draw them narrower: figsize about 6.5-7 in wide, or stack the panels):\n" + \
        "\n".join(small)


def _svg_text(path: Path) -> tuple[float, float]:
    """The smallest font size of an SVG's text and the width of its viewBox (same units)."""
    text = path.read_text(encoding="utf-8")
    view = re.search(r'viewBox="[-\d.]+ [-\d.]+ ([\d.]+) [\d.]+"', text)
    sizes = [float(s) for s in re.findall(r"font-size:\s*([\d.]+)px", text)]
    assert view and sizes, f"{path.name}: no viewBox or no text with a font-size"
    return min(sizes), float(view[1])


def test_the_diagram_text_measure_reads_a_drawing():
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        svg = Path(tmp) / "x.svg"
        svg.write_text('<svg viewBox="0 0 400 100"><text style="font-size: 12px">a</text>'
                       '<text style="font: 9.5px \'DejaVu Sans\'; font-size: 9.5px">b</text>'
                       "</svg>", encoding="utf-8")
        assert _svg_text(svg) == (9.5, 400.0)


DIAGRAMS = sorted(p.name for p in (DOCS / "figures").glob("*.svg")
                  if not p.stem.endswith("-narrow"))  # a -narrow twin is the phone's drawing
# Not yet readable (issue 13, part 1): strict, so a fixed one must leave the list.
DIAGRAMS_LEFT: set[tuple[int, str]] = set()


@pytest.fixture(scope="module")
def diagrams_shown(server, site, tmp_path_factory):
    """width -> {page: pictures} for the pages that show a diagram, probed once per width."""
    pages = sorted({p.parent.relative_to(site).as_posix() + "/" for p in site.rglob("*.html")
                    if re.search(r'figures/[\w-]+\.svg"', p.read_text(encoding="utf-8"))})
    pages = ["" if p == "./" else p for p in pages]
    probed = {}

    def shown(width):
        if width not in probed:
            probed[width] = _probe(server, site, width, tmp_path_factory.mktemp("diagrams"),
                                   "figures", pages)
        return probed[width]
    return shown


@pytest.mark.parametrize("width, diagram", [
    pytest.param(w, d, marks=pytest.mark.xfail(strict=True, reason="text still too small"))
    if (w, d) in DIAGRAMS_LEFT else (w, d) for w in (390, 1280) for d in DIAGRAMS])
def test_the_diagrams_words_are_readable_on_a_phone_and_a_laptop(diagrams_shown, site, width,
                                                                 diagram):
    """Each docs/figures/*.svg picture, as the browser picks and sizes it (a <picture> may
    offer a narrow drawing for a phone), shows its smallest text at DIAGRAM_TEXT_PX or more."""
    small, seen = [], 0
    names = {diagram, diagram.replace(".svg", "-narrow.svg")}
    for page, figures in diagrams_shown(width).items():
        for f in figures:
            name = Path(urlsplit(f["src"]).path).name
            if name not in names:
                continue
            seen += 1
            font, view = _svg_text(site / unquote(urlsplit(f["src"]).path).lstrip("/"))
            px = font * f["shown"] / view
            if px < DIAGRAM_TEXT_PX:
                small.append(f"{page}: {name} shown {f['shown']:.0f} px wide, its smallest "
                             f"text {px:.1f} px")
    assert seen, f"{diagram} is shown on no page at {width} px: is the check looking?"
    assert not small, f"diagram text too small to read at {width} px:\n" + "\n".join(small)
