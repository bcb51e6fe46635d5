"""The design parameters file: what the planner decided, as the designs read it.

The planner (phoenix_npu_tools.npu_model, in the developers' tools package) plans every stage of
kernels/manifest.json, checks it against npu1's limits and writes the result as JSON:

    phoenix-npu plan --write-params kernels/build/design_params.json

The designs (kernels/*/aie/design.py) and build_xclbin.py read that file through this module and
import nothing from the Python packages: the dependency goes one way, tools -> kernels. The file
records the manifest's SHA-256, so a design refuses parameters planned for another manifest.

Each stage record holds three objects, rebuilt here with the attribute names the designs use:
  kernel  the manifest kernel (op, M/K/N, rows/cols, scale, ...; describe())
  design  the checked design (name, op, params, buffers, l1, l2, transfers, ...)
  stage   the manifest stage (kernel_name, args, insts_path, xclbin_path)
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

VERSION = 1
HERE = Path(__file__).resolve().parent
KERNELS = HERE.parent.parent
DEFAULT_PATH = KERNELS / "build" / "design_params.json"
WRITE_HINT = "phoenix-npu plan --write-params {path} (the developer tools: pip install ./tools)"


class ParamsError(ValueError):
    """The parameters file is missing, malformed or planned for another manifest."""


def manifest_digest(manifest_path) -> str:
    return hashlib.sha256(Path(manifest_path).read_bytes()).hexdigest()


class Kernel(SimpleNamespace):
    def describe(self) -> str:
        return self.describe_text


def _kernel(d: dict) -> Kernel:
    return Kernel(**d)


def _design(d: dict) -> SimpleNamespace:
    d = dict(d)
    d["buffers"] = {name: tuple(v) for name, v in d["buffers"].items()}
    d["transfers"] = [SimpleNamespace(**t) for t in d["transfers"]]
    d["vector_rows"] = [tuple(v) for v in d.get("vector_rows", [])]
    return SimpleNamespace(**d)


def _stage(d: dict) -> SimpleNamespace:
    d = dict(d)
    d["insts_path"] = Path(d["insts_path"]) if d.get("insts_path") else None
    d["xclbin_path"] = Path(d["xclbin_path"]) if d.get("xclbin_path") else None
    return SimpleNamespace(**d)


def stages_from(data: dict) -> list:
    """[(kernel, design, stage)] from the parsed parameters (see the module docstring)."""
    if not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(data.get("stages"), list):
        raise ParamsError(f"not a version-{VERSION} design parameters file")
    try:
        return [(_kernel(s["kernel"]), _design(s["design"]), _stage(s["stage"])) for s in data["stages"]]
    except (KeyError, TypeError) as e:
        raise ParamsError(f"a stage record lacks a field: {e}") from None


def load(path=DEFAULT_PATH, manifest_path=None) -> tuple[dict, list]:
    """(the file's header, [(kernel, design, stage)]) from a parameters file; with
    `manifest_path`, refuses parameters planned for another manifest."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ParamsError(f"no design parameters at {path}: write them with "
                          + WRITE_HINT.format(path=path)) from None
    except ValueError as e:
        raise ParamsError(f"{path} is not JSON ({e}): rewrite it with " + WRITE_HINT.format(path=path)) from None
    stages = stages_from(data)
    if manifest_path is not None and data.get("manifest_sha256") != manifest_digest(manifest_path):
        raise ParamsError(f"{path} was planned for another version of {manifest_path}: rewrite it with "
                          + WRITE_HINT.format(path=path))
    return {k: v for k, v in data.items() if k != "stages"}, stages
