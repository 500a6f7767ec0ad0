"""How numclip is imported: ``import numclip`` stays light, and no private helper crosses
a module boundary.

DESIGN.md: nothing in the core imports matplotlib at import time and ``import numclip``
stays fast; a private helper stays in its module (if two modules need it, it is public,
in ``backend`` say, with a docstring), so ``from numclip.x import _y`` is a smell.
"""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

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


# What `import numclip` must not load: the checkers and their grading package (for
# students checking their own code), SciPy (its BLAS comes with the first loss),
# matplotlib (figures), and the encoders and checkpoint loaders (numclip.nn,
# numclip.pretrained). Counted in sys.modules, not timed: a time depends on the machine.
NOT_ON_IMPORT = ["numclip.checks", "numclip.grading", "scipy", "matplotlib", "numclip.nn",
                 "numclip.pretrained", "numclip.plot", "numclip.train", "concurrent.futures"]


def _loaded_after(code):
    """The modules of NOT_ON_IMPORT (or their submodules) loaded by ``code`` in a fresh
    interpreter."""
    probe = (f"{code}\nimport json, sys\nheavy = {NOT_ON_IMPORT!r}\n"
             "print(json.dumps(sorted({h for h in heavy for m in sys.modules "
             "if m == h or m.startswith(h + '.')})))")
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True,
                         text=True, cwd=ROOT)
    return json.loads(out.stdout)


def test_import_numclip_loads_none_of_the_heavy_or_optional_parts():
    assert _loaded_after("import numclip") == []


def test_numclip_checks_is_still_there_on_first_use():
    """numclip.checks is imported lazily: the attribute, `from numclip import checks` and
    `import numclip.checks` all give the one module, with its checkers."""
    loaded = _loaded_after("import numclip\n"
                           "assert callable(numclip.checks.check_softmax)\n"
                           "from numclip import checks\n"
                           "import numclip.checks as again\n"
                           "assert checks is again is numclip.checks\n"
                           "assert 'checks' in dir(numclip)")
    assert "numclip.checks" in loaded and "numclip.grading" in loaded


def test_an_unknown_attribute_is_still_an_attribute_error():
    import numclip

    with pytest.raises(AttributeError, match="no_such_thing"):
        numclip.no_such_thing
