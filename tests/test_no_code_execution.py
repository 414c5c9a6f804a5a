"""A loaded file cannot execute code (issue 8).

(a) Statically, over every .py under models/ and app/ (parsed with ``ast``, so strings and comments do not count
    and ``model.eval()`` is not ``eval()``): no pickle (nor marshal, shelve, dill, cloudpickle, joblib), no
    ``torch.load`` without ``weights_only=True``, no ``torch.jit.load`` / ``torch.hub.load``, no
    ``numpy.load(..., allow_pickle=True)``, no unsafe ``yaml.load``, no ``eval`` / ``exec`` / ``__import__``.
(b) Dynamically: checkpoint folders whose field.safetensors is a pickle (or torch.save archive, NumPy object array,
    YAML tag) that would create a marker file if anything unpickled it, and whose field.json carries
    ``__reduce__``-style entries: loading raises CheckpointError and the marker never appears. The same payloads
    under image, video and mesh suffixes, and scene documents with such entries, are refused as well.
"""
from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass

import pytest

import fuzz_inputs as F
from models.checkpoint import CheckpointError, load_field, save_field
from models.fields import FieldConfig, build_field
from models.scene_io import scene_from_dict, scene_to_dict
from models.signals import SignalError, load_signal

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCANNED = ("models", "app")

FORBIDDEN_MODULES = {"pickle", "_pickle", "cPickle", "dill", "cloudpickle", "joblib", "marshal", "shelve",
                     "jsonpickle"}
"""Modules whose loaders run code from the data (importing one at all is refused)."""
FORBIDDEN_CALLS = {"eval", "exec", "__import__", "builtins.eval", "builtins.exec", "builtins.__import__",
                   "torch.jit.load", "torch.hub.load", "pandas.read_pickle", "yaml.unsafe_load", "yaml.full_load",
                   "yaml.full_load_all", "yaml.unsafe_load_all", "numpy.lib.format.read_array_header_1_0"}
SAFE_YAML_LOADERS = {"SafeLoader", "CSafeLoader", "BaseLoader", "CBaseLoader"}


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


def _dotted(node: ast.AST, aliases: dict[str, str]) -> str | None:
    """'torch.load' for ``torch.load`` / ``t.load`` (import torch as t) / ``load`` (from torch import load)."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(aliases.get(node.id, node.id))
    return ".".join(reversed(parts))


def _keyword(call: ast.Call, name: str):
    """The keyword argument ``name`` of a call: its literal value, ``...`` when not a literal, None when absent."""
    for keyword in call.keywords:
        if keyword.arg == name:
            return keyword.value.value if isinstance(keyword.value, ast.Constant) else ...
    return None


def unsafe_constructs(source: str, path: str = "<source>") -> list[Finding]:
    """Every construct of ``source`` that could run code from a loaded file (see the module docstring)."""
    tree = ast.parse(source, filename=path)
    aliases: dict[str, str] = {}
    findings: list[Finding] = []
    for node in ast.walk(tree):  # imports first, wherever they are (functions import lazily)
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:  # import torch.nn as nn -> nn is torch.nn
                    aliases[alias.asname] = alias.name
                else:  # import os.path -> os is os
                    aliases[alias.name.split(".")[0]] = alias.name.split(".")[0]
                if alias.name.split(".")[0] in FORBIDDEN_MODULES:
                    findings.append(Finding(path, node.lineno, f"imports {alias.name}"))
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
            if node.module.split(".")[0] in FORBIDDEN_MODULES:
                findings.append(Finding(path, node.lineno, f"imports from {node.module}"))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func, aliases)
        if name is None:
            continue
        if name in FORBIDDEN_CALLS:
            findings.append(Finding(path, node.lineno, f"calls {name}()"))
        elif name == "torch.load" and _keyword(node, "weights_only") is not True:
            findings.append(Finding(path, node.lineno, "calls torch.load() without weights_only=True"))
        elif name == "numpy.load" and _keyword(node, "allow_pickle") not in (None, False):
            findings.append(Finding(path, node.lineno, "calls numpy.load(allow_pickle=...)"))
        elif name in ("yaml.load", "yaml.load_all"):
            loader = next((k.value for k in node.keywords if k.arg == "Loader"), node.args[1] if len(node.args) > 1
                          else None)
            loader_name = (_dotted(loader, aliases) or "").rsplit(".", 1)[-1] if loader is not None else ""
            if loader_name not in SAFE_YAML_LOADERS:
                findings.append(Finding(path, node.lineno, f"calls {name}() without a safe Loader"))
    return findings


def _python_files() -> list[str]:
    files = []
    for top in SCANNED:
        for folder, _, names in os.walk(os.path.join(REPO, top)):
            files += [os.path.join(folder, n) for n in names if n.endswith(".py")]
    return sorted(files)


def test_no_module_under_models_or_app_can_run_code_from_data(record_property):
    files = _python_files()
    assert len(files) > 30, files
    findings = []
    for path in files:
        with open(path, encoding="utf-8") as handle:
            findings += unsafe_constructs(handle.read(), os.path.relpath(path, REPO))
    record_property("files_scanned", len(files))
    print(f"\nscanned {len(files)} files under {', '.join(SCANNED)}: {len(findings)} findings")
    assert not findings, "constructs that can run code from a loaded file:\n" + "\n".join(map(str, findings))


@pytest.mark.parametrize("source, expected", [
    ("import pickle\npickle.loads(b'')", ["imports pickle"]),
    ("from pickle import loads as l", ["imports from pickle"]),
    ("import marshal", ["imports marshal"]),
    ("import shelve as s", ["imports shelve"]),
    ("import dill", ["imports dill"]),
    ("import torch\ntorch.load('f')", ["calls torch.load() without weights_only=True"]),
    ("import torch as t\nt.load('f', weights_only=False)", ["calls torch.load() without weights_only=True"]),
    ("from torch import load\nload('f', map_location='cpu')", ["calls torch.load() without weights_only=True"]),
    ("import torch\ntorch.jit.load('f')", ["calls torch.jit.load()"]),
    ("import numpy as np\nnp.load('f', allow_pickle=True)", ["calls numpy.load(allow_pickle=...)"]),
    ("import numpy\nnumpy.load('f', allow_pickle=flag)", ["calls numpy.load(allow_pickle=...)"]),
    ("import yaml\nyaml.load(text)", ["calls yaml.load() without a safe Loader"]),
    ("import yaml\nyaml.load(text, Loader=yaml.FullLoader)", ["calls yaml.load() without a safe Loader"]),
    ("import yaml\nyaml.unsafe_load(text)", ["calls yaml.unsafe_load()"]),
    ("eval('1')", ["calls eval()"]),
    ("exec(code)", ["calls exec()"]),
    ("import builtins\nbuiltins.eval('1')", ["calls builtins.eval()"]),
    ("__import__('os')", ["calls __import__()"]),
    ("def f():\n    import pickle as p\n    return p.load(h)", ["imports pickle"]),
    # safe look-alikes
    ("import torch\ntorch.load('f', weights_only=True)", []),
    ("import numpy as np\nnp.load('f')\nnp.load('f', allow_pickle=False)", []),
    ("import yaml\nyaml.safe_load(t)\nyaml.load(t, Loader=yaml.SafeLoader)\nyaml.load(t, yaml.CSafeLoader)", []),
    ("model.eval()\nnet.train().eval()\nre.compile('x')\ns = 'eval(1) pickle torch.load'\n# exec(x)", []),
    ("from safetensors.torch import load_file\nload_file('f')\nimport json\njson.load(h)", []),
])
def test_the_static_check_finds_what_it_should(source, expected):
    assert [f.what for f in unsafe_constructs(source)] == expected


# ---- (b) crafted files -------------------------------------------------------------------------------------------

@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "MARKER_code_ran"
    yield str(path)
    assert not path.exists(), "a loaded file ran code: the marker file was created"


@pytest.fixture
def valid_checkpoint(tmp_path):
    folder = str(tmp_path / "valid")
    config = FieldConfig(kind="siren", in_features=2, out_features=1, width=8, depth=2)
    save_field(folder, build_field(config), config,
               {"name": "x", "kind": "image", "shape": [8, 8], "channels": 1, "extent": [1.0, 1.0]})
    return folder


def test_the_payloads_are_live(tmp_path):
    """Control: loading the payloads the careless way (in another process) does create the marker, so the tests
    below would notice a loader that ran them."""
    control = str(tmp_path / "control_marker")
    payloads = dict(F.pickle_payloads(control))
    path = tmp_path / "payload.pkl"
    path.write_bytes(payloads["a pickle (protocol 2) that creates a file"])
    subprocess.run([sys.executable, "-c", f"import pickle; pickle.load(open({str(path)!r}, 'rb'))"], check=True,
                   cwd=REPO, timeout=120)
    assert os.path.exists(control)
    os.remove(control)
    torch_path = tmp_path / "payload.pt"
    torch_path.write_bytes(payloads["a torch.save archive whose pickle creates a file"])
    subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {os.path.join(REPO, 'tests')!r}); "
                    f"import torch; torch.load({str(torch_path)!r}, weights_only=False)"], check=True, cwd=REPO,
                   timeout=300)
    assert os.path.exists(control)


def test_checkpoints_with_pickled_weights_are_refused(tmp_path, marker, valid_checkpoint):
    cases = 0
    for description, payload in F.pickle_payloads(marker):
        for target in (F.WEIGHTS_FILE, F.META_FILE):
            folder = str(tmp_path / f"evil{cases}")
            shutil.copytree(valid_checkpoint, folder)
            F.write(folder, target, payload)
            with pytest.raises(CheckpointError) as error:
                load_field(folder)
            assert folder in str(error.value) and "\n" not in str(error.value), f"{description}: {error.value}"
            assert not os.path.exists(marker), f"{description} as {target} ran code"
            cases += 1
    assert cases >= 16


def test_field_json_with_reduce_entries_is_refused(tmp_path, marker, valid_checkpoint):
    import json

    with open(os.path.join(valid_checkpoint, F.META_FILE), encoding="utf-8") as handle:
        meta = json.load(handle)
    cases = refused = 0
    for description, document in F.code_in_json_documents(meta, marker):
        folder = str(tmp_path / f"json{cases}")
        shutil.copytree(valid_checkpoint, folder)
        F.write(folder, F.META_FILE, json.dumps(document).encode())
        try:
            load_field(folder)  # extra top-level keys are data the loader never reads: it may load
        except CheckpointError as error:
            assert "\n" not in str(error), description
            refused += 1
        assert not os.path.exists(marker), f"field.json with {description} ran code"
        cases += 1
    print(f"\nfield.json with code-like entries: {cases} cases, {refused} refused, none ran code")
    assert cases >= 30 and refused >= cases // 2


def test_signal_files_holding_payloads_are_refused(tmp_path, marker):
    cases = 0
    for description, payload in F.pickle_payloads(marker):
        for suffix in F.ALL_SUFFIXES:
            path = F.write(str(tmp_path), f"payload{cases}{suffix}", payload)
            with pytest.raises(SignalError):
                load_signal(path, 32, frames=4)
            assert not os.path.exists(marker), f"{description} as {suffix} ran code"
            cases += 1
    assert cases >= 100


def test_scene_documents_with_reduce_entries_are_refused(marker):
    from models.scenes import DEFAULT_GROWTH_SCENE

    cases = 0
    for description, document in F.code_in_json_documents(scene_to_dict(DEFAULT_GROWTH_SCENE), marker):
        with pytest.raises(ValueError) as error:
            scene_from_dict(document)
        assert str(error.value).startswith("scene") and "\n" not in str(error.value), description
        assert not os.path.exists(marker), f"scene with {description} ran code"
        cases += 1
    assert cases >= 100
