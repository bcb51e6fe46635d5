"""The planner's side of the design parameters file (the designs' side, and the file's format:
kernels/common/aie/design_params.py). `phoenix-npu plan --write-params PATH` writes it; the
kernel Makefiles (kernels/common/aie/aie.mk) call that before they run a design.py."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

VERSION = 1  # = kernels/common/aie/design_params.VERSION (a test checks)


class DesignCheckError(ValueError):
    """A planned design breaks an npu1 limit: nothing is written."""


def _plain(value):
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def kernel_record(kernel) -> dict:
    """A manifest kernel's fields (its stages apart), as the designs read them."""
    d = {f.name: _plain(getattr(kernel, f.name)) for f in dataclasses.fields(kernel) if f.name != "stages"}
    d["describe_text"] = kernel.describe()
    return d


def stage_records(kernel, check: bool = True) -> list[dict]:
    """[{"kernel", "design", "stage"}] for every stage of one manifest kernel: planned
    (npu_model.designs_for) and checked against npu1's limits (else DesignCheckError)."""
    from .npu_model import check_design, designs_for

    out = []
    for design, stage in zip(designs_for(kernel), kernel.stages, strict=True):
        problems = check_design(design) if check else []
        if problems:
            raise DesignCheckError(f"{design.name}: violates npu1's limits: {problems}")
        out.append({"kernel": kernel_record(kernel), "design": _plain(dataclasses.asdict(design)),
                    "stage": _plain(dataclasses.asdict(stage))})
    return out


def params_data(manifest_path=None) -> dict:
    from phoenix_npu.manifest import load_manifest

    m = load_manifest(manifest_path, check_artifacts=False)
    return {"version": VERSION, "generator": "phoenix-npu plan --write-params (phoenix_npu_tools.npu_model)",
            "manifest": str(m.path), "manifest_sha256": hashlib.sha256(Path(m.path).read_bytes()).hexdigest(),
            "xclbin": m.xclbin, "stages": [r for k in m.kernels for r in stage_records(k)]}


def write_params(path, manifest_path=None) -> dict:
    """Plan, check and write the parameters file atomically; returns what was written."""
    data = params_data(manifest_path)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)
    return data
