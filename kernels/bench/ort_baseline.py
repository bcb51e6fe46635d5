"""FP32 MatMul baseline on ONNX Runtime's CPU EP (MLAS), for the shapes of kernel_bench.

Usage: python ort_baseline.py [threads]   -> prints one line per shape: name GFLOP/s ms
"""
import sys, time
import numpy as np
import onnx
from onnx import helper, TensorProto, numpy_helper
import onnxruntime as ort

THREADS = int(sys.argv[1]) if len(sys.argv) > 1 else 2
# name, batch, M, K, N, B constant (weight)
SHAPES = [
    ("qkv_1500x512x1536", 1, 1500, 512, 1536, True),
    ("out_1500x512x512", 1, 1500, 512, 512, True),
    ("ffn1_1500x512x2048", 1, 1500, 512, 2048, True),
    ("ffn2_1500x2048x512", 1, 1500, 2048, 512, True),
    ("qkT_8x1500x64x1500", 8, 1500, 64, 1500, False),
    ("av_8x1500x1500x64", 8, 1500, 1500, 64, False),
]


def model(b, m, k, n, const):
    a_shape = [b, m, k] if b > 1 else [m, k]
    b_shape = [b, k, n] if b > 1 else [k, n]
    c_shape = [b, m, n] if b > 1 else [m, n]
    inputs = [helper.make_tensor_value_info("A", TensorProto.FLOAT, a_shape)]
    inits = []
    if const:
        w = np.random.default_rng(0).standard_normal(b_shape).astype(np.float32)
        inits.append(numpy_helper.from_array(w, "B"))
    else:
        inputs.append(helper.make_tensor_value_info("B", TensorProto.FLOAT, b_shape))
    g = helper.make_graph([helper.make_node("MatMul", ["A", "B"], ["C"])], "mm", inputs,
                          [helper.make_tensor_value_info("C", TensorProto.FLOAT, c_shape)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString(), a_shape, b_shape


def main():
    so = ort.SessionOptions()
    so.intra_op_num_threads = THREADS
    so.inter_op_num_threads = 1
    for name, b, m, k, n, const in SHAPES:
        blob, a_shape, b_shape = model(b, m, k, n, const)
        s = ort.InferenceSession(blob, so, providers=["CPUExecutionProvider"])
        rng = np.random.default_rng(1)
        feeds = {"A": rng.standard_normal(a_shape).astype(np.float32)}
        if not const:
            feeds["B"] = rng.standard_normal(b_shape).astype(np.float32)
        for _ in range(3):
            s.run(None, feeds)
        times = []
        t_end = time.perf_counter() + 1.5
        while time.perf_counter() < t_end or len(times) < 5:
            t0 = time.perf_counter()
            s.run(None, feeds)
            times.append(time.perf_counter() - t0)
        t = float(np.median(times))
        flop = 2.0 * b * m * k * n
        print(f"{name} {flop / t / 1e9:.1f} {t * 1e3:.3f}", flush=True)


if __name__ == "__main__":
    main()
