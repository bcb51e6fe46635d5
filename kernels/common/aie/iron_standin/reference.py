"""What each AIE kernel computes on one call, in numpy: the stand-in runs these in place of the
Peano-compiled objects. They follow each kernel's numerics contract (kernels/<op>/README.md,
kernels/common/bf16.h): FP32 inputs, the maths in float64 (NOT the bf16.h polynomial steps:
KernelExp / KernelErf / KernelRsqrt are approximated here by numpy's exp / math.erf / sqrt), ONE
rounding to BF16 (nearest even) at the end. So a design's output may differ from the emulated
device by a BF16 rounding flip where the contract's FP32 steps and float64 disagree; any data
movement error (a wrong row, a wrong tile layout) shows up as an O(1) error.

Each function takes the kernel's `-D` defines (from the design's core_objects) and returns the
body, called with the numpy arrays of its arguments in declaration order (objects are written in
place, as the kernel writes its L1 buffers).
"""
import math

import numpy as np
from ml_dtypes import bfloat16

_erf = np.frompyfunc(math.erf, 1, 1)


def parse_defines(flags):
    """{"COLS": 512, "ALPHA": 1.0, "bf16_f32_ONLY": 1, ...} from ["-DCOLS=512", "-DALPHA=1.0f", ...]."""
    out = {}
    for f in flags:
        if not f.startswith("-D"):
            continue
        name, _, value = f[2:].partition("=")
        if not value:
            out[name] = 1
            continue
        v = value[:-1] if value.endswith("f") and not value.startswith("0x") else value
        try:
            out[name] = int(v)
        except ValueError:
            out[name] = float(v)
    return out


def _bf16(x):
    return np.asarray(x, np.float32).astype(bfloat16)


def _gelu(v, mode):
    if mode == 0:    # erf form
        return 0.5 * v * (1.0 + _erf(v / math.sqrt(2.0)).astype(np.float64))
    return 0.5 * v * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (v + 0.044715 * v ** 3)))


# --- upstream aie_kernels/aie2/mm.cc, -Dbf16_f32_ONLY: mmul<4, 8, 4> bf16 x bf16 -> f32 -----------
# mm.cc reads A as (m/r, k/s) blocks of r x s, B as (k/s, n/t) blocks of s x t, and keeps C as
# (m/r, n/t) blocks of r x t, each block row-major and contiguous (the layouts the design's
# dims_to_stream produce and undo). r, s, t = 4, 8, 4 for bf16 on aie2.
MM_R, MM_S, MM_T = 4, 8, 4


def _unblock(a, rows, cols, br, bc):
    return a.reshape(rows // br, cols // bc, br, bc).transpose(0, 2, 1, 3).reshape(rows, cols)


def _block(a, br, bc):
    rows, cols = a.shape
    return a.reshape(rows // br, br, cols // bc, bc).transpose(0, 2, 1, 3).reshape(rows, cols)


def matmul_bf16_f32(d):
    m, k, n = d["DIM_M"], d["DIM_K"], d["DIM_N"]

    def body(a, b, c):
        A = _unblock(a.astype(np.float32), m, k, MM_R, MM_S)
        B = _unblock(b.astype(np.float32), k, n, MM_S, MM_T)
        C = _unblock(c, m, n, MM_R, MM_T)
        c[...] = _block((C.astype(np.float64) + A.astype(np.float64) @ B.astype(np.float64)).astype(np.float32),
                        MM_R, MM_T)
    return body


def zero_f32(d):
    def body(c):
        c[...] = 0
    return body


# --- kernels/matmul/aie/epilogue/epilogue.cc ------------------------------------------------------
def phoenix_epi_keep_bias(d):
    def body(row, bias):
        bias[...] = row
    return body


def phoenix_epilogue(d):
    alpha, gelu, has_bias, has_res = d["ALPHA"], d["GELU_MODE"], d["HAS_BIAS"], d["HAS_RESIDUAL"]

    def body(acc, bias, *rest):
        res, y = rest if has_res else (None, rest[0])
        v = np.float32(alpha) * acc.astype(np.float32)
        if has_bias:
            v = v + bias
        v = v.astype(np.float64)
        if gelu >= 0:
            v = _gelu(v, gelu)
        if has_res:
            v = v + res.astype(np.float64)
        y[...] = _bf16(v)
    return body


# --- kernels/layernorm/aie/layernorm.cc: rows of COLS, FP32 gamma (beta) ---------------------------
def phoenix_layernorm_bf16(d):
    cols, eps, has_beta = d["COLS"], d["EPSILON"], d["HAS_BETA"]

    def body(x, gamma, beta, y, rows):
        v = x.astype(np.float64).reshape(rows, cols)
        mean = v.mean(axis=1, keepdims=True)
        var = ((v - mean) ** 2).mean(axis=1, keepdims=True)
        out = (v - mean) / np.sqrt(var + eps) * gamma
        if has_beta:
            out = out + beta
        y[...] = _bf16(out).reshape(y.shape)
    return body


# --- kernels/softmax/aie/softmax.cc: rows of COLS, y = softmax(SCALE * x) ---------------------------
def phoenix_softmax_bf16(d):
    cols, scale = d["COLS"], d["SCALE"]

    def body(x, y, rows):
        v = np.float64(np.float32(scale)) * x.astype(np.float64).reshape(rows, cols)
        e = np.exp(v - v.max(axis=1, keepdims=True))
        y[...] = _bf16(e / e.sum(axis=1, keepdims=True)).reshape(y.shape)
    return body


# --- kernels/gelu/aie/gelu.cc: n elements ------------------------------------------------------------
def phoenix_gelu_bf16(d):
    mode = d["MODE"]

    def body(x, y, n):
        y[:n] = _bf16(_gelu(x[:n].astype(np.float64), mode))
    return body


# --- upstream aie_kernels/aie2/mm.cc, -Di8_i32_ONLY: mmul<4, 8, 8> int8 x int8 -> int32 -------------
# The same blocked layouts with r, s, t = 4, 8, 8; the sum is exact (int64 here, int32 on the tile:
# the INT8 MatMul's K limit keeps every partial sum in int32).
MM8_R, MM8_S, MM8_T = 4, 8, 8


def matmul_i8_i32(d):
    m, k, n = d["DIM_M"], d["DIM_K"], d["DIM_N"]

    def body(a, b, c):
        A = _unblock(a.astype(np.int64), m, k, MM8_R, MM8_S)
        B = _unblock(b.astype(np.int64), k, n, MM8_S, MM8_T)
        C = _unblock(c.astype(np.int64), m, n, MM8_R, MM8_T)
        out = C + A @ B
        if np.abs(out).max() >= 2 ** 31:
            raise OverflowError("matmul_i8_i32: a partial sum leaves int32")
        c[...] = _block(out.astype(np.int32), MM8_R, MM8_T)
    return body


def zero_i32(d):
    def body(c):
        c[...] = 0
    return body


# --- kernels/matmul_int8/aie/quantize/quantize.cc: qa'' = round(clamp(x / sa)) + (za - c_a) ---------
# NOT the contract's scalar division: the vector algorithm quantize.cc runs (its header has the proof),
# p = (x r0 + x r1) + x r2 with r = RN(1 / sa) = r0 + r1 + r2 in BF16 pieces, FP32 accumulations;
# the nearest integer by the magic add t = p + 1.5 * 2^23 and its one-step correction; the lanes within
# 2^-12 of a half-integer and the NaN / Inf inputs divided exactly (scalar IEEE), as the kernel's
# fix-up loop. `acc` models the accumulator's FP32 adds: "rne" (round to nearest even: what the body
# the stand-in runs assumes), "rz" (toward zero) and "ftz" (nearest, subnormal results flushed);
# the proof holds for each, and tests/test_iron_standin.py checks all three against ORT's integers.
QUANT_NEAR = np.float32(2.0 ** -12)
QUANT_MAGIC = np.float32(1.5 * 2 ** 23)


def _trunc16(v):
    """The BF16 truncation of FP32 values (the upper 16 bits), as FP32."""
    return (np.asarray(v, np.float32).view(np.uint32) & np.uint32(0xFFFF0000)).view(np.float32)


def _acc_add(a, b, acc):
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        if acc == "rz":   # toward zero: the float64 sum (exact unless the exponents are far apart), truncated
            s = a.astype(np.float64) + b.astype(np.float64)
            r = s.astype(np.float32)
            up = np.abs(r.astype(np.float64)) > np.abs(s)
            r = np.where(up & np.isfinite(s), np.nextafter(r, np.float32(0)), r)
            return np.where(np.isinf(s), s.astype(np.float32), r).astype(np.float32)
        r = a + b
        if acc == "ftz":
            r = np.where(np.abs(r) < np.finfo(np.float32).tiny, np.float32(0), r)
        return r.astype(np.float32)


def quantize_exact(x, sa, lo, hi, shift):
    """The contract's step 1 in scalar IEEE FP32 (quantize.cc's Exact): the integers of ORT's CPU
    QuantizeLinear, shifted."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        v = np.asarray(x, np.float32) / np.float32(sa)
    v = np.where(v > lo, v, np.float32(lo))      # NaN -> lo, as `v > lo ? v : lo`
    v = np.where(v < hi, v, np.float32(hi))
    return (np.rint(v).astype(np.int32) + np.int32(shift)).astype(np.int8)


def quantize_vector(x, sa, lo, hi, shift, acc="rne", fixup=True):
    """quantize.cc's phoenix_quantize_i8 on FP32 values of BF16 inputs (see above). fixup=False leaves
    the near-half-integer lanes to the vector result (what the fix-up is for: a test shows the
    difference). Returns (int8 values, number of lanes divided)."""
    x = np.asarray(x, np.float32)
    sa, lo, hi = np.float32(sa), np.float32(lo), np.float32(hi)
    with np.errstate(divide="ignore", over="ignore"):
        r = np.float32(1) / sa
    if not (2.0 ** -100 <= r <= 2.0 ** 100):
        return quantize_exact(x, sa, lo, hi, shift), x.size
    r0 = _trunc16(r)
    rem = np.float32(r - r0)                     # exact
    r1 = _trunc16(rem)
    r2 = np.float32(rem - r1)                    # exact, <= 8 significant bits
    def prod(r_i):                               # exact (8 x 8 significant bits) or overflowing
        with np.errstate(over="ignore", invalid="ignore"):
            v = x * r_i
        return np.where(np.abs(v) < np.finfo(np.float32).tiny, np.float32(0), v) if acc == "ftz" else v

    with np.errstate(over="ignore", invalid="ignore"):
        p = prod(r0)
        p = _acc_add(p, prod(r1), acc)
        p = _acc_add(p, prod(r2), acc)
        p = np.where(p > lo, p, lo)              # select(lo, p, gt(p, lo))
        p = np.where(p < hi, p, hi)
        t = _acc_add(p, QUANT_MAGIC, acc)
        n = t.view(np.int32) - QUANT_MAGIC.view(np.int32)
        d = np.float32(p - np.float32(t - QUANT_MAGIC))
    n = np.where(d > np.float32(0.5), n + 1, n)
    n = np.where(d < np.float32(-0.5), n - 1, n)
    near = np.abs(np.abs(d) - np.float32(0.5)) < QUANT_NEAR
    special = (x.view(np.uint32) >> 16 & 0x7F80) == 0x7F80   # the BF16 input's exponent bits all ones
    out = (n + np.int32(shift)).astype(np.int8)
    fix = (near | special) if fixup else special
    out[fix] = quantize_exact(x[fix], sa, lo, hi, shift)
    return out, int(fix.sum())


def phoenix_quantize_i8(d):
    cols, dup = d["COLS"], d.get("DUP", 1)   # DUP = 2: each row written twice, [qa'' | qa'']

    def body(x, qparams, y, rows):
        sa, lo, hi, shift = (np.float32(v) for v in qparams[:4])
        q, _ = quantize_vector(x[:rows * cols].astype(np.float32), sa, lo, hi, int(shift))
        y[:rows * cols * dup] = np.tile(q.reshape(rows, 1, cols), (1, dup, 1)).reshape(-1)
    return body


# --- kernels/matmul_int8/aie/epilogue/epilogue.cc ----------------------------------------------------
def phoenix_epi8_keep_row(d):
    def body(row, dst):
        dst[...] = row
    return body


def phoenix_epilogue_i8(d):
    alpha, gelu, has_bias, has_res = d["ALPHA"], d["GELU_MODE"], d["HAS_BIAS"], d["HAS_RESIDUAL"]

    def body(acc, corr, scale, bias, *rest):
        res, y = rest if has_res else (None, rest[0])
        with np.errstate(over="ignore"):
            s = (acc.astype(np.int32) + corr.astype(np.int32)).astype(np.int32)   # wrapping 32-bit add
        v = s.astype(np.float32) * scale.view(np.float32)                          # RNE conversion, FP32 multiply
        if alpha != 1.0:
            v = v * np.float32(alpha)
        if has_bias:
            v = v + bias.view(np.float32)
        if gelu >= 0:
            v = _gelu(v.astype(np.float64), gelu)
            if has_res:
                v = v + res.astype(np.float64)
        elif has_res:
            v = v + res.astype(np.float32)                                          # FP32 add, then one rounding
        y[...] = _bf16(v)
    return body


KERNELS = {f.__name__: f for f in (matmul_bf16_f32, zero_f32, phoenix_epi_keep_bias, phoenix_epilogue,
                                   phoenix_layernorm_bf16, phoenix_softmax_bf16, phoenix_gelu_bf16,
                                   matmul_i8_i32, zero_i32, phoenix_quantize_i8, phoenix_epi8_keep_row,
                                   phoenix_epilogue_i8)}
