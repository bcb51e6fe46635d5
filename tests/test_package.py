"""The thin EP package `phoenix_npu`: it imports neither torch nor transformers, registers on
import without ever raising, makes provider-creation errors errors (no quiet CPU fallback), and
reads the provider's counters whole even while regions come and go."""
import os
import subprocess
import sys
import threading

import numpy as np
from onnx import helper

import phoenix_npu
from conftest import make_model


def _python(code, env=None):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def test_ep_package_imports_neither_torch_nor_transformers():
    """The EP helper is thin: `import phoenix_npu` (and the Whisper subpackage's own import)
    loads no torch, transformers or optimum, and still registers the provider on import, so
    providers=["PhoenixNPUExecutionProvider"] works right after it."""
    r = _python("import sys, onnxruntime as ort, phoenix_npu, phoenix_npu.whisper;"
                "heavy = [m for m in ('torch', 'transformers', 'optimum') if m in sys.modules];"
                "assert not heavy, heavy;"
                "assert phoenix_npu.get_ep_names() == [phoenix_npu.get_ep_name()] == ['PhoenixNPUExecutionProvider'];"
                "assert phoenix_npu.EP_NAME in [d.ep_name for d in ort.get_ep_devices()]")
    assert r.returncode == 0, r.stderr[-2000:]


def test_import_never_raises_and_register_says_why():
    r = _python("import phoenix_npu; print('imported'); phoenix_npu.register()",
                env={"PHOENIX_NPU_LIBRARY": "/nonexistent/lib.so"})
    assert r.stdout.strip() == "imported"
    assert "not registered on import" in r.stderr  # the WARNING of the import ...
    assert "ProviderError: PHOENIX_NPU_LIBRARY=/nonexistent/lib.so does not exist" in r.stderr  # ... then register()


def test_make_session_makes_provider_creation_errors_errors():
    """A bare InferenceSession retries on the CPU EP with only a printed banner when the
    provider cannot be created; make_session (enable_fallback=0) raises instead."""
    model = make_model([helper.make_node("Relu", ["x"], ["y"])], [("x", [2, 4])], [("y", [2, 4])])
    code = ("import onnxruntime as ort, phoenix_npu, sys\n"
            "m = sys.stdin.buffer.read()\n"
            "s = ort.InferenceSession(m, providers=[(phoenix_npu.EP_NAME, {'device': 'gpu'}), 'CPUExecutionProvider'])\n"
            "print('bare session on', s.get_providers())\n"
            "try:\n"
            "    phoenix_npu.make_session(m, device='emulator', precision='fp8')\n"
            "except phoenix_npu.ProviderError as e:\n"
            "    print('make_session raised:', e)\n")
    r = subprocess.run([sys.executable, "-c", code], input=model, capture_output=True, timeout=120)
    out = r.stdout.decode()
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    assert "Falling back to ['CPUExecutionProvider']" in out  # what ORT does without enable_fallback=0
    assert "bare session on ['CPUExecutionProvider']" in out
    assert "make_session raised:" in out and "precision" in out.split("make_session raised:")[1]


def test_json_reader_follows_the_size_protocol_when_the_text_grows():
    """The library's JSON exports return the length they need (with the NUL) and fill what
    fits: when a region appears between the size query and the fill, the text no longer fits
    and the reader must ask again rather than parse a truncated copy (issue 11, item 9). The
    growth is forced here with a C callable speaking that protocol: between the size query and
    the first fill the text grows by 100 KB (more than the reader's slack)."""
    import ctypes
    import json
    import sys

    read_json = sys.modules["phoenix_npu.counters"]._read_json
    calls = []

    @ctypes.CFUNCTYPE(ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t)
    def growing(buf, cap):  # buf: an address, or None
        calls.append(cap)
        text = json.dumps({"regions": ["r" * 100_000] * min(len(calls), 2)}).encode()  # grows once
        if buf and cap:
            n = min(len(text), cap - 1)
            ctypes.memmove(buf, text, n)
            ctypes.memset(buf + n, 0, 1)
        return len(text) + 1

    got = read_json(growing, "test JSON")
    assert len(got["regions"]) == 2 and len(calls) == 2  # filled too short, filled again


def test_counters_and_trace_are_whole_while_sessions_come_and_go():
    """chrome_trace() / counters() while other threads create, run and drop sessions: every
    read is complete JSON."""
    rng = np.random.default_rng(5)
    n = helper.make_node
    model = make_model([n("LayerNormalization", ["x", "g", "b"], ["ln"], axis=-1), n("MatMul", ["ln", "w"], ["y"])],
                       [("x", [1, 4, 64])], [("y", [1, 4, 64])],
                       {"g": np.ones(64, np.float32), "b": np.zeros(64, np.float32),
                        "w": rng.standard_normal((64, 64)).astype(np.float32)})
    x = rng.standard_normal((1, 4, 64)).astype(np.float32)
    stop = threading.Event()

    def churn():
        while not stop.is_set():
            sess = phoenix_npu.make_session(model, device="emulator")
            sess.run(None, {"x": x})
            del sess

    workers = [threading.Thread(target=churn) for _ in range(2)]
    for w in workers:
        w.start()
    try:
        for _ in range(300):
            assert isinstance(phoenix_npu.chrome_trace()["traceEvents"], list)
            assert "regions" in phoenix_npu.counters()
    finally:
        stop.set()
        for w in workers:
            w.join()
