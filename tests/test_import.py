"""How numclip's modules import each other: no private helper crosses a module boundary.

DESIGN.md: a private helper stays in its module; if two modules need it, it is public
(in ``backend``, say) with a docstring, so ``from numclip.x import _y`` is a smell.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "numclip"


def _imported_private_names(path):
    """``(line, module, name)`` for every private name ``path`` imports from numclip."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("numclip"):
            for alias in node.names:
                name = alias.name
                # a private *module* (numclip._cupy_kernels) is the package's, not a helper
                where = ROOT.joinpath(*node.module.split("."), name)
                is_module = where.with_suffix(".py").is_file() or where.is_dir()
                if name.startswith("_") and not is_module:
                    found.append((node.lineno, node.module, name))
    return found


def test_no_module_imports_another_modules_private_helper():
    offenders = {str(path.relative_to(ROOT)): names for path in sorted(PACKAGE.rglob("*.py"))
                 if (names := _imported_private_names(path))}
    assert offenders == {}, f"private helpers imported across modules: {offenders}"
