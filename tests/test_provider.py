"""The provider as a component: registration, device publication, options and their
errors, sessions created and destroyed, two at once, wrong inputs, and the counters."""
from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from onnx import helper

import phoenix_npu
from conftest import CPU, EP, make_model, npu_session, rel_l2


@pytest.fixture(scope="module")
def small_model():
    rng = np.random.default_rng(7)
    n = helper.make_node
    return make_model([n("LayerNormalization", ["x", "g", "b"], ["ln"], axis=-1), n("MatMul", ["ln", "w"], ["y"])],
                      [("x", [1, 10, 32])], [("y", [1, 10, 16])],
                      {"g": np.ones(32, np.float32), "b": np.zeros(32, np.float32),
                       "w": rng.standard_normal((32, 16)).astype(np.float32)})


def test_library_and_name():
    assert phoenix_npu.get_ep_name() == "PhoenixNPUExecutionProvider"
    assert phoenix_npu.get_library_path().endswith("libphoenix_npu_ep.so")


def test_register_is_idempotent_and_publishes_a_device():
    phoenix_npu.register()
    phoenix_npu.register()
    eps = [d.ep_name for d in ort.get_ep_devices()]
    assert eps.count(EP) == 1


def test_plain_inference_session_with_provider_names(small_model):
    sess = ort.InferenceSession(small_model, providers=[EP, CPU])
    assert sess.get_providers()[0] == EP
    x = np.random.default_rng(0).standard_normal((1, 10, 32)).astype(np.float32)
    assert sess.run(None, {"x": x})[0].shape == (1, 10, 16)


def test_add_provider_for_devices(small_model):
    so = ort.SessionOptions()
    devices = [d for d in ort.get_ep_devices() if d.ep_name == EP]
    so.add_provider_for_devices(devices, {"device": "emulator"})
    sess = ort.InferenceSession(small_model, so)
    assert EP in sess.get_providers()


def test_registration_in_a_fresh_process_by_import(tmp_path, small_model):
    """`import phoenix_npu` alone makes the provider name usable (and logs the device)."""
    path = tmp_path / "m.onnx"
    path.write_bytes(small_model)
    code = ("import onnxruntime as ort, phoenix_npu\n"
            f"s = ort.InferenceSession({str(path)!r}, providers=['PhoenixNPUExecutionProvider', 'CPUExecutionProvider'])\n"
            "print(s.get_providers()[0])\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == EP


_NO_NPU_HERE = not (Path("/sys/module/amdxdna").exists() or Path("/dev/accel/accel0").exists())


def _session_log(tmp_path, model, severity, machine=None, device="auto"):
    """The provider's device lines in the stderr of a fresh process that creates one session at
    the given ORT log severity (ORT hands CreateEp the default logger: its severity counts)."""
    path = tmp_path / "m.onnx"
    path.write_bytes(model)
    code = ("import onnxruntime as ort, phoenix_npu\n"
            f"ort.set_default_logger_severity({severity}); so = ort.SessionOptions(); so.log_severity_level = {severity}\n"
            f"ort.InferenceSession({str(path)!r}, so, providers=[('PhoenixNPUExecutionProvider', {{'device': {device!r}}}),"
            " 'CPUExecutionProvider'])\n")
    env = dict(__import__("os").environ)
    env.pop("PHOENIX_NPU_TEST_HOOKS", None)
    if machine is not None:
        env["PHOENIX_NPU_TEST_HOOKS"] = f"machine_root={machine}"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 0, res.stderr
    return [line for line in res.stderr.splitlines() if "PhoenixNPU: running on" in line]


@pytest.mark.parametrize("machine", ["fake", "real"])
def test_no_npu_is_one_short_info_line(tmp_path, small_model, machine):
    """Without an NPU the emulated device is the expected outcome of device=auto: nothing at the
    default (WARNING) level; at INFO one short line naming the device, threads, kernel path and
    the reason, without remedies (those are doctor's). It used to be a long WARNING every run."""
    if machine == "real" and not _NO_NPU_HERE:
        pytest.skip("this machine has an NPU")
    root = tmp_path / "root" if machine == "fake" else None
    if root:
        root.mkdir()
    assert _session_log(tmp_path, small_model, 2, root) == []
    lines = _session_log(tmp_path, small_model, 1, root)
    assert len(lines) == 1 and "[I:" in lines[0], lines
    tail = lines[0].split("PhoenixNPU: ", 1)[1]
    assert tail.startswith("running on the emulated NPU, ") and " thread" in tail and "kernel path " in tail
    assert tail.endswith("(device=auto; no NPU: amdxdna driver: not loaded; `phoenix-npu doctor` tells more)"), tail
    assert "modprobe" not in tail and len(tail) < 200


def test_npu_present_but_unusable_is_a_warning_with_the_remedy(tmp_path, small_model):
    """A machine whose amdxdna driver is loaded but whose device node is missing has an NPU the
    user expects to use: that stays a WARNING, with what to do."""
    root = tmp_path / "root"
    (root / "sys/module/amdxdna").mkdir(parents=True)
    lines = _session_log(tmp_path, small_model, 2, root)
    assert len(lines) == 1 and "[W:" in lines[0], lines
    assert "an NPU is present but unusable: NPU device: " in lines[0] and "dev/accel/accel0 missing" in lines[0]
    assert "dmesg" in lines[0]  # the remedy


def test_device_npu_error_reads_as_our_message_first(small_model):
    """make_session's ProviderError starts with the provider's message, not ORT's C++ frame
    ("/onnxruntime_src/...cc:393 virtual std::unique_ptr<...> ... [ONNXRuntimeError] : 1 : FAIL : ");
    device=npu keeps the remedy."""
    if not _NO_NPU_HERE:
        pytest.skip("this machine has an NPU")
    with pytest.raises(phoenix_npu.ProviderError) as info:
        phoenix_npu.make_session(small_model, device="npu")
    msg = str(info.value)
    assert msg.startswith("PhoenixNPU: device=npu was requested but no usable NPU was found: amdxdna driver: not loaded"), msg
    assert "modprobe amdxdna" in msg and "phoenix-npu doctor" in msg
    assert "ONNXRuntimeError" not in msg and ".cc:" not in msg
    assert "ONNXRuntimeError" in str(info.value.__cause__)  # ORT's full text is kept as the cause


@pytest.mark.parametrize("opts,message", [({"devic": "emulator"}, "unknown provider option 'devic'"),
                                          ({"device": "gpu"}, "device=gpu is not valid"),
                                          ({"threads": "many"}, "threads=many is not valid"),
                                          ({"threads": "-5"}, "threads=-5 is not valid"),
                                          ({"threads": "99999999999999999999"}, "is not valid"),
                                          ({"precision": "fp8"}, "precision=fp8 is not valid"),
                                          ({"max_plans": "0"}, "max_plans=0 is not valid"),
                                          ({"manifest": "/nonexistent/manifest.json"}, "is not a readable file"),
                                          ({"manifest": "/dev"}, "is not a readable file"),
                                          ({"": "1"}, "empty name")])
def test_bad_provider_options_are_clear_errors(small_model, opts, message):
    with pytest.raises(Exception) as info:
        ort.InferenceSession(small_model, providers=[(EP, opts), CPU], enable_fallback=0)
    assert message in str(info.value)


def test_option_given_in_both_key_spellings_is_an_error(small_model):
    so = ort.SessionOptions()
    so.add_session_config_entry(f"ep.{EP}.device", "npu")
    with pytest.raises(Exception) as info:
        ort.InferenceSession(small_model, so, providers=[(EP, {"device": "emulator"}), CPU], enable_fallback=0)
    assert "given twice" in str(info.value)


def test_manifest_on_the_emulator_is_reported_not_ignored(small_model, tmp_path):
    """A manifest only matters on the NPU: on the emulated device the provider says so."""
    import subprocess
    import sys
    manifest = tmp_path / "m.json"
    manifest.write_text("{}")
    model = tmp_path / "m.onnx"
    model.write_bytes(small_model)
    code = ("import onnxruntime as ort, phoenix_npu\n"
            f"ort.InferenceSession({str(model)!r}, providers=[('{EP}', {{'device': 'emulator', "
            f"'manifest': {str(manifest)!r}}}), 'CPUExecutionProvider'])\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "has no effect on the emulator device" in res.stderr


def test_option_table_is_the_one_the_library_declares():
    table = {o["key"]: o for o in phoenix_npu.option_table()}
    assert {"device", "threads", "precision", "fuse_attention", "max_plans", "manifest"} <= set(table)
    assert table["device"]["default"] == "auto" and "emulator" in table["device"]["accepted"]
    assert all(o["doc"] for o in table.values())


def test_make_session_never_falls_back_quietly(small_model):
    with pytest.raises(phoenix_npu.ProviderError) as info:
        phoenix_npu.make_session(small_model, device="emulator", bogus="1")
    assert "unknown provider option 'bogus'" in str(info.value)


def test_npu_without_hardware_is_a_clear_error(small_model):
    with pytest.raises(phoenix_npu.ProviderError) as info:
        phoenix_npu.make_session(small_model, device="npu")
    assert "device=npu was requested but no usable NPU was found" in str(info.value)
    assert "phoenix-npu doctor" in str(info.value)


def test_wrong_input_shape_is_an_ort_error(small_model):
    sess = npu_session(small_model)
    with pytest.raises(Exception) as info:
        sess.run(None, {"x": np.zeros((1, 11, 32), np.float32)})
    assert "x" in str(info.value)
    with pytest.raises(Exception):
        sess.run(None, {"x": np.zeros((1, 10, 32), np.float64)})
    # and the session still works afterwards
    assert sess.run(None, {"x": np.ones((1, 10, 32), np.float32)})[0].shape == (1, 10, 16)


def test_two_sessions_in_one_process(small_model):
    rng = np.random.default_rng(3)
    a, b = npu_session(small_model), npu_session(small_model)
    x = rng.standard_normal((1, 10, 32)).astype(np.float32)
    ya, yb = a.run(None, {"x": x})[0], b.run(None, {"x": x})[0]
    np.testing.assert_array_equal(ya, yb)
    del a
    gc.collect()
    np.testing.assert_array_equal(b.run(None, {"x": x})[0], yb)


def test_create_and_destroy_100_sessions(small_model):
    x = np.random.default_rng(4).standard_normal((1, 10, 32)).astype(np.float32)
    gc.collect()
    before = phoenix_npu.counters()
    first = None
    for _ in range(100):
        sess = npu_session(small_model)
        y = sess.run(None, {"x": x})[0]
        if first is None:
            first = y
        np.testing.assert_array_equal(y, first)
        del sess
    gc.collect()
    after = phoenix_npu.counters()
    assert after["regions_created"] - before["regions_created"] == 100
    assert after["live_regions"] == before["live_regions"]  # every region was released


def test_counters_one_copy_in_one_copy_out_no_allocations_per_run(small_model):
    sess = npu_session(small_model)
    x = np.random.default_rng(5).standard_normal((1, 10, 32)).astype(np.float32)
    sess.run(None, {"x": x})  # warm-up
    regions = phoenix_npu.counters()["regions"]
    mine = regions[-1]
    before = dict(mine)
    for _ in range(3):
        sess.run(None, {"x": x})
    after = [r for r in phoenix_npu.counters()["regions"] if r["id"] == mine["id"]][0]
    runs = after["runs"] - before["runs"]
    assert runs == 3
    assert after["transfers_in"] - before["transfers_in"] == 3      # one input copy per run
    assert after["transfers_out"] - before["transfers_out"] == 3    # one output copy per run
    assert after["bytes_in"] - before["bytes_in"] == 3 * 10 * 32 * 2  # BF16 on the device
    assert after["weight_bytes_uploaded"] == before["weight_bytes_uploaded"]  # weights: once
    assert after["device_allocations"] == before["device_allocations"]      # none per run
    assert after["launches"] - before["launches"] == 3 * after["kernel_calls"]
    assert after["device"] == "emulator"
    assert set(after["kernels"]) >= {"LayerNorm", "MatMul"}


def test_injected_failures_become_ort_errors_not_crashes(small_model, monkeypatch):
    """The test hook fail_on makes a step fail on purpose: compile throws a C++ exception inside
    the EP, allocate returns an error, run throws during Compute. Each must reach Python as an
    ORT error (session creation or run), never terminate the process."""
    for step in ("compile", "allocate"):
        monkeypatch.setenv("PHOENIX_NPU_TEST_HOOKS", f"fail_on={step}")
        with pytest.raises(Exception) as info:
            ort.InferenceSession(small_model, phoenix_npu.session_options(),
                                 providers=[(EP, {"device": "emulator"})])
        assert f"injected failure (fail_on={step})" in str(info.value) or "injected device allocation" in str(info.value)
    monkeypatch.setenv("PHOENIX_NPU_TEST_HOOKS", "fail_on=run")
    sess = ort.InferenceSession(small_model, phoenix_npu.session_options(),
                                providers=[(EP, {"device": "emulator"}), CPU], enable_fallback=0)
    with pytest.raises(Exception) as info:
        sess.run(None, {"x": np.zeros((1, 10, 32), np.float32)})
    assert "injected failure (fail_on=run)" in str(info.value)


def test_test_hooks_are_not_provider_options(small_model, monkeypatch):
    with pytest.raises(Exception) as info:
        ort.InferenceSession(small_model, providers=[(EP, {"device": "emulator", "fail_on": "run"})], enable_fallback=0)
    assert "unknown provider option 'fail_on'" in str(info.value)
    monkeypatch.setenv("PHOENIX_NPU_TEST_HOOKS", "fail_on=sometimes")
    with pytest.raises(Exception) as info:
        ort.InferenceSession(small_model, providers=[(EP, {"device": "emulator"})], enable_fallback=0)
    assert "PHOENIX_NPU_TEST_HOOKS" in str(info.value)


def test_chrome_trace_of_the_last_run(small_model, tmp_path):
    import json
    sess = npu_session(small_model)
    sess.run(None, {"x": np.ones((1, 10, 32), np.float32)})
    path = tmp_path / "trace.json"
    trace = phoenix_npu.chrome_trace(path)
    assert json.loads(path.read_text()) == trace
    slices = [e for e in trace["traceEvents"] if e.get("ph") == "X" and e.get("cat") != "run"]
    kinds = {e["cat"] for e in slices}
    assert {"LayerNorm", "MatMul"} <= kinds
    assert all(e["dur"] >= 0 and e["ts"] >= 0 for e in slices)


def _host_path_model(kind: str, rng, tmp_path):
    """LayerNorm -> MatMul -> Softmax ("chain"), a Whisper-style attention block whose
    QK^T / Softmax / PV is one fused Attention call ("attention"), or a block quantized by ORT's
    quantize_static whose linear layers are INT8 MatMuls ("qdq": the NPU has no INT8 kernel, so
    on the NPU these always take the host path)."""
    if kind == "qdq":
        from test_qdq import _feeds, _quantize

        model, shape = _quantize(tmp_path, rng)
        return model, _feeds(shape, rng)["x"]
    if kind == "attention":
        from test_ops import _attention_block

        return _attention_block(50, 64, 4, rng), rng.standard_normal((1, 50, 64)).astype(np.float32)
    n = helper.make_node
    m = make_model([n("LayerNormalization", ["x", "g", "b"], ["ln"], axis=-1), n("MatMul", ["ln", "w"], ["mm"]),
                    n("Softmax", ["mm"], ["y"], axis=-1)],
                   [("x", [1, 20, 32])], [("y", [1, 20, 16])],
                   {"g": np.ones(32, np.float32), "b": np.zeros(32, np.float32),
                    "w": rng.standard_normal((32, 16)).astype(np.float32)})
    return m, rng.standard_normal((1, 20, 32)).astype(np.float32)


@pytest.mark.parametrize("precision", ["bf16", "bf16x3"])
@pytest.mark.parametrize("kind,missing", [("chain", "Softmax"), ("chain", "MatMul,LayerNorm"),
                                          ("chain", "LayerNorm,MatMul,Softmax"), ("attention", "Attention"),
                                          ("attention", "Attention,MatMul,LayerNorm"),
                                          ("qdq", "MatMulInt8"), ("qdq", "MatMulInt8,LayerNorm")])
def test_calls_without_a_device_kernel_take_the_host_path(kind, missing, precision, monkeypatch, tmp_path):
    """The real NPU has kernels for some calls only; the others run on the host CPU over the
    device's mapped buffers (HybridDevice), with syncs around them. Exercised here by an
    emulated device that pretends to lack some kernels: results must be bit-identical to the
    plain emulated device, and the counters must say how many calls took the host path."""
    m, x = _host_path_model(kind, np.random.default_rng(9), tmp_path)
    if kind == "qdq" and precision == "bf16x3":  # there the linear layers run dequantized (FakeQuant + MatMul)
        missing = missing.replace("MatMulInt8", "FakeQuant")
    plain = npu_session(m, precision=precision).run(None, {"x": x})[0]
    monkeypatch.setenv("PHOENIX_NPU_TEST_HOOKS", f"without_kernels={missing}")
    hybrid = npu_session(m, precision=precision)
    np.testing.assert_array_equal(hybrid.run(None, {"x": x})[0], plain)
    region = phoenix_npu.counters()["regions"][-1]
    assert region["host_launches"] == sum(region["kernels"][k]["launches"] for k in missing.split(",")), region
    assert region["host_launches"] >= len(missing.split(","))


def test_readme_option_table_is_the_generated_one():
    """One option table: the README's copy is what `phoenix-npu info --options` prints."""
    readme = (Path(__file__).resolve().parents[1] / "docs" / "usage.md").read_text()
    block = readme.split("<!-- options:begin -->\n", 1)[1].split("<!-- options:end -->", 1)[0]
    assert block == phoenix_npu.option_table_markdown(), "regenerate: phoenix-npu info --options"
