"""EPContext: compiled models (ORT's ep.context_enable=1) written and loaded on the emulated
device. A loaded region is rebuilt from its blob without planning (plans_loaded, not
plans_built), its outputs equal the original session's bit for bit, and a damaged, truncated,
foreign or version-mismatched blob gives a clear error, never a crash."""
from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper

import phoenix_npu
from conftest import EP, make_model

HEADER = 40  # magic 8, version 4, header size 4, payload 8, checksum 8, reserved 8


def fnv1a64(data: bytes) -> int:
    h = 1469598103934665603
    for b in data:
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


def reseal(blob: bytes) -> bytes:
    """The blob with its header's payload size and checksum made to match its payload."""
    payload = blob[HEADER:]
    return blob[:16] + struct.pack("<QQ", len(payload), fnv1a64(payload)) + blob[32:HEADER] + payload


def compile_model(src: Path, ctx: Path, embed: int, **opts):
    so = ort.SessionOptions()
    so.add_session_config_entry("ep.context_enable", "1")
    so.add_session_config_entry("ep.context_file_path", str(ctx))
    so.add_session_config_entry("ep.context_embed_mode", str(embed))
    return phoenix_npu.make_session(str(src), device="emulator", sess_options=so, **opts)


def load(ctx, **opts):
    return phoenix_npu.make_session(ctx if isinstance(ctx, bytes) else str(ctx), device="emulator", **opts)


def region_counters(sess, feeds):
    before = {r["id"]: r["runs"] for r in phoenix_npu.counters()["regions"]}
    out = sess.run(None, feeds)
    moved = [r for r in phoenix_npu.counters()["regions"] if r["runs"] > before.get(r["id"], 0)]
    return out, moved


def context_nodes(model: onnx.ModelProto):
    return [n for n in model.graph.node if n.op_type == "EPContext" and n.domain == "com.microsoft"]


def attr(node, name):
    return onnx.helper.get_attribute_value(next(a for a in node.attribute if a.name == name))


def set_attr(node, name, value):
    for a in node.attribute:
        if a.name == name:
            node.attribute.remove(a)
            break
    node.attribute.append(helper.make_attribute(name, value))


def small_graph(path: Path, dynamic: bool = False):
    rng = np.random.default_rng(11)
    n = helper.make_node
    seq = "seq" if dynamic else 10
    make_model([n("LayerNormalization", ["x", "g", "b"], ["ln"], axis=-1),
                n("MatMul", ["ln", "w"], ["h"]),
                n("Gelu", ["h"], ["a"]),
                n("MatMul", ["a", "w2"], ["o"]),
                n("Add", ["o", "x"], ["y"])],
               [("x", [1, seq, 32])], [("y", [1, seq, 32])],
               {"g": rng.standard_normal(32).astype(np.float32), "b": rng.standard_normal(32).astype(np.float32),
                "w": rng.standard_normal((32, 64)).astype(np.float32),
                "w2": rng.standard_normal((64, 32)).astype(np.float32)},
               path=path, opset=20)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    d = tmp_path_factory.mktemp("ctx_small")
    small_graph(d / "m.onnx")
    ctx = d / "m_ctx.onnx"
    compile_model(d / "m.onnx", ctx, embed=1)
    return d, ctx


def _feeds(seq=10, seed=0):
    return {"x": np.random.default_rng(seed).standard_normal((1, seq, 32)).astype(np.float32)}


@pytest.mark.parametrize("embed", [1, 0])
def test_small_graph_round_trip(tmp_path, embed):
    small_graph(tmp_path / "m.onnx")
    ctx = tmp_path / "m_ctx.onnx"
    original = compile_model(tmp_path / "m.onnx", ctx, embed)
    assert ctx.exists()
    model = onnx.load(str(ctx))
    nodes = context_nodes(model)
    assert len(nodes) == 1 and attr(nodes[0], "source") == EP.encode() and attr(nodes[0], "embed_mode") == embed
    assert not model.graph.initializer, "the weights live in the blob, not again as initializers"
    cache = attr(nodes[0], "ep_cache_context")
    if embed == 0:
        assert (tmp_path / cache.decode()).is_file() and b"/" not in cache
        assert (tmp_path / cache.decode()).read_bytes()[:8] == b"PHXNPUCX"
    else:
        assert cache[:8] == b"PHXNPUCX"
    feeds = _feeds()
    want, _ = region_counters(original, feeds)
    loaded = load(ctx)
    got, moved = region_counters(loaded, feeds)
    assert len(moved) == 1 and moved[0]["plans_loaded"] == 1 and moved[0]["plans_built"] == 0
    np.testing.assert_array_equal(got[0], want[0])
    assert phoenix_npu.assignment(loaded).get("CPUExecutionProvider", []) == []


def test_symbolic_dims_round_trip(tmp_path):
    """No plan is stored for a region with symbolic dims: the stored region graph and weights
    build one per input shape after loading, as in the original session."""
    small_graph(tmp_path / "m.onnx", dynamic=True)
    ctx = tmp_path / "m_ctx.onnx"
    original = compile_model(tmp_path / "m.onnx", ctx, embed=1)
    loaded = load(ctx)
    for seq in (7, 19, 7):
        want = original.run(None, _feeds(seq, seq))
        got, moved = region_counters(loaded, _feeds(seq, seq))
        np.testing.assert_array_equal(got[0], want[0])
    assert moved[0]["plans_loaded"] == 0 and moved[0]["plans_built"] == 2 and moved[0]["plan_cache_hits"] == 1


def test_precision_is_taken_from_the_blob(tmp_path):
    small_graph(tmp_path / "m.onnx")
    ctx = tmp_path / "m_ctx.onnx"
    original = compile_model(tmp_path / "m.onnx", ctx, embed=1, precision="bf16x3")
    want = original.run(None, _feeds())
    got = load(ctx).run(None, _feeds())  # no precision option: the blob's bf16x3 plan runs
    np.testing.assert_array_equal(got[0], want[0])


def _with_blob(ctx: Path, fn) -> bytes:
    model = onnx.load(str(ctx))
    node = context_nodes(model)[0]
    out = fn(node, attr(node, "ep_cache_context"))
    if out is not None:
        set_attr(node, "ep_cache_context", out)
    return model.SerializeToString()


def _load_error(model_bytes) -> str:
    with pytest.raises(Exception) as e:
        load(model_bytes).run(None, _feeds())
    return str(e.value)


@pytest.mark.parametrize("case,expect", [
    ("truncated", "truncated"),
    ("header_only", "payload bytes"),
    ("empty", "header"),
    ("flipped_byte", "checksum mismatch"),
    ("wrong_version", "format version 3"),
    ("foreign_blob", "written by 'SomeOtherEP_"),
    ("not_a_blob", "no PHXNPUCX magic"),
    ("trailing_bytes", "payload bytes"),
])
def test_malformed_blob_gives_a_clear_error(small, case, expect):
    _, ctx = small

    def mutate(node, blob):
        if case == "truncated":
            return blob[: len(blob) // 2]
        if case == "header_only":
            return blob[:HEADER]
        if case == "empty":
            return b""
        if case == "flipped_byte":
            b = bytearray(blob)
            b[len(b) * 2 // 3] ^= 0x10
            return bytes(b)
        if case == "wrong_version":
            return blob[:8] + struct.pack("<I", 3) + blob[12:]
        if case == "foreign_blob":
            name = EP.encode()
            i = blob.index(name)
            other = b"SomeOtherEP".ljust(len(name), b"_")
            b = blob[:i] + other + blob[i + len(name):]
            return reseal(b)
        if case == "not_a_blob":
            return b"\x00" * 100
        if case == "trailing_bytes":
            return blob + b"\x00"
    msg = _load_error(_with_blob(ctx, mutate))
    assert expect in msg, msg
    assert "re-export" in msg or case == "trailing_bytes", msg


def test_blob_with_extra_bytes_after_the_plan_is_refused(small):
    _, ctx = small
    msg = _load_error(_with_blob(ctx, lambda n, b: reseal(b + b"\x00")))
    assert "bytes after the plan" in msg and "re-export" in msg


def test_wrong_source_is_left_to_its_provider(small):
    """An EPContext node of another EP is not claimed (ORT then reports the node it cannot
    run); the provider's warning names the owner."""
    d, ctx = small
    model = onnx.load(str(ctx))
    set_attr(context_nodes(model)[0], "source", "QNNExecutionProvider")
    path = d / "foreign_ctx.onnx"
    onnx.save(model, str(path))
    code = ("import onnxruntime as ort, phoenix_npu\n"
            "so = ort.SessionOptions(); so.log_severity_level = 2\n"
            f"try:\n    phoenix_npu.make_session({str(path)!r}, device='emulator', sess_options=so)\n"
            "except Exception as e:\n    print('ERROR', e)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "ERROR" in r.stdout and "EPContext" in r.stdout
    assert "written by 'QNNExecutionProvider', not PhoenixNPU" in r.stderr


def test_missing_context_file_is_named(tmp_path):
    small_graph(tmp_path / "m.onnx")
    ctx = tmp_path / "m_ctx.onnx"
    compile_model(tmp_path / "m.onnx", ctx, embed=0)
    cache = attr(context_nodes(onnx.load(str(ctx)))[0], "ep_cache_context").decode()
    (tmp_path / cache).unlink()
    with pytest.raises(Exception) as e:
        load(ctx)
    assert "cannot open its context file" in str(e.value) and cache in str(e.value)


@pytest.mark.parametrize("name", ["/etc/passwd", "../m.bin", "a/../../m.bin"])
def test_context_file_outside_the_model_folder_is_refused(small, name):
    d, ctx = small
    model = onnx.load(str(ctx))
    node = context_nodes(model)[0]
    set_attr(node, "embed_mode", 0)
    set_attr(node, "ep_cache_context", name.encode())
    path = d / "escape_ctx.onnx"
    onnx.save(model, str(path))
    with pytest.raises(Exception) as e:
        load(path)
    assert "relative path" in str(e.value) or "leaves the model's folder" in str(e.value)


@pytest.mark.parametrize("dynamic", [False, True])
def test_fuzz_blob_mutations_never_crash(tmp_path, dynamic):
    """Random byte mutations of a blob, half with the checksum resealed so the decoder's own
    checks are what stands between the bytes and the kernels: every load either fails with a
    PhoenixNPU error or runs. Runs in a child process so a crash is a failure, not a lost run."""
    small_graph(tmp_path / "m.onnx", dynamic=dynamic)
    ctx = tmp_path / "m_ctx.onnx"
    compile_model(tmp_path / "m.onnx", ctx, embed=1)
    code = f"""
import numpy as np, onnx, onnxruntime as ort, phoenix_npu, sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from test_ep_context import context_nodes, attr, set_attr, reseal, HEADER
model = onnx.load({str(ctx)!r})
blob = attr(context_nodes(model)[0], "ep_cache_context")
rng = np.random.default_rng(2024 + {int(dynamic)})
x = np.random.default_rng(0).standard_normal((1, 10, 32)).astype(np.float32)
ok = failed = 0
for i in range(200):
    b = bytearray(blob)
    for _ in range(int(rng.integers(1, 4))):
        pos = int(rng.integers(0, len(b)))
        if rng.random() < 0.3:
            pos = int(rng.integers(0, min(len(b), HEADER + 200)))
        b[pos] = int(rng.integers(0, 256))
    if rng.random() < 0.15:
        b = b[: int(rng.integers(0, len(b)))]
    data = bytes(b)
    if i % 2 and len(data) >= HEADER:
        data = reseal(data)
    set_attr(context_nodes(model)[0], "ep_cache_context", data)
    try:
        s = phoenix_npu.make_session(model.SerializeToString(), device="emulator")
        s.run(None, {{"x": x}})
        ok += 1
    except Exception as e:
        assert "PhoenixNPU" in str(e), str(e)[:500]
        failed += 1
print("FUZZ", ok, failed)
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, (r.returncode, r.stdout[-2000:], r.stderr[-3000:])
    ok, failed = map(int, r.stdout.split("FUZZ")[1].split())
    assert ok + failed == 200 and failed >= 100


def test_whisper_tiny_en_encoder_round_trip(tmp_path):
    from _whisper import tiny_en_onnx

    src = Path(tiny_en_onnx()) / "encoder_model.onnx"
    if not src.exists():
        pytest.skip(f"no encoder at {src}")
    feeds = {"input_features": np.random.default_rng(3).standard_normal((1, 80, 3000)).astype(np.float32)}
    for embed in (0, 1):
        ctx = tmp_path / f"encoder_embed{embed}_ctx.onnx"
        original = compile_model(src, ctx, embed)
        want, built = region_counters(original, feeds)
        assert sum(r["plans_built"] for r in built) >= 1
        loaded = load(ctx)
        got, moved = region_counters(loaded, feeds)
        assert moved and all(r["plans_built"] == 0 and r["plans_loaded"] == 1 for r in moved)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)
        del original, loaded


# --- Compatibility of a compiled model with this machine (issue 23 item 6) ------------------------
def _our_ep_devices():
    return [d for d in ort.get_ep_devices() if d.ep_name == EP]


def _validate(info: str):
    from onnxruntime.capi import _pybind_state as C
    return C.get_model_compatibility_for_ep_devices(_our_ep_devices(), info)


def test_compiled_model_records_format_device_isa_and_npu_artifacts(small):
    """ORT stores the provider's compatibility string in the compiled model; it names the blob format,
    the device (here the emulated one, so no NPU artifacts) and the kernel ISA."""
    from onnxruntime.capi import _pybind_state as C
    _, ctx = small
    info = C.get_compatibility_info_from_model(str(ctx), EP)
    fields = dict(p.split("=", 1) for p in info.split(";")[1:])
    assert info.startswith(EP + ";") and fields["format"] == "2" and fields["device"] == "emulator"
    assert fields["npu"] == "none" and fields["isa"] in ("portable", "avx2", "avx_vnni", "avx512_bf16", "avx512_vnni")


def test_validate_compatibility_answers_per_difference(small):
    """ValidateCompiledModelCompatibilityInfo (factory.cc; it returned EP_NOT_APPLICABLE for everything
    before): the string of this machine's compile is optimal; a compile for the NPU (this machine has
    none), another kernel ISA or an older string prefers recompilation; another blob format is
    unsupported; a string that is not ours is not applicable."""
    from onnxruntime.capi import _pybind_state as C
    _, ctx = small
    assert _our_ep_devices(), "the provider publishes a device (conftest registers it)"
    info = C.get_compatibility_info_from_model(str(ctx), EP)
    R = C.OrtCompiledModelCompatibility
    assert _validate(info) == R.EP_SUPPORTED_OPTIMAL
    isa = dict(p.split("=", 1) for p in info.split(";")[1:])["isa"]
    other_isa = "avx2" if isa != "avx2" else "portable"
    assert _validate(info.replace(f"isa={isa}", f"isa={other_isa}")) == R.EP_SUPPORTED_PREFER_RECOMPILATION
    assert _validate(info.replace("device=emulator", "device=npu").replace("npu=none", "npu=00000000000000aa")) == \
        R.EP_SUPPORTED_PREFER_RECOMPILATION
    assert _validate(info.replace("format=2", "format=9")) == R.EP_UNSUPPORTED
    # format 1 is still read (its plan is planned again on the NPU): recompilation preferred, not refused
    assert _validate(info.replace("format=2", "format=1")) == R.EP_SUPPORTED_PREFER_RECOMPILATION
    assert _validate(EP + ";plan=1") == R.EP_SUPPORTED_PREFER_RECOMPILATION
    assert _validate("SomeOtherEP;format=1") == R.EP_NOT_APPLICABLE


# --- format 2: where the plan was made (device, NPU artifacts); format 1 still read ----------------
def split_payload(blob: bytes):
    """(EP name, precision + fuse_attention bytes, device, NPU artifacts, the rest) of a format-2 blob."""
    p, off = blob[HEADER:], 0

    def string():
        nonlocal off
        (n,) = struct.unpack_from("<q", p, off)
        v = p[off + 8: off + 8 + n]
        off += 8 + n
        return v
    ep = string()
    flags = p[off: off + 2]
    off += 2
    device, artifacts = string(), string()
    return ep, flags, device, artifacts, p[off:]


def join_payload(version, ep, flags, rest, device=None, artifacts=None) -> bytes:
    def string(v):
        return struct.pack("<q", len(v)) + v
    payload = string(ep) + flags + (string(device) + string(artifacts) if version >= 2 else b"") + rest
    return reseal(b"PHXNPUCX" + struct.pack("<II", version, HEADER) + b"\x00" * 24 + payload)


def test_blob_is_format_2_and_records_where_its_plan_was_made(small):
    _, ctx = small
    node = context_nodes(onnx.load(str(ctx)))[0]
    blob = attr(node, "ep_cache_context")
    assert struct.unpack_from("<I", blob, 8)[0] == 2 and attr(node, "ep_sdk_version") == b"PhoenixNPU context format 2"
    ep, _, device, artifacts, _ = split_payload(blob)
    assert ep == EP.encode() and device == b"emulator" and artifacts == b"none"


def _load_counted(model_bytes):
    sess = load(model_bytes)
    return region_counters(sess, _feeds())


def test_format_1_blob_still_loads_with_its_plan(small):
    """A blob of format 1 (no device, no NPU artifacts) is read; on the emulated device its plan runs."""
    d, ctx = small
    want = load(ctx).run(None, _feeds())

    def to_format_1(node, blob):
        ep, flags, _, _, rest = split_payload(blob)
        return join_payload(1, ep, flags, rest)
    got, moved = _load_counted(_with_blob(ctx, to_format_1))
    assert moved[0]["plans_loaded"] == 1 and moved[0]["plans_built"] == 0
    np.testing.assert_array_equal(got[0], want[0])


def test_plan_made_on_the_npu_is_planned_again_not_run(small):
    """A blob whose plan was made on the NPU device (against some NPU artifacts): this machine runs the
    emulated device, so the stored plan is not run; the region is planned again from its stored graph
    and weights (plans_built, not plans_loaded), with the same outputs. (On the NPU device the same
    happens when the recorded NPU artifacts differ from the installed ones: C++ test_compat_info.)"""
    d, ctx = small
    want = load(ctx).run(None, _feeds())

    def made_on_npu(node, blob):
        ep, flags, _, _, rest = split_payload(blob)
        return join_payload(2, ep, flags, rest, b"npu", b"00000000000000aa")
    got, moved = _load_counted(_with_blob(ctx, made_on_npu))
    assert moved[0]["plans_loaded"] == 0 and moved[0]["plans_built"] == 1
    np.testing.assert_array_equal(got[0], want[0])


def test_blob_with_an_unknown_device_is_refused(small):
    _, ctx = small

    def other(node, blob):
        ep, flags, _, _, rest = split_payload(blob)
        return join_payload(2, ep, flags, rest, b"gpu", b"none")
    msg = _load_error(_with_blob(ctx, other))
    assert "bad device 'gpu'" in msg and "re-export" in msg, msg
