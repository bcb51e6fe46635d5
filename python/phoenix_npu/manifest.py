"""The NPU kernel manifest, Python mirror of provider/devices/xrt/manifest.cc.

Same format (kernels/manifest.schema.json, version 1), same validation and the same kind of
error messages, so `phoenix-npu doctor` and the tests report what the provider would.

    m = load_manifest("kernels/manifest.json", check_artifacts=False)
    m.find("matmul", M=1500, K=512, N=2048, bias=True, epilogue="gelu_erf")
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

MANIFEST_VERSION = 1
OPS = ("matmul", "layernorm", "softmax", "gelu")


class ManifestError(ValueError):
    """The manifest is missing, not JSON, the wrong version, incomplete, or names missing files."""


@dataclass
class ManifestKernel:
    op: str
    xclbin: str
    insts: str
    args: list
    xclbin_path: Path
    insts_path: Path
    kernel_name: str = "MLIR_AIE"
    dtype: str = "bf16"
    scale: float = 1.0
    batch: int = 1
    M: int = 0
    K: int = 0
    N: int = 0
    b_layout: str = "row_major"
    epilogue: str = "none"
    bias: bool = False
    residual: bool = False
    rows: int = 0
    cols: int = 0
    beta: bool = True
    epsilon: float = 1e-5
    n: int = 0
    mode: str = "erf"
    extra: dict = field(default_factory=dict)

    def describe(self) -> str:
        if self.op == "matmul":
            s = f"matmul {self.batch}x" if self.batch > 1 else "matmul "
            s += f"{self.M}x{self.K}x{self.N}"
            s += " B^T" if self.b_layout == "col_major" else ""
            s += " +bias" if self.bias else ""
            s += f" {self.epilogue}" if self.epilogue != "none" else ""
            s += " +residual" if self.residual else ""
            return s + (f" alpha={self.scale:g}" if self.scale != 1.0 else "")
        if self.op == "gelu":
            return f"gelu {self.n} {self.mode}"
        return f"{self.op} {self.rows}x{self.cols}" + (
            f" scale={self.scale:g}" if self.op == "softmax" and self.scale != 1.0 else "")

    def artifacts_present(self) -> bool:
        return self.xclbin_path.is_file() and self.insts_path.is_file()


@dataclass
class Manifest:
    path: Path
    version: int
    device: str
    kernels: list

    def find(self, op: str, **want) -> ManifestKernel | None:
        """The kernel with this op whose fields equal every given value (e.g. M=1500, bias=True)."""
        for k in self.kernels:
            if k.op == op and all(_same(getattr(k, key), v) for key, v in want.items()):
                return k
        return None


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return abs(float(a) - float(b)) <= 1e-6 * max(abs(float(a)), abs(float(b)), 1e-30)
    return a == b


def expected_args(op: str, bias=False, residual=False, beta=True) -> list:
    if op == "matmul":
        return ["A", "B"] + (["bias"] if bias else []) + (["residual"] if residual else []) + ["C"]
    if op == "layernorm":
        return ["x", "gamma"] + (["beta"] if beta else []) + ["y"]
    return ["x", "y"]


def default_manifest_path() -> Path:
    """$PHOENIX_NPU_MANIFEST, else kernels/manifest.json next to the package, else the repo's."""
    env = os.environ.get("PHOENIX_NPU_MANIFEST")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent
    for cand in (here / "kernels" / "manifest.json", here.parent.parent / "kernels" / "manifest.json"):
        if cand.is_file():
            return cand
    return here / "kernels" / "manifest.json"


def _reject_duplicates(pairs):
    seen = {}
    for k, v in pairs:
        if k in seen:
            raise ManifestError(f'duplicate key "{k}"')
        seen[k] = v
    return seen


def parse_manifest(text: str, path: str | Path = "<string>", check_artifacts: bool = True) -> Manifest:
    path = Path(path)
    where = f"kernel manifest {path}"
    try:
        root = json.loads(text, object_pairs_hook=_reject_duplicates)
    except json.JSONDecodeError as e:
        raise ManifestError(f"{where} is not valid JSON: line {e.lineno}, column {e.colno}: {e.msg}") from None
    except ManifestError as e:
        raise ManifestError(f"{where} is not valid JSON: {e}") from None
    if not isinstance(root, dict):
        raise ManifestError(f"{where}: the top level must be an object")
    if "version" not in root:
        raise ManifestError(f'{where}: missing field "version"')
    ver = root["version"]
    if isinstance(ver, bool) or not isinstance(ver, (int, float)) or int(ver) != ver:
        raise ManifestError(f'{where}: "version" must be an integer')
    if int(ver) != MANIFEST_VERSION:
        raise ManifestError(f"{where}: version {int(ver)} is not supported; this build reads version "
                            f"{MANIFEST_VERSION} (rebuild the kernels or update phoenix-npu)")
    device = root.get("device", "")
    if device not in ("", "npu1"):
        raise ManifestError(f'{where}: device "{device}" is not npu1 (Phoenix / Hawk Point)')
    if "kernels" not in root:
        raise ManifestError(f'{where}: missing field "kernels"')
    if not isinstance(root["kernels"], list):
        raise ManifestError(f'{where}: "kernels" must be an array')
    base = path.parent
    kernels = [_parse_kernel(f"{where}: kernels[{i}]", o, base, check_artifacts) for i, o in enumerate(root["kernels"])]
    return Manifest(path, MANIFEST_VERSION, device or "npu1", kernels)


def _parse_kernel(where: str, o, base: Path, check_artifacts: bool) -> ManifestKernel:
    if not isinstance(o, dict):
        raise ManifestError(f"{where}: each kernel must be an object")
    op = o.get("op")
    if isinstance(op, str):
        where = f"{where} ({op})"

    def req(key, typ):
        if key not in o:
            raise ManifestError(f'{where}: missing field "{key}"')
        return opt(key, typ, None)

    def opt(key, typ, default):
        if key not in o:
            return default
        v = o[key]
        if typ is int:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or int(v) != v or v < 1:
                raise ManifestError(f'{where}: field "{key}" must be an integer >= 1')
            return int(v)
        if typ is float:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ManifestError(f'{where}: field "{key}" must be a number')
            return float(v)
        if typ is bool:
            if not isinstance(v, bool):
                raise ManifestError(f'{where}: field "{key}" must be true or false')
            return v
        if not isinstance(v, str) or (default is None and not v):
            raise ManifestError(f'{where}: field "{key}" must be a non-empty string')
        return v

    def one_of(key, value, allowed):
        if value not in allowed:
            raise ManifestError(f'{where}: field "{key}" is "{value}"; expected one of {", ".join(allowed)}')

    op = req("op", str)
    one_of("op", op, OPS)
    fields = dict(op=op, dtype=opt("dtype", str, "bf16"), scale=opt("scale", float, 1.0))
    one_of("dtype", fields["dtype"], ("bf16",))
    if op == "matmul":
        fields.update(M=req("M", int), K=req("K", int), N=req("N", int), batch=opt("batch", int, 1),
                      b_layout=opt("b_layout", str, "row_major"), epilogue=opt("epilogue", str, "none"),
                      bias=opt("bias", bool, False), residual=opt("residual", bool, False))
        one_of("b_layout", fields["b_layout"], ("row_major", "col_major"))
        one_of("epilogue", fields["epilogue"], ("none", "gelu_erf", "gelu_tanh"))
    elif op in ("layernorm", "softmax"):
        fields.update(rows=req("rows", int), cols=req("cols", int))
        if op == "layernorm":
            fields.update(beta=opt("beta", bool, True), epsilon=opt("epsilon", float, 1e-5))
    else:
        fields.update(n=req("n", int), mode=opt("mode", str, "erf"))
        one_of("mode", fields["mode"], ("erf", "tanh"))
    xclbin, insts = req("xclbin", str), req("insts", str)
    kernel_name = opt("kernel_name", str, "MLIR_AIE")
    if "args" not in o:
        raise ManifestError(f'{where}: missing field "args"')
    args = o["args"]
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise ManifestError(f'{where}: field "args" must be an array of strings')
    want = expected_args(op, fields.get("bias", False), fields.get("residual", False), fields.get("beta", True))
    if args != want:
        raise ManifestError(f'{where}: "args" is [{", ".join(args)}]; this kernel needs [{", ".join(want)}] in that order')
    xp = Path(xclbin) if Path(xclbin).is_absolute() else base / xclbin
    ip = Path(insts) if Path(insts).is_absolute() else base / insts
    if check_artifacts:
        if not xp.is_file():
            raise ManifestError(f"{where}: xclbin not found: {xp} (build it with `make` in kernels/{op}/aie "
                                "where mlir-aie and Peano are installed)")
        if not ip.is_file():
            raise ManifestError(f"{where}: instruction file not found: {ip} (built next to the xclbin by "
                                f"kernels/{op}/aie/Makefile)")
    known = set(ManifestKernel.__dataclass_fields__) | {"tiles"}
    extra = {k: v for k, v in o.items() if k not in known}
    return ManifestKernel(xclbin=xclbin, insts=insts, args=list(args), xclbin_path=xp, insts_path=ip,
                          kernel_name=kernel_name, extra=extra, **fields)


def load_manifest(path: str | Path | None = None, check_artifacts: bool = True) -> Manifest:
    path = Path(path) if path else default_manifest_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError(f"kernel manifest not found: {path} (build the NPU kernels, or pass the manifest "
                            "path; `phoenix-npu doctor` checks it)") from None
    except OSError as e:
        raise ManifestError(f"kernel manifest {path} cannot be read: {e}") from None
    return parse_manifest(text, path, check_artifacts)
