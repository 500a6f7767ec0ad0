"""A Griffe extension: numclip's reST bits in docstrings, turned into the site's Markdown.

The docstrings are Google style (``Args:``, ``Returns:``) with a few reST
constructs that read well in ``help()`` but mean nothing to Markdown:

* ``.. math:: formula`` (continued on indented lines) becomes a ``$$ ... $$``
  block, which pymdownx.arithmatex hands to MathJax;
* ``:math:`x``` becomes ``\\(x\\)``;
* ``:func:`name```, ``:meth:``, ``:class:``, ``:mod:``, ``:data:``, ``:attr:``
  become cross-references to the API pages (mkdocs-autorefs), resolved the way
  Sphinx would: the enclosing class, then the module, then ``numclip``;
* a paragraph ending in ``::`` (a reST literal block) ends in ``:`` instead.

``mkdocs.yml`` loads it with ``extensions: [docs/hooks/griffe_rst.py:ReSTToMarkdown]``.
"""

from __future__ import annotations

import re
import textwrap

from griffe import Extension, Object

MATH_BLOCK = re.compile(r"^(?P<indent>[ ]*)\.\. math::[ ]*(?P<first>.*)\n"
                        r"(?P<rest>(?:(?P=indent)[ ]+\S.*\n?)*)", flags=re.MULTILINE)
MATH_ROLE = re.compile(r":math:`(?P<tex>[^`]+)`")
XREF_ROLE = re.compile(r":(?:func|meth|class|mod|data|attr|obj):`~?(?P<name>[^`]+)`")
LITERAL_INTRO = re.compile(r"(\S)::[ ]*\n(?=[ ]*\n)")


class ReSTToMarkdown(Extension):
    """Rewrite each docstring once the whole object tree is known."""

    def on_object(self, *, obj: Object, loader, **kwargs) -> None:
        if obj.is_alias or obj.docstring is None:
            return
        obj.docstring.value = convert(obj.docstring.value, lambda name: _resolve(obj, loader, name))


def convert(text: str, resolve) -> str:
    """The Markdown for one docstring; ``resolve(name)`` gives a full path or None."""
    text = MATH_BLOCK.sub(_math_block, text if text.endswith("\n") else text + "\n").rstrip("\n")
    text = MATH_ROLE.sub(lambda m: rf"\({m['tex']}\)", text)
    text = XREF_ROLE.sub(lambda m: _xref(m["name"], resolve(m["name"])), text)
    return LITERAL_INTRO.sub(r"\1:\n", text)


def _math_block(match: re.Match) -> str:
    indent = match["indent"]
    rest = textwrap.dedent(match["rest"]).strip("\n")
    body = "\n".join(line for line in (match["first"].strip(), rest) if line)
    block = "\n".join(indent + line for line in ["", "$$", *body.splitlines(), "$$", ""])
    return block + "\n"


def _xref(name: str, path: str | None) -> str:
    shown = name.removesuffix("()")
    if path is None:
        return f"`{shown}`"
    # optional: an object the API pages do not render (a private helper) stays plain code
    return f'<autoref identifier="{path}" optional><code>{shown}</code></autoref>'


def _resolve(obj: Object, loader, name: str) -> str | None:
    name = name.removesuffix("()")
    scopes = []
    here = obj if obj.is_class or obj.is_module else obj.parent
    while here is not None:
        scopes.append(here.path)
        here = here.parent
    for candidate in [f"{scope}.{name}" for scope in scopes] + [name, f"numclip.{name}"]:
        try:
            loader.modules_collection[candidate]
        except (KeyError, ValueError):
            continue
        return candidate
    return None
