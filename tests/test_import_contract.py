"""models/ is the Qt-free core: nothing in it may pull in Qt, plotting/GL toolkits or the app package."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
FORBIDDEN = ("PySide6", "PySide2", "shiboken6", "PyQt5", "PyQt6", "pyqtgraph", "vispy", "app")


def _model_modules() -> list[str]:
    return sorted(f"models.{p.stem}" for p in MODELS.glob("*.py") if p.stem != "__init__")


def test_models_package_has_modules():
    # guards the two tests below against silently scanning nothing
    assert {"models.fields", "models.layers", "models.training", "models.worker"} <= set(_model_modules())


def test_importing_every_models_module_loads_no_gui_or_app():
    code = (
        "import importlib, json, sys\n"
        f"mods = {_model_modules()!r}\n"
        "for m in ['models'] + mods:\n"
        "    importlib.import_module(m)\n"
        f"bad = sorted(k for k in sys.modules if k.split('.')[0] in {FORBIDDEN!r})\n"
        "print(json.dumps({'bad': bad, 'loaded': [m for m in mods if m in sys.modules]}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["loaded"] == _model_modules()
    assert report["bad"] == [], f"models.* imported forbidden modules: {report['bad']}"


def _imported_roots(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):  # also catches lazy imports inside functions
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level >= 2:  # "from ..app import x" climbs out of models/
                found.append((node.lineno, ".." + (node.module or "")))
            elif node.level == 0 and node.module:
                found.append((node.lineno, node.module.split(".")[0]))
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                "import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
            found.append((node.lineno, str(node.args[0].value).split(".")[0]))
    return found


def test_static_scan_of_models_sources_finds_no_forbidden_import():
    offenders = []
    sources = sorted(MODELS.glob("*.py"))
    assert sources
    for path in sources:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for lineno, root in _imported_roots(tree):
            if root in FORBIDDEN or root.startswith(".."):
                offenders.append(f"{path.name}:{lineno}: {root}")
    assert offenders == []


def test_static_scan_detects_forbidden_imports():
    # the scanner itself must catch top-level, nested, from- and relative-escape imports
    sample = (
        "import PySide6.QtCore\n"
        "def f():\n    from pyqtgraph import PlotWidget\n"
        "from ..app import cli\n"
        "import importlib\nimportlib.import_module('vispy.scene')\n"
    )
    roots = [root for _, root in _imported_roots(ast.parse(sample))]
    assert "PySide6" in roots and "pyqtgraph" in roots and "..app" in roots and "vispy" in roots
