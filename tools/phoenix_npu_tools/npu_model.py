"""A cost model of the Phoenix NPU (mlir-aie's `npu1`) and a tile plan for the Whisper encoder.

Everything this module computes is MODELLED, not measured: no kernel of this project has run on
an NPU yet. The model places each kernel of the encoder plan on the 4 x 4 compute array, checks
that every compute tile's buffers fit its 64 KB data memory with double buffering and every
memtile's fit its 512 KB, counts the bytes that cross the shim DMAs, and predicts

    time = max(compute, DMA) + launch overhead

per kernel. A plan that does not fit is rejected with `PlanError` (the reason says which buffer
of which tile overflows). The assumptions (efficiencies, DMA width, cost of FP32 vector maths
on AIE-ML) are parameters of `NPU1`, each with its source or marked as an assumption; docs/npu.md
discusses them.

Pure Python + the standard library (numpy is not needed for this arithmetic).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

KIB = 1024


class PlanError(ValueError):
    """A kernel tiling that does not fit npu1 (or no tiling fits). `reason` says why."""

    def __init__(self, kernel: str, reason: str):
        super().__init__(f"{kernel}: {reason}")
        self.kernel = kernel
        self.reason = reason


@dataclass(frozen=True)
class NPU1:
    """npu1 (Phoenix / Hawk Point, XDNA1, AIE-ML) as mlir-aie v1.4.1 exposes it.

    Every value has its source in docs/npu.md (section 1); values marked ASSUMPTION are ours and
    are the first thing to calibrate on hardware.
    """

    cols: int = 4                      # mlir-aie npu1: 4 usable columns
    rows: int = 4                      # 4 compute rows (+ 1 memtile row + 1 shim row)
    l1_bytes: int = 64 * KIB           # data memory per compute tile, INCLUDING the core's stack
    l1_reserved: int = 0               # nothing hidden: each design states its stack (stack_bytes)
    memtile_bytes: int = 512 * KIB     # per memtile
    bf16_macs: int = 128               # BF16 MACs / cycle / tile, FP32 accumulation (AM020)
    int8_macs: int = 256               # INT8 MACs / cycle / tile (AM020)
    clock_ghz: float = 1.0             # 1.0-1.6 GHz range (driver power table)
    shim_tiles: int = 4
    shim_mm2s: int = 2                 # DDR -> array channels per shim tile
    shim_s2mm: int = 2                 # array -> DDR channels per shim tile
    channel_bytes_per_cycle: int = 4   # 32-bit AXI4-stream per DMA channel (AM020)
    core_s2mm: int = 2                 # input DMA channels of a compute tile
    core_mm2s: int = 2                 # output DMA channels of a compute tile
    memtile_mm2s: int = 6              # memtile DMA channels each way (AIETargetModel.cpp: DMA bundle = 6);
    memtile_s2mm: int = 6              # each memtile -> core ObjectFifo (a split output) takes its own MM2S
    memtile_north: int = 6             # streams from a memtile up into the compute rows (North dest = 6)
    lock_max: int = 63                 # AIE-ML lock values (AIETargetModel getMaxLockValue = 0x3F); a memtile
                                       # ObjectFifo replayed `repeat_count` times starts its lock at depth * repeat
    shim_bds: int = 16                 # buffer descriptors per shim tile (AIETargetModel getNumBDs)
    memtile_bds: int = 48
    dma_queue_depth: int = 4           # tasks queued per shim DMA channel; a push onto a full queue is dropped
    vector_align: int = 32             # 256-bit loads/stores: 32-byte aligned (L1 buffers are allocated so)
    dma_granule: int = 4               # shim DMA address granularity in bytes
    d0_d1_wrap_max: int = 1023         # 10-bit wraps of the two inner shim / memtile dims
    repeat_max: int = 64               # outermost (repeat) dimension: 6 bits
    default_stack: int = 0x400         # AIETargetModel::getDefaultCoreStackSize
    hw_contexts: int = 6               # per device, all processes (xdna-driver npu1_regs.c)
    dma_efficiency: float = 0.85       # ASSUMPTION: BD/reconfiguration gaps
    mac_efficiency: float = 0.5        # whole-array BF16 GEMM measured at ~50 % of peak (mlir-aie #2735)
    # Vector unit. AIE-ML has no FP32 vector multiplier: Peano's default ("safe") emulation of a
    # 16-lane FP32 multiply is 4 splitting MSCs + 9 BF16 products = 13 MAC-slot instructions
    # (llvm-aie aiev2_core.h, mul_elem_16_accuracy_safe; _FAST = 10, _LOW = 5).
    fp32_lanes: int = 16
    fp32_mul_cycles: float = 13.0
    fp32_add_cycles: float = 1.0       # native FP32 add on the accumulator registers
    fp32_misc_cycles: float = 1.0      # compare/select/convert/integer op per 16 lanes
    launch_overhead_us: float = 92.0   # one XRT run on npu1: the driver's no-op validate.xclbin, 92 us/iter
                                       # (xdna-driver #796); 45-60 us (mlir-aie #2381) was not measured on npu1
    dma_task_us: float = 0.2           # ASSUMPTION: writing one shim BD + queue push from the instruction stream
    # Every launch of a different xclbin kernel than the one loaded reloads the array's PDI (the firmware
    # elides only a reload of the PDI already loaded: mlir-aie PR #3056 review, hrx-system #807). Published
    # costs: 80-190 us with optimised control-packet reconfiguration (iree-amd-aie #1187, Strix) up to
    # 570 us for a full reload of an 8-worker design (hrx-system #807, Strix). None measured on npu1.
    pdi_reload_us: float = 100.0       # low end of the published range (the modelled time)
    pdi_reload_high_us: float = 570.0  # high end (the modelled upper bound)
    # Per-stage mode only: creating an xrt::hw_context for an evicted stage (xclbin registration, firmware
    # context setup). ASSUMPTION: no published npu1 figure; calibrate on hardware (docs/npu.md 5a).
    context_create_us: float = 2000.0
    head_switch_exposed: bool = True   # attention: next head's K/V load is not overlapped

    @property
    def cores(self) -> int:
        return self.cols * self.rows

    def sources(self) -> list:
        """[(name, value, unit, source)] of every constant the encoder time depends on (`plan` prints them)."""
        return [(k, getattr(self, k), unit, src) for k, unit, src in CONSTANT_SOURCES]

    @property
    def hz(self) -> float:
        return self.clock_ghz * 1e9

    def peak_bf16_flops(self) -> float:
        return self.cores * self.bf16_macs * 2 * self.hz

    def shim_in_bytes_per_s(self) -> float:
        return self.shim_tiles * self.shim_mm2s * self.channel_bytes_per_cycle * self.hz * self.dma_efficiency

    def shim_out_bytes_per_s(self) -> float:
        return self.shim_tiles * self.shim_s2mm * self.channel_bytes_per_cycle * self.hz * self.dma_efficiency


# Where each constant of the time model comes from (printed by `phoenix-npu plan`; docs/npu.md section 1).
CONSTANT_SOURCES = [
    ("clock_ghz", "GHz", "--clock; 1.0 is pessimistic: the driver requests max DPM, H-clock up to 1.6 GHz "
                         "(xdna-driver aie2_ctx.c aie2_calc_ctx_dpm, npu1_regs.c)"),
    ("bf16_macs", "MAC/cycle/tile", "AM020 (AIE-ML): 128 BF16 MACs, FP32 accumulation"),
    ("mac_efficiency", "", "mlir-aie #2735: whole_array BF16 GEMM on XDNA1 at most ~50 % of peak"),
    ("fp32_mul_cycles", "cycles/16 lanes", "llvm-aie aiev2_core.h mul_elem_16_accuracy_safe (Peano default)"),
    ("channel_bytes_per_cycle", "B/cycle", "AM020: 32-bit DMA stream per channel"),
    ("dma_efficiency", "", "ASSUMPTION (BD / reconfiguration gaps); not measured"),
    ("dma_task_us", "us", "ASSUMPTION: one shim BD write + queue push"),
    ("launch_overhead_us", "us", "xdna-driver #796: npu1 no-op validate.xclbin 92 us/iter (mlir-aie #2944: "
                                 "107-148 us per small run)"),
    ("pdi_reload_us", "us", "per change of xclbin kernel; low end: iree-amd-aie #1187 (80-190 us, ctrl-packet "
                            "reconfiguration, Strix)"),
    ("pdi_reload_high_us", "us", "high end: hrx-system #807 (570 us full PDI reload, Strix); none measured on npu1"),
    ("context_create_us", "us", "ASSUMPTION (per-stage mode, a context-cache miss): no published npu1 figure"),
    ("hw_contexts", "", "xdna-driver npu1_regs.c hwctx_limit = 6, shared by all processes"),
]


# --- Numerics cost: cycles per element on ONE tile's vector unit -------------------------------
# "contract": the FP32 steps of kernels/common/bf16.h (degree-6 Horner exp, the erfc fit, FP32
# LayerNorm), with FP32 multiplies emulated. "lut": what AIE-ML kernels usually do instead (BF16
# LUT exp/tanh as in mlir-aie's lut_based_ops, BF16 elementwise maths) - NOT our numerics
# contract; shown to say what the contract costs on this hardware.
def _op_counts(fn: str) -> tuple[float, float, float]:
    """(FP32 multiplies, FP32 adds, other vector ops) per element for one function."""
    exp = (8, 7, 4)                                      # x*log2e, round, 6 Horner, scale
    if fn == "exp":
        return exp
    if fn == "softmax":                                  # scale*x, max | scale*x-max, exp, sum | *inv, cvt
        return (exp[0] + 3, exp[1] + 2, exp[2] + 4)
    if fn == "erf_gelu":                                 # x/sqrt2, t=1/(1+z/2), -z*z, 9 Horner, t*exp, 0.5*x*(1+erf)
        recip = (3, 3, 2)                                # Newton reciprocal
        return (exp[0] + 16 + recip[0], exp[1] + 14 + recip[1], exp[2] + 5 + recip[2])
    if fn == "layernorm":                                # 2 passes + normalise, gamma, beta, cvt
        return (3, 6, 3)
    if fn == "bias":
        return (0, 1, 0)
    if fn == "residual":
        return (0, 1, 1)
    if fn == "scale":
        return (1, 0, 0)
    raise KeyError(fn)


_LUT_CYCLES_PER_ELEMENT = {  # ASSUMPTION, per tile: BF16 LUT transcendental, 16-32 lanes
    "exp": 0.15, "softmax": 0.35, "erf_gelu": 0.3, "layernorm": 0.25, "bias": 1 / 16,
    "residual": 1 / 16, "scale": 1 / 32,
}


def vector_cycles_per_element(npu: NPU1, fn: str, numerics: str = "contract") -> float:
    if numerics == "lut":
        return _LUT_CYCLES_PER_ELEMENT[fn]
    if numerics != "contract":
        raise ValueError(f"numerics must be 'contract' or 'lut', not {numerics!r}")
    muls, adds, misc = _op_counts(fn)
    cycles16 = muls * npu.fp32_mul_cycles + adds * npu.fp32_add_cycles + misc * npu.fp32_misc_cycles
    return cycles16 / npu.fp32_lanes


# --- Kernels of the encoder plan --------------------------------------------------------------
@dataclass
class Kernel:
    name: str
    op: str                      # matmul | attention | layernorm | softmax | gelu
    params: dict
    repeat: int = 1              # how many times per encoder run (layers)

    @property
    def flops(self) -> float:
        p = self.params
        if self.op in ("matmul", "matmul_int8", "host_conv"):
            return 2.0 * p.get("batch", 1) * p["M"] * p["K"] * p["N"]
        if self.op in ("attention", "host_attention"):
            return 2.0 * 2.0 * p["heads"] * p["T"] * p["T"] * p["dh"]
        return 0.0


@dataclass
class KernelPlan:
    kernel: Kernel
    tiling: str
    l1_bytes: int                # per compute tile, worst case
    l2_bytes: int                # per memtile, worst case
    shim_in: float               # bytes DDR -> array per call
    shim_out: float              # bytes array -> DDR per call
    compute_s: float             # MAC array + vector unit, per call
    dma_s: float                 # shim DMA, per call
    overhead_s: float            # launch overhead, per call
    bound: str = ""
    notes: list = field(default_factory=list)

    @property
    def time_s(self) -> float:
        return max(self.compute_s, self.dma_s) + self.overhead_s

    @property
    def total_s(self) -> float:
        return self.time_s * self.kernel.repeat


WHISPER = {  # d_model, heads, layers (the seed's table; head dim 64, FFN 4*D)
    "tiny": (384, 6, 4),
    "base": (512, 8, 6),
    "small": (768, 12, 12),
    "medium": (1024, 16, 24),
    "large": (1280, 20, 32),
}
N_MELS = 80  # large-v3 has 128; the stem cost difference is < 0.1 % of the encoder


# Fused attention is not built for the NPU (docs/npu.md 2b: attention_design is modelled slower): it runs on the
# host (the hybrid device's emulated kernel). MEASURED on this project's CI machine (2 Zen 5
# cores, AVX-512 BF16, docs/benchmarks.md): 84.3 ms per whisper-base run = 14.05 ms per layer
# (8 heads x 1500 x 1500 x 64). Scaled by FLOPs for other sizes; a Phoenix laptop has 8 Zen 4
# cores (ASSUMPTION: about 3x faster), so this is an upper bound.
HOST_ATTENTION_S_PER_GFLOP = 14.05e-3 / (4.0 * 8 * 1500 * 1500 * 64 / 1e9)
# The conv stem has no NPU design (conv1's K = 240 fits no GEMM tile, and neither conv is in the kernel
# manifest): the hybrid device runs it on the host as Im2Col + MatMul. MEASURED in the same run
# (docs/benchmarks.md, whisper-base): MatMul 162.7 ms for 59.7 GFLOP (the 6 layers' 56.6 + the stem's 3.1),
# Im2Col 1.6 ms. Scaled by FLOPs for other sizes.
HOST_MATMUL_S_PER_GFLOP = 162.7e-3 / 59.7
HOST_IM2COL_S_PER_GFLOP = 1.6e-3 / 3.1


# The INT8 quantize stage (kernels/matmul_int8/aie/quantize/quantize.cc) is vector code: per 16 lanes,
# 3 BF16 MACs (x r0, + x r1, + x r2: x * RN(1 / sa)), 4 FP32 adds (t = p + 1.5 * 2^23, t - 1.5 * 2^23,
# d = p - that, |d| - 1/2) and 19 other vector instructions (accumulator -> vector, the clamp's 2 compares
# and 2 selects, the integer n, the one-step correction's 2 compares, 2 adds and 2 selects, 2 abs, the
# near-half-integer compare, the NaN / Inf test's and + compare, + shift, the int32 -> int8 pack).
# ASSUMPTIONS: one vector instruction per cycle (loads, stores, the mask test and the loop run in the other
# VLIW slots; no credit for co-issue of two vector instructions), a BF16 MAC of 16 lanes in 1 cycle (AM020);
# and the lanes the kernel divides (within 2^-12 of a half-integer: a window of 2 x 2^-12 per quantum,
# so 2^-11 of the lanes for activations spread over many quanta; NaN / Inf inputs) at the scalar kernel's
# assumed 40 cycles each (Peano's soft-float __divsf3, clamp, round: no published AIE-ML figure).
# Worst case (every lane within 2^-12 of a half-integer: a power-of-two scale on half-quantum data) it is
# the scalar kernel's cost plus the vector pass.
QUANTIZE_VECTOR_OPS = {"bf16_mac": 3, "fp32_add": 4, "misc": 19}
QUANTIZE_DIVIDED_FRACTION = 2.0 ** -11
QUANTIZE_SCALAR_CYCLES_PER_ELEMENT = 40.0


def quantize_cycles_per_element(npu: "NPU1", divided: float = QUANTIZE_DIVIDED_FRACTION) -> float:
    """Modelled cycles per element of quantize.cc on one tile: the vector pass plus the divided lanes."""
    ops = QUANTIZE_VECTOR_OPS
    cycles16 = (ops["bf16_mac"] * npu.fp32_misc_cycles + ops["fp32_add"] * npu.fp32_add_cycles
                + ops["misc"] * npu.fp32_misc_cycles)
    return cycles16 / npu.fp32_lanes + divided * QUANTIZE_SCALAR_CYCLES_PER_ELEMENT


def encoder_kernels(model: str = "base", seconds: float = 30.0, attention: str = "host",
                    precision: str = "bf16") -> list[Kernel]:
    """The kernel calls of one encoder run: conv stem, per-layer blocks, final LayerNorm. A MatMul
    is the whole-array GEMM (FP32 out) followed by its elementwise epilogue pass; with precision
    "int8" (a QDQ model: kernels/matmul_int8) each linear layer is the quantize stage, the INT8
    GEMM (int32 out) and the dequantizing epilogue."""
    if precision not in ("bf16", "int8"):
        raise ValueError("precision must be 'bf16' or 'int8'")
    if model not in WHISPER:
        raise ValueError(f"unknown model {model!r}; choose from {', '.join(WHISPER)}")
    D, H, L = WHISPER[model]
    T = int(round(seconds * 50))         # 50 positions per second after the stride-2 conv
    if not 1 <= T <= 1500:
        raise ValueError("seconds must be in (0, 30]: Whisper's encoder window is 30 s")
    frames = 2 * T

    def mm(name, repeat=1, **p):
        epi_p = dict(rows=p["M"], cols=p["N"], K=p["K"], bias=p.get("bias", False), gelu=p.get("gelu", False),
                     residual=p.get("residual", False))
        if precision == "int8":
            return [Kernel(name + " q8", "quantize", dict(rows=p["M"], cols=p["K"], N=p["N"]), repeat),
                    Kernel(name, "matmul_int8", dict(p, weight=True), repeat),
                    Kernel(name + " epi8", "epilogue_i8", epi_p, repeat)]
        return [Kernel(name, "matmul", dict(p, weight=True), repeat), Kernel(name + " epi", "epilogue", epi_p, repeat)]

    ks = [
        # conv1 (k=3, pad 1) and conv2 (k=3, stride 2) as im2col MatMuls (+ GELU; + positions): host work
        # (no NPU design; see HOST_MATMUL_S_PER_GFLOP).
        Kernel("conv1+gelu (host)", "host_conv", dict(M=frames, K=3 * N_MELS, N=D)),
        Kernel("conv2+gelu+pos (host)", "host_conv", dict(M=T, K=3 * D, N=D)),
        Kernel("ln1", "layernorm", dict(rows=T, cols=D), L),
        *mm("qkv", L, M=T, K=D, N=3 * D, bias=True),
    ]
    if attention == "host":
        ks.append(Kernel("attention (host)", "host_attention", dict(heads=H, T=T, dh=64), L))
    elif attention == "fused":
        ks.append(Kernel("attention", "attention", dict(heads=H, T=T, dh=64), L))
    elif attention == "unfused":
        ks += [
            Kernel("scores=QK^T", "matmul", dict(batch=H, M=T, K=64, N=T, weight=False), L),
            Kernel("softmax", "softmax", dict(rows=H * T, cols=T), L),
            Kernel("context=PV", "matmul", dict(batch=H, M=T, K=T, N=64, weight=False), L),
        ]
    else:
        raise ValueError("attention must be 'host', 'fused' or 'unfused'")
    ks += [
        *mm("out_proj+res", L, M=T, K=D, N=D, bias=True, residual=True),
        Kernel("ln2", "layernorm", dict(rows=T, cols=D), L),
        *mm("fc1+gelu", L, M=T, K=D, N=4 * D, bias=True, gelu=True),
        *mm("fc2+res", L, M=T, K=4 * D, N=D, bias=True, residual=True),
        Kernel("ln_post", "layernorm", dict(rows=T, cols=D)),
    ]
    return ks


def _ceil_to(x: int, q: int) -> int:
    return -(-x // q) * q


# --- MatMul on the whole array -----------------------------------------------------------------
# Output blocks of (4m x 4n): core (r, c) computes an m x n tile, k at a time, FP32 accumulator
# in L1. A rows are broadcast along a row of cores, B columns down a column of cores (as in
# mlir-aie's whole_array design). Tails (M or N not a multiple of the block) are handled by an
# overlapping last block (it recomputes a few rows/columns and writes identical values), so the
# cost is that of the padded size and nothing is written out of bounds.
#
# L2 modes: "stream" re-reads A for every column block and B for every row block; "a_panel"
# keeps the (m x K) row panel of each core row in its memtile (A read once, B re-read per row
# block); "b_panel" keeps the (K x n) column panel of each core column (B read once, A re-read
# per column block).
#
# Residual epilogue: a compute tile has only 2 input DMA channels (A and B). The residual tiles
# ride the B stream: before the K/k B tiles of an output block, the column's B FIFO carries the 4
# residual tiles of its 4 cores (broadcast down the column like B; each core keeps its own in an
# m x n L1 buffer and adds it after the epilogue, as the emulated kernel does). That needs
# k % m == 0 (the shim repeats the m residual rows k/m times to fill a k x n object) and costs 4*m*n*2 bytes per block on the B channel;
# the residual is read from DDR once. b_panel mode is not used with a residual (its memtile BD
# chain would have to interleave two buffers, which one ObjectFifo link cannot express).
MM_M = (16, 32, 48, 64, 96, 128)
MM_K = (32, 64, 128, 256)
MM_N = (16, 32, 48, 64, 96, 128)


GEMM_STACK = 0xD00   # upstream whole_array's worker stack (mm.cc's 4x4-unrolled loop)
ROWS_STACK = 0x1000  # row kernels inline Exp16 / Erf16 (phoenix_aie_math.h): room for their spills


def matmul_l1_bytes(m: int, k: int, n: int, bias: bool = False, residual: bool = False, elem_bytes: int = 2) -> dict:
    """L1 of one GEMM core (kernels/matmul/aie/gemm/design.py): double-buffered A, B and FP32 C tiles,
    and the stack. bias / residual belong to the epilogue pass and cost nothing here. elem_bytes 1:
    the INT8 GEMM (int8 A and B, int32 C)."""
    t = "bf16" if elem_bytes == 2 else "int8"
    return {
        f"A (2 x m*k {t})": 2 * m * k * elem_bytes,
        f"B (2 x k*n {t})": 2 * k * n * elem_bytes,
        "C (2 x m*n 32-bit)": 2 * m * n * 4,
        "stack": GEMM_STACK,
    }


def matmul_l2_bytes(m: int, k: int, n: int, K: int, mode: str, bias: bool, residual: bool, rows: int = 4) -> dict:
    b = {}
    if mode == "a_panel":
        b["A panel (2 x m*K)"] = 2 * m * K * 2
    else:
        b["A (2 x m*k)"] = 2 * m * k * 2
    if mode == "b_panel":
        b["B panel (2 x K*n)"] = 2 * K * n * 2
    else:
        b["B (2 x k*n)"] = 2 * k * n * 2
    b["C join (2 x 4*m*n)"] = 2 * rows * m * n * 2
    if bias:
        b["bias (2 x n fp32)"] = 2 * n * 4
    return b


def _fastest(name: str, attempts, forced: bool) -> "KernelPlan":
    """The fastest plan among `attempts` (callables that build one plan or raise PlanError).
    With `forced` (the caller fixed the tiling) a plan that does not fit is the error."""
    best, reasons = None, []
    for attempt in attempts:
        try:
            plan = attempt()
        except PlanError as e:
            if forced:
                raise
            reasons.append(e.reason)
            continue
        if best is None or plan.time_s < best.time_s:
            best = plan
    if best is None:
        raise PlanError(name, "no tiling fits: " + (reasons[0] if reasons else "no candidates"))
    return best


def _check(name: str, where: str, parts: dict, cap: int) -> int:
    total = sum(parts.values())
    if total > cap:
        detail = ", ".join(f"{k} {v / KIB:.1f} KiB" for k, v in parts.items())
        raise PlanError(name, f"{where} needs {total / KIB:.1f} KiB > {cap / KIB:.0f} KiB ({detail})")
    return total


def plan_matmul(kern: Kernel, npu: NPU1, numerics: str = "contract", tiles=None, mode=None) -> KernelPlan:
    """Best (fastest) fitting tiling, or the given `tiles=(m,k,n)` / `mode`, which must fit. A
    "matmul_int8" kernel is the INT8 GEMM (int8 operands, 256 MACs / cycle / tile, int32 out)."""
    p = kern.params
    dtype = "i8" if kern.op == "matmul_int8" else "bf16"
    M, K, N, batch = p["M"], p["K"], p["N"], p.get("batch", 1)
    bias, gelu, residual = p.get("bias", False), p.get("gelu", False), p.get("residual", False)
    built = None
    if not tiles and batch == 1:   # price the tile that is built (gemm_design), not the best modelled one
        try:
            d = gemm_design(kern.name, M, K, N, npu, dtype=dtype)
            built = (d.params["m"], d.params["k"], d.params["n"])
        except DesignError:
            built = None
    cands = [tiles or built] if (tiles or built) else [(m, k, n) for m in MM_M for k in MM_K for n in MM_N]
    modes = [mode] if mode else ["stream"]  # the design (kernels/matmul/aie/gemm/design.py) streams A and B
    plan = _fastest(kern.name, (
        (lambda m=m, k=k, n=n, md=md: _matmul_one(kern, npu, numerics, m, k, n, md, M, K, N, batch, bias, gelu,
                                                  residual, dtype))
        for (m, k, n) in cands for md in modes), forced=bool(tiles or built))
    if built:
        plan.tiling += " (built: gemm_design)"
    elif not tiles:
        plan.notes.append("no built design: best modelled tile")
    return plan


def _matmul_one(kern, npu, numerics, m, k, n, mode, M, K, N, batch, bias, gelu, residual, dtype="bf16") -> KernelPlan:
    name = kern.name
    eb, macs = (1, npu.int8_macs) if dtype == "i8" else (2, npu.bf16_macs)
    if dtype == "i8" and (m % 16 or n % 16 or k % 8):
        raise PlanError(name, f"tile {m}x{k}x{n}: mm.cc's i8 kernel (mmul 4x8x8) needs m, n % 16 == 0 and k % 8 == 0")
    if dtype != "i8" and (m % 8 or n % 8 or k % 16):
        raise PlanError(name, f"tile {m}x{k}x{n}: the 4x8x4 BF16 mmul with 2x2 unrolling needs m, n % 8 == 0 and k % 16 == 0")
    R, C = npu.rows, npu.cols
    Mp, Np, Kp = _ceil_to(M, R * m), _ceil_to(N, C * n), _ceil_to(K, k)
    if M < R * m or N < C * n:
        raise PlanError(name, f"tile {m}x{k}x{n}: matrix {M}x{N} smaller than one {R * m}x{C * n} array block")
    l1 = _check(name, f"compute tile L1 (tile {m}x{k}x{n})", matmul_l1_bytes(m, k, n, bias, residual, eb),
                npu.l1_bytes - npu.l1_reserved)
    l2 = _check(name, f"memtile L2 (mode {mode}, tile {m}x{k}x{n}, K={Kp})",
                matmul_l2_bytes(m, k, n, Kp, mode, bias, residual, R), npu.memtile_bytes)
    row_blocks, col_blocks = Mp // (R * m), Np // (C * n)
    # Shim traffic per call.
    a_once, b_once = Mp * Kp * float(eb), Kp * Np * float(eb)
    if mode == "stream":
        a_bytes, b_bytes = a_once * col_blocks, b_once * row_blocks
    elif mode == "a_panel":
        a_bytes, b_bytes = a_once, b_once * row_blocks
    else:  # b_panel
        a_bytes, b_bytes = a_once * col_blocks, b_once
    shim_in = batch * (a_bytes + b_bytes)
    shim_out = batch * M * N * 4.0  # FP32 (int32) C to the scratch; the epilogue pass makes it BF16
    # Compute: per k-step a tile does m*k*n MACs; its two input channels must deliver the A and B
    # tiles (4 B/cycle each) in the same time, else the core waits on its DMA.
    mac_cycles = m * k * n / (macs * npu.mac_efficiency)
    feed_cycles = max(m * k * eb, k * n * eb) / (npu.channel_bytes_per_cycle * npu.dma_efficiency)
    steps = batch * row_blocks * col_blocks * (Kp // k)
    compute_cycles = steps * max(mac_cycles, feed_cycles)
    dma_s = max(shim_in / npu.shim_in_bytes_per_s(), shim_out / npu.shim_out_bytes_per_s())
    plan = KernelPlan(kern, f"{mode} m,k,n={m},{k},{n} blocks={row_blocks}x{col_blocks}x{Kp // k}"
                      + (f" batch={batch}" if batch > 1 else ""),
                      l1, l2, shim_in, shim_out, compute_cycles / npu.hz, dma_s, npu.launch_overhead_us * 1e-6)
    if feed_cycles > mac_cycles:
        plan.notes.append("core input DMA slower than the MACs for this tile")
    waste = (Mp * Np) / (M * N) - 1
    if waste > 0.001:
        plan.notes.append(f"{waste * 100:.1f}% recomputed (overlapped tail blocks)")
    plan.bound = "dma" if dma_s > plan.compute_s else "compute"
    return plan


# --- Fused attention per head: Q block x all keys on one tile (attention_design) ---------------
def plan_attention(kern: Kernel, npu: NPU1, numerics: str = "contract", bq=None, bk=None) -> KernelPlan:
    """The cost of attention_design()'s plan: per round each tile forms S = scale * Q K^T for its
    Bq queries over all keys (K streamed), the row softmax over S in L1, then O = P V (V
    streamed). The passes are serial on the tile; the stream overlaps only the MACs of its pass."""
    p = kern.params
    try:
        d = attention_design(kern.name, p["heads"], p["T"], p["dh"], npu, bq=bq, bk=bk)
    except DesignError as e:
        raise PlanError(kern.name, str(e)) from None
    q = d.params
    bq_, tk, dh, rounds = q["bq"], q["tk_pad"], q["dh"], q["rounds_per_head"] * max(q["heads_per_column"])
    feed = tk * dh * 2 / (npu.channel_bytes_per_cycle * npu.dma_efficiency)   # K (or V) of one head, one channel
    mac = bq_ * tk * dh / (npu.bf16_macs * npu.mac_efficiency)                 # QK^T (or PV) of one block
    sm = bq_ * tk * vector_cycles_per_element(npu, "softmax", numerics)
    round_cycles = max(feed, mac) + sm + max(feed, mac)
    head_load = 2 * p["T"] * dh * 2 / (npu.channel_bytes_per_cycle * npu.dma_efficiency)  # KV into the memtile
    cycles = rounds * round_cycles + max(q["heads_per_column"]) * (head_load if npu.head_switch_exposed else 0)
    shim_in = sum(t.bytes for t in d.transfers if t.direction == "mm2s")
    shim_out = sum(t.bytes for t in d.transfers if t.direction == "s2mm")
    dma_s = max(shim_in / npu.shim_in_bytes_per_s(), shim_out / npu.shim_out_bytes_per_s())
    plan = KernelPlan(kern, f"Q block x all keys per tile, Bq={bq_} Bk={q['bk']}, {rounds} rounds/column",
                      sum(d.l1.values()), sum(d.l2.values()), shim_in, shim_out, cycles / npu.hz, dma_s,
                      npu.launch_overhead_us * 1e-6 + len(d.transfers) * npu.dma_task_us * 1e-6)
    plan.bound = "vector" if sm > 2 * max(feed, mac) else "dma" if feed > mac else "compute"
    plan.notes.append(f"per round: K/V stream {2 * feed:.0f}, MACs {2 * mac:.0f}, softmax {sm:.0f} cycles")
    return plan


# --- Row kernels (LayerNorm, Softmax) and elementwise GELU ----------------------------------------
def plan_rows(kern: Kernel, npu: NPU1, numerics: str = "contract", rows_per_obj=None) -> KernelPlan:
    """LayerNorm, Softmax or a MatMul epilogue pass: the cost of rows_design()'s plan."""
    p = kern.params
    try:
        d = rows_design(kern.name, kern.op, p["rows"], p["cols"], npu, bias=p.get("bias", False),
                        residual=p.get("residual", False), beta=True, rows_per_obj=rows_per_obj)
    except DesignError as e:
        raise PlanError(kern.name, str(e)) from None
    fn = {"layernorm": "layernorm", "softmax": "softmax", "gelu": "erf_gelu"}.get(kern.op)
    if kern.op == "quantize":
        cyc_el = quantize_cycles_per_element(npu)
    elif kern.op == "epilogue_i8":
        # + corr (int32), int32 -> FP32, * s_ab (an emulated FP32 multiply), then the MatMul epilogue
        cyc_el = 2 * npu.fp32_misc_cycles / npu.fp32_lanes + npu.fp32_mul_cycles / npu.fp32_lanes
        cyc_el += sum(vector_cycles_per_element(npu, f, numerics) for f, on in
                      (("bias", p.get("bias")), ("erf_gelu", p.get("gelu")), ("residual", p.get("residual"))) if on)
        cyc_el += 1 / 16
    elif kern.op == "epilogue":
        cyc_el = sum(vector_cycles_per_element(npu, f, numerics) for f, on in
                     (("bias", p.get("bias")), ("erf_gelu", p.get("gelu")), ("residual", p.get("residual"))) if on)
        cyc_el += 1 / 16  # FP32 -> BF16 conversion
    else:
        cyc_el = vector_cycles_per_element(npu, fn, numerics)
    r, tiles = d.params["rows_per_obj"], d.params["core_rows"] * npu.cols
    cyc = _ceil_to(p["rows"], tiles * r) / tiles * p["cols"] * cyc_el
    shim_in = sum(t.bytes for t in d.transfers if t.direction == "mm2s")
    shim_out = sum(t.bytes for t in d.transfers if t.direction == "s2mm")
    dma_s = max(shim_in / npu.shim_in_bytes_per_s(), shim_out / npu.shim_out_bytes_per_s())
    plan = KernelPlan(kern, f"rows over {tiles} tiles, {r} row(s)/object", sum(d.l1.values()), sum(d.l2.values()),
                      shim_in, shim_out, cyc / npu.hz, dma_s,
                      npu.launch_overhead_us * 1e-6 + len(d.transfers) * npu.dma_task_us * 1e-6)
    plan.bound = "dma" if dma_s > plan.compute_s else "vector"
    return plan


def plan_gelu(kern: Kernel, npu: NPU1, numerics: str = "contract", chunk=None) -> KernelPlan:
    n = kern.params["n"]
    ch = chunk or 4096
    l1 = _check(kern.name, f"compute tile L1 (chunk {ch})", {"x (2 x chunk)": 2 * ch * 2, "y (2 x chunk)": 2 * ch * 2},
                npu.l1_bytes - npu.l1_reserved)
    l2 = _check(kern.name, f"memtile L2 (chunk {ch})", {"x split": 2 * npu.rows * ch * 2, "y join": 2 * npu.rows * ch * 2},
                npu.memtile_bytes)
    cyc = _ceil_to(n, npu.cores * ch) / npu.cores * vector_cycles_per_element(npu, "erf_gelu", numerics)
    dma_s = n * 2.0 / npu.shim_in_bytes_per_s()
    plan = KernelPlan(kern, f"elementwise, {ch} elements/object", l1, l2, n * 2.0, n * 2.0, cyc / npu.hz, dma_s,
                      npu.launch_overhead_us * 1e-6)
    plan.bound = "dma" if dma_s > plan.compute_s else "vector"
    return plan


def plan_kernel(kern: Kernel, npu: NPU1, numerics: str = "contract") -> KernelPlan:
    if kern.op == "matmul":
        return plan_matmul(kern, npu, numerics)
    if kern.op == "attention":
        return plan_attention(kern, npu, numerics)
    if kern.op in ("layernorm", "softmax", "epilogue", "quantize", "epilogue_i8"):
        return plan_rows(kern, npu, numerics)
    if kern.op == "matmul_int8":
        return plan_matmul(kern, npu, numerics)
    if kern.op == "host_attention":
        t = kern.flops / 1e9 * HOST_ATTENTION_S_PER_GFLOP
        plan = KernelPlan(kern, "host CPU (hybrid device): not built for the NPU", 0, 0, 0.0, 0.0, t, 0.0,
                          0.0, "host")
        plan.notes.append("measured emulated-kernel time on the CI machine, not an NPU figure")
        return plan
    if kern.op == "host_conv":
        g = kern.flops / 1e9
        t = g * (HOST_MATMUL_S_PER_GFLOP + HOST_IM2COL_S_PER_GFLOP)
        plan = KernelPlan(kern, "host CPU (hybrid device): Im2Col + MatMul, no NPU design", 0, 0, 0.0, 0.0, t, 0.0,
                          0.0, "host")
        plan.notes.append("measured emulated-kernel time on the CI machine, not an NPU figure")
        return plan
    if kern.op == "gelu":
        return plan_gelu(kern, npu, numerics)
    raise ValueError(f"no planner for op {kern.op!r}")


# --- Launch order, PDI reloads and hardware contexts ----------------------------------------------
MODES = ("one-xclbin", "per-stage")   # docs/npu.md 5: how the XRT device holds the stages


def stage_key(kern: Kernel):
    """The xclbin kernel a planned kernel launches (None: runs on the host). Kernels with equal keys
    are one xclbin kernel (ln1, ln2 and ln_post are one PHX_LN_<rows>x<cols>)."""
    p = kern.params
    if kern.op in ("host_attention", "host_conv"):
        return None
    if kern.op in ("matmul", "matmul_int8"):
        return ("gemm" if kern.op == "matmul" else "gemm_i8", p.get("batch", 1), p["M"], p["K"], p["N"])
    if kern.op == "quantize":   # the manifest names one quantize stage per INT8 MatMul (PHX_Q8_<M>x<K>x<N>)
        return ("quantize", p["rows"], p["cols"], p.get("N"))
    if kern.op in ("epilogue", "epilogue_i8"):
        # the manifest names an epilogue by its MatMul (PHX_EPI_<M>x<K>x<N>_...): one xclbin kernel per MatMul
        return (kern.op, p["rows"], p.get("K"), p["cols"], bool(p.get("bias")), bool(p.get("gelu")),
                bool(p.get("residual")))
    if kern.op == "gelu":
        return ("gelu", p["n"])
    if kern.op == "attention":
        return ("attention", p["heads"], p["T"], p["dh"])
    return (kern.op, p["rows"], p["cols"])


def launch_sequence(kernels: list) -> list:
    """The NPU stage keys of one encoder run in execution order: the stem, then the layer body once per
    layer (the kernels with repeat > 1, in order), then the tail. Host kernels are left out."""
    first = next((i for i, k in enumerate(kernels) if k.repeat > 1), len(kernels))
    last = max((i for i, k in enumerate(kernels) if k.repeat > 1), default=first - 1)
    layers = max((k.repeat for k in kernels), default=1)
    order = kernels[:first] + kernels[first:last + 1] * layers + kernels[last + 1:]
    return [key for key in map(stage_key, order) if key is not None]


def pdi_reloads(seq: list) -> int:
    """Launches that load a PDI: the first, and every one whose xclbin kernel differs from the previous
    launch's (the firmware elides only a reload of the PDI already loaded)."""
    return sum(1 for i, key in enumerate(seq) if i == 0 or seq[i - 1] != key)


def context_misses(seq: list, capacity: int, policy: str = "belady", runs: int = 3) -> dict:
    """Per-stage mode: one hw_context per stage, at most `capacity` open. Replays `seq` `runs` times
    (a session runs the same plan every time) and counts the contexts created in the LAST run (the steady
    state). policy "belady" evicts the open context whose next use is farthest (the XRT device knows the
    order from the previous run: context_cache.h); "lru" evicts the least recently used. Mirrors
    provider/devices/xrt/context_cache.h (tests check both give the same counts)."""
    if capacity < 1:
        raise ValueError("capacity must be >= 1")
    full = list(seq) * runs
    open_, last_use, misses_last, n = [], {}, 0, len(seq)
    for i, key in enumerate(full):
        if key not in open_:
            if len(open_) >= capacity:
                if policy == "lru":
                    victim = min(open_, key=lambda k: last_use[k])
                elif policy == "belady":
                    def next_use(k):
                        for j in range(1, n + 1):   # cyclic: the plan repeats every run
                            if seq[(i % n + j) % n] == k:
                                return j
                        return n + 1
                    victim = max(open_, key=next_use)
                else:
                    raise ValueError(f"unknown policy {policy!r}")
                open_.remove(victim)
            open_.append(key)
            if i >= (runs - 1) * n:
                misses_last += 1
        last_use[key] = i
    return {"launches": n, "distinct": len(set(seq)), "capacity": capacity, "misses": misses_last}


@dataclass
class EncoderPlan:
    model: str
    seconds: float
    npu: NPU1
    numerics: str
    plans: list
    mode: str = "one-xclbin"
    contexts: int = 6          # per-stage mode: hw_contexts this session may hold (<= npu.hw_contexts)
    launches: list = field(default_factory=list)   # NPU stage keys of one run, in order

    @property
    def reloads(self) -> int:
        return pdi_reloads(self.launches)

    @property
    def context_creates(self) -> int:
        """Contexts created per run in the steady state (0 in one-xclbin mode: one context)."""
        if self.mode == "one-xclbin":
            return 0
        return context_misses(self.launches, self.contexts)["misses"]

    def reconfig_s(self, high: bool = False) -> float:
        """PDI reloads (per change of xclbin kernel) and, per-stage, hw_context creations per run."""
        pdi = self.npu.pdi_reload_high_us if high else self.npu.pdi_reload_us
        return (self.reloads * pdi + self.context_creates * self.npu.context_create_us) * 1e-6

    @property
    def kernels_s(self) -> float:
        return sum(p.total_s for p in self.plans)

    @property
    def time_s(self) -> float:
        """Modelled encoder time with the low end of the published PDI reload cost."""
        return self.kernels_s + self.reconfig_s()

    @property
    def time_high_s(self) -> float:
        """The same with the high end of the published PDI reload cost."""
        return self.kernels_s + self.reconfig_s(high=True)

    @property
    def flops(self) -> float:
        return sum(p.kernel.flops * p.kernel.repeat for p in self.plans)

    @property
    def physical_limit_s(self) -> float:
        """All FLOPs at the BF16 peak of 16 tiles, nothing else."""
        return self.flops / self.npu.peak_bf16_flops()

    @property
    def utilisation(self) -> float:
        return self.physical_limit_s / self.time_s

    @property
    def realtime_factor(self) -> float:
        return self.seconds / self.time_s

    @property
    def limiting(self) -> KernelPlan:
        return max(self.plans, key=lambda p: p.total_s)


def plan_encoder(model: str = "base", clock_ghz: float = 1.0, seconds: float = 30.0,
                 numerics: str = "contract", attention: str = "host", npu: NPU1 | None = None,
                 mode: str = "one-xclbin", contexts: int | None = None, precision: str = "bf16") -> EncoderPlan:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}")
    npu = replace(npu or NPU1(), clock_ghz=clock_ghz)
    contexts = npu.hw_contexts if contexts is None else contexts
    if not 1 <= contexts <= npu.hw_contexts:
        raise ValueError(f"contexts must be in 1..{npu.hw_contexts} (npu1's hw_context limit)")
    kernels = encoder_kernels(model, seconds, attention, precision)
    plans = [plan_kernel(k, npu, numerics) for k in kernels]
    return EncoderPlan(model, seconds, npu, numerics, plans, mode, contexts, launch_sequence(kernels))


def physical_limit_ms(gflop: float, clock_ghz: float = 1.0) -> float:
    return gflop * 1e9 / NPU1(clock_ghz=clock_ghz).peak_bf16_flops() * 1e3


if __name__ == "__main__":  # pragma: no cover
    for mdl in WHISPER:
        e = plan_encoder(mdl)
        print(mdl, f"{e.time_s * 1e3:.1f} ms", f"{e.realtime_factor:.0f}x", f"{e.utilisation * 100:.0f}%", e.limiting.kernel.name)


# --- Designs: the parameters every IRON design in kernels/*/aie reads, and their check ------------
# A design here is what its IRON program will emit: the per-tile L1 and memtile buffers, the DMA
# channels it uses, and every shim DMA task (buffer, offset, 4-D sizes/strides outermost first,
# as IRON's TensorAccessPattern takes them, and the task group that awaits it). The IRON
# designs take these numbers verbatim, so check_design() checks exactly what would be built.
class DesignError(ValueError):
    """No parameters of this design fit npu1 (the message says which limit)."""


@dataclass
class Transfer:
    column: int               # shim tile column
    direction: str            # "mm2s" (DDR -> array) or "s2mm"
    channel: int              # DMA channel on that shim tile
    fifo: str                 # which ObjectFifo of the design it fills / drains
    buffer: str               # runtime argument (manifest argument name)
    offset: int               # elements of `buffer`
    sizes: list               # 4 dims, outermost first
    strides: list
    elem_bytes: int
    group: int                # task group (the design awaits a group before reusing its BDs)

    @property
    def elements(self) -> int:
        return math.prod(self.sizes)

    @property
    def bytes(self) -> int:
        return self.elements * self.elem_bytes


@dataclass
class Design:
    name: str
    op: str                   # "gemm" | "rows"
    params: dict
    stack_bytes: int
    l1: dict                  # per compute tile, bytes (the stack included)
    l2: dict                  # per memtile
    core_inputs: int          # input DMA channels per compute tile
    core_outputs: int
    buffers: dict             # runtime argument -> (elements, element bytes)
    transfers: list
    open_groups: int = 2      # task groups in flight at once (ping-pong)
    vector_rows: list = field(default_factory=list)  # (what, row bytes, rows per L1 object)
    # Per memtile: DMA channels each way and streams up into the compute rows. Every memtile ->
    # core ObjectFifo (each output of a split, each broadcast) takes one MM2S channel and one
    # stream; mlir-aie's ObjectFifo lowering stops with "number of output DMA channel exceeded!".
    memtile_mm2s: int = 0
    memtile_s2mm: int = 0
    memtile_north: int = 0
    memtile_lock: int = 0     # largest memtile lock start value (depth * repeat_count of a replayed object)
    # Runtime buffers whose elements are integers ("int8", "int32"; the INT8 MatMul's stages); every
    # other buffer is BF16 (2 bytes) or FP32 (4 bytes) by its element size.
    dtypes: dict = field(default_factory=dict)


def check_design(d: Design, npu: NPU1 | None = None) -> list[str]:
    """Every way `d` breaks an npu1 limit (empty when it builds and runs as far as we know)."""
    npu = npu or NPU1()
    bad = []
    if sum(d.l1.values()) > npu.l1_bytes:
        bad.append(f"L1 {sum(d.l1.values())} B > {npu.l1_bytes} B (the stack included): {d.l1}")
    if sum(d.l2.values()) > npu.memtile_bytes:
        bad.append(f"memtile {sum(d.l2.values())} B > {npu.memtile_bytes} B: {d.l2}")
    if d.core_inputs > npu.core_s2mm or d.core_outputs > npu.core_mm2s:
        bad.append(f"a compute tile has {npu.core_s2mm} input + {npu.core_mm2s} output DMA channels; "
                   f"the design needs {d.core_inputs} + {d.core_outputs}")
    if d.memtile_mm2s > npu.memtile_mm2s or d.memtile_s2mm > npu.memtile_s2mm:
        bad.append(f"a memtile has {npu.memtile_mm2s} MM2S + {npu.memtile_s2mm} S2MM DMA channels; the design needs "
                   f"{d.memtile_mm2s} + {d.memtile_s2mm} (one per memtile -> core ObjectFifo)")
    if d.memtile_north > npu.memtile_north:
        bad.append(f"{d.memtile_north} streams from a memtile into the compute rows > {npu.memtile_north}")
    if d.memtile_lock > npu.lock_max:
        bad.append(f"a memtile object replayed {d.memtile_lock} times needs a lock value > {npu.lock_max}")
    for what, row_bytes, rows in d.vector_rows:
        if rows > 1 and row_bytes % npu.vector_align:
            bad.append(f"{what}: {rows} rows of {row_bytes} B per L1 object put row starts off the "
                       f"{npu.vector_align}-byte vector alignment")
    for t in d.transfers:
        limit = npu.shim_mm2s if t.direction == "mm2s" else npu.shim_s2mm
        where = f"{t.fifo} <- {t.buffer}" if t.direction == "mm2s" else f"{t.fifo} -> {t.buffer}"
        if not 0 <= t.channel < limit:
            bad.append(f"{where}: shim {t.direction} channel {t.channel} (a shim tile has {limit})")
        sizes, strides = t.sizes, t.strides
        if len(sizes) != 4 or len(strides) != 4:
            bad.append(f"{where}: access patterns have 4 dimensions")
            continue
        for i in (1, 2, 3):  # stride 0 only in the outermost (repeat) dimension
            if sizes[i] > 1 and strides[i] < 1:
                bad.append(f"{where}: stride {strides[i]} in dimension {i} (outermost first); only the outermost "
                           "repeat dimension may have stride 0")
        if sizes[3] > npu.d0_d1_wrap_max or sizes[2] > npu.d0_d1_wrap_max:
            bad.append(f"{where}: inner sizes {sizes[2:]} exceed the 10-bit wrap ({npu.d0_d1_wrap_max})")
        if sizes[0] > npu.repeat_max:
            bad.append(f"{where}: repeat {sizes[0]} > {npu.repeat_max}")
        if (sizes[3] * t.elem_bytes) % npu.dma_granule or (t.offset * t.elem_bytes) % npu.dma_granule:
            bad.append(f"{where}: innermost transfer or offset not a multiple of {npu.dma_granule} bytes")
        n, e = d.buffers.get(t.buffer, (0, 0))
        last = t.offset + sum((sz - 1) * st for sz, st in zip(sizes, strides))
        if not 0 <= t.offset or last >= n:
            bad.append(f"{where}: reaches element {last} of {t.buffer} ({n} elements)")
    # Per shim tile: BDs alive and pushes queued on one channel while `open_groups` groups are open.
    groups = sorted({t.group for t in d.transfers})
    for i in range(len(groups)):
        window = set(groups[i:i + d.open_groups])
        for col in range(npu.cols):
            ts = [t for t in d.transfers if t.column == col and t.group in window]
            if len(ts) > npu.shim_bds:
                bad.append(f"shim ({col},0): {len(ts)} buffer descriptors alive in groups {sorted(window)} "
                           f"> {npu.shim_bds}")
            for key in {(t.direction, t.channel) for t in ts}:
                q = sum(1 for t in ts if (t.direction, t.channel) == key)
                if q > npu.dma_queue_depth:
                    bad.append(f"shim ({col},0) {key[0]}{key[1]}: {q} tasks queued in groups {sorted(window)} "
                               f"> {npu.dma_queue_depth} (a push onto a full queue is dropped and the run hangs)")
    return bad


def _split_inner(total: int, npu: NPU1, elem_bytes: int) -> tuple[int, int]:
    """total contiguous elements as (a, b) with b <= the 10-bit wrap, b a multiple of the DMA granule."""
    for b in range(min(total, npu.d0_d1_wrap_max), 0, -1):
        if total % b == 0 and (b * elem_bytes) % npu.dma_granule == 0 and total // b <= npu.d0_d1_wrap_max:
            return total // b, b
    raise DesignError(f"{total} contiguous elements cannot be split into two DMA dimensions of <= "
                      f"{npu.d0_d1_wrap_max}")


QPARAMS = 8  # FP32 words of the quantize stage's parameter object (kernels/matmul_int8/aie/quantize/quantize.cc)
COL_PARAM_COPIES = 4  # colparams holds each INT8 epilogue column-parameter row once per compute row


def col_param_rows(bias: bool) -> int:
    """Rows of the INT8 epilogue's colparams buffer: corr (int32), s_ab (FP32) and, with a bias, bias (FP32)."""
    return 3 if bias else 2


def rows_design(name: str, op: str, rows: int, cols: int, npu: NPU1 | None = None, bias: bool = False,
                residual: bool = False, beta: bool = True, rows_per_obj: int | None = None, dup: int = 1) -> Design:
    """Row kernels on the whole array (LayerNorm, Softmax, GELU chunks, a MatMul's epilogue, the
    INT8 MatMul's quantize and epilogue stages): each round, shim c sends R*r rows to memtile c,
    which splits them r rows per compute tile and joins the results back. LayerNorm's gamma /
    beta (and the quantize stage's parameter object) reach the tiles on their second input
    channel, broadcast by the memtile and held for the run; the epilogue's FP32 bias row (the
    INT8 epilogue's column-parameter rows) is each tile's first x object(s) and its residual rows
    come on the second channel (split, so that epilogue uses R = 2 rows of tiles: see
    _rows_design_r). Rows that do not fill a last round are covered by a round that overlaps the
    previous one (identical values written twice; outputs must not alias inputs). dup = 2 (the
    quantize stage of an INT8 MatMul whose weights have zero points): each output row is written
    twice, [qa'' | qa''], the A of the GEMM on K' = 2K (docs/npu.md 2d)."""
    npu = npu or NPU1()
    if dup != 1 and not (op == "quantize" and dup == 2):
        raise DesignError(f"{name}: dup 2 is the quantize stage's only")
    # An epilogue's side objects are one row (a bias half is N BF16-sized slots): one row per object.
    cands = [rows_per_obj] if rows_per_obj else ([1] if op in ("epilogue", "epilogue_i8") else [16, 8, 4, 2, 1])
    return _first_checked(name, "rows-per-object", npu, forced=bool(rows_per_obj), builds=(
        (f"{r} rows/object", lambda r=r: _rows_design_r(name, op, rows, cols, npu, bias, residual, beta, r, dup))
        for r in cands))


def _first_checked(name, what, npu, forced, builds) -> Design:
    """The first design of `builds` ((label, build) pairs) that check_design accepts."""
    errors = []
    for label, build in builds:
        try:
            d = build()
        except DesignError as e:
            errors.append(f"{label}: {e}")
            continue
        problems = check_design(d, npu)
        if not problems:
            return d
        if forced:
            raise DesignError(f"{name}: " + "; ".join(problems))
        errors.append(f"{label}: {problems[0]}")
    raise DesignError(f"{name}: no {what} fits npu1: " + "; ".join(errors[-2:]))


def _rows_design_r(name, op, rows, cols, npu, bias, residual, beta, r, dup=1) -> Design:
    C = npu.cols
    epi = op in ("epilogue", "epilogue_i8")
    # Every distinct per-tile row stream leaves the memtile on its own MM2S channel and stream
    # (6 each): x and a residual split to 4 tiles would need 8, so an epilogue with a residual
    # runs on 2 rows of tiles (it is DMA-bound: the cost is small). Parameters that every tile
    # needs whole (gamma / beta) are broadcast: one channel for the column.
    R = 2 if epi and residual else npu.rows
    group = R * C * r
    if rows < group:
        raise DesignError(f"{rows} rows is fewer than one round of {group}")
    in_bytes = 4 if epi else 2
    out_bytes = 1 if op == "quantize" else 2
    x, y = ("acc", "C") if epi else ("A", "qa") if op == "quantize" else ("x", "y")
    main, tail = rows // group, rows % group
    per_col = R * r * cols                  # contiguous elements per column per round
    a, b = _split_inner(per_col, npu, min(in_bytes, out_bytes))
    pa, pb = _split_inner(cols, npu, 4)     # one FP32 parameter row
    # side: "broadcast" (LayerNorm gamma, beta; the quantize parameters: one object each, held for
    # the run), "split" (the epilogue's residual rows, one per tile per round) or None.
    side = "broadcast" if op in ("layernorm", "quantize") else "split" if epi and residual else None
    params = (["gamma"] + (["beta"] if beta else [])) if op == "layernorm" else ["qparams"] if op == "quantize" else []
    side_depth = len(params) if side == "broadcast" else 2
    side_obj = QPARAMS * 4 if op == "quantize" else cols * 4 if side == "broadcast" else cols * 2  # bytes per object
    n_col_params = col_param_rows(bias) if op == "epilogue_i8" else 0
    stack = ROWS_STACK
    out_cols = dup * cols
    l1 = {"x (2 objects)": 2 * r * cols * in_bytes, "y (2 objects)": 2 * r * out_cols * out_bytes, "stack": stack}
    if side:
        l1["side (params held / residual rows)"] = side_depth * side_obj
    if op == "epilogue" and bias:
        l1["bias copy (fp32)"] = cols * 4
    if n_col_params:
        l1["column parameter copies (corr, s_ab, bias)"] = n_col_params * cols * 4
    l2 = {"x split (2 x R objects)": 2 * R * r * cols * in_bytes,
          "y join (2 x R objects)": 2 * R * r * out_cols * out_bytes}
    if side == "broadcast":
        l2["side broadcast (2 objects)"] = 2 * side_obj
    elif side == "split":
        l2["side split (2 x R objects)"] = 2 * R * side_obj
    transfers = []
    # Inputs on MM2S 0, side on MM2S 1, output on S2MM 0; all tasks of a column in one group.
    for c in range(C):
        if op == "epilogue" and bias:
            # The FP32 bias row is each tile's first x object (one row per object): R copies by a
            # stride-0 outermost repeat, ahead of the acc rows on the same channel.
            transfers.append(Transfer(c, "mm2s", 0, f"{x}_l2_{c}", "bias", 0, [R, 1, pa, pb], [0, 0, pb, 1], 4, 0))
        if n_col_params:
            # The INT8 epilogue's column-parameter rows lead the acc rows: colparams holds each row
            # COL_PARAM_COPIES times ([rows][4][cols]), so one task sends R copies of each (x objects
            # of R rows, split one per tile) without a stride-0 dimension inside.
            ca, cb = _split_inner(R * cols, npu, 4)
            transfers.append(Transfer(c, "mm2s", 0, f"{x}_l2_{c}", "colparams", 0, [1, n_col_params, ca, cb],
                                      [0, COL_PARAM_COPIES * cols, cb, 1], 4, 0))
        starts = [("main", c * R * r * cols, main)] + ([("tail", (rows - group + c * R * r) * cols, 1)] if tail else [])
        for _, off, n_rounds in starts:
            if n_rounds == 0:
                continue
            sizes, strides = [1, n_rounds, a, b], [0, group * cols, b, 1]
            transfers.append(Transfer(c, "mm2s", 0, f"{x}_l2_{c}", x, off, sizes, strides, in_bytes, 0))
            if dup == 1:
                transfers.append(Transfer(c, "s2mm", 0, f"{y}_l2_{c}", y, off, sizes, strides, out_bytes, 0))
            else:   # rows of dup * cols: the same rows, a longer row
                ya, yb = _split_inner(per_col * dup, npu, out_bytes)
                transfers.append(Transfer(c, "s2mm", 0, f"{y}_l2_{c}", y, off * dup, [1, n_rounds, ya, yb],
                                          [0, group * out_cols, yb, 1], out_bytes, 0))
            if side == "split":
                transfers.append(Transfer(c, "mm2s", 1, f"side_l2_{c}", "residual", off, sizes, strides, 2, 0))
        for buf in params:  # once per column: the memtile broadcasts it to the column's tiles
            n_el = QPARAMS if op == "quantize" else cols
            qa_, qb_ = (1, QPARAMS) if op == "quantize" else (pa, pb)
            transfers.append(Transfer(c, "mm2s", 1, f"side_l2_{c}", buf, 0, [1, 1, qa_, qb_], [0, 0, qb_, 1], 4, 0))
            assert qa_ * qb_ == n_el
    # Parameters precede rows on a shared channel: order them first per column (the sort is stable).
    transfers.sort(key=lambda t: (t.column, t.direction, t.channel,
                                  t.buffer not in ("gamma", "beta", "bias", "qparams", "colparams")))
    buffers = {x: (rows * cols, in_bytes), y: (rows * out_cols, out_bytes)}
    dtypes = {}
    if op == "layernorm":
        buffers.update(gamma=(cols, 4), beta=(cols, 4))
    if op == "epilogue":
        buffers.update(bias=(cols, 4), residual=(rows * cols, 2))
    if op == "epilogue_i8":
        buffers.update(colparams=(n_col_params * COL_PARAM_COPIES * cols, 4), residual=(rows * cols, 2))
        dtypes = {"acc": "int32", "colparams": "int32"}
    if op == "quantize":
        buffers.update(qparams=(QPARAMS, 4))
        dtypes = {"qa": "int8"}
    side_streams = {"broadcast": 1, "split": R, None: 0}[side]
    return Design(name, "rows", dict(op=op, rows=rows, cols=cols, rows_per_obj=r, round_rows=group, tail=bool(tail),
                                     side_depth=side_depth, bias=bias, residual=residual, beta=beta, core_rows=R,
                                     side=side, col_params=n_col_params,
                                     **({"dup": dup, "out_cols": out_cols} if dup != 1 else {})),
                  stack, l1, l2, 1 + int(bool(side)), 1, buffers, transfers, open_groups=1,
                  vector_rows=[(f"{x} rows", cols * in_bytes, r), (f"{y} rows", out_cols * out_bytes, r)],
                  memtile_mm2s=R + side_streams + 1, memtile_s2mm=1 + int(bool(side)) + R,
                  memtile_north=R + side_streams, dtypes=dtypes)


def attention_design(name: str, heads: int, T: int, dh: int, npu: NPU1 | None = None, bq=None, bk=None) -> Design:
    """Fused attention O = softmax(scale * Q K^T) V per head on npu1 with the numerics of
    kernels/attention/README.md: S stays FP32 and is never rounded, the row max and sum are exact
    before P = bf16(KernelExp(S - max) / sum) is formed, O accumulates in FP32 and is rounded
    once. A tile takes a block of Bq queries against ALL keys and keeps its S block [Bq][Tk] in
    L1 (P written over it), so the max and sum are final before P is rounded: an online
    (rescaling) softmax would round P before normalising, and recomputing the exponentials would
    double the dominant cost. Column c runs heads c, c+4, ...; per head its memtile holds K_h and
    V_h (one object, replayed once per round: repeat_count) and broadcasts them in chunks of Bk
    keys to the column's 4 tiles on their first channel; the 4 tiles' Q blocks come split on the
    second. Keys are padded to a whole chunk by the memtile's zero padding; the kernel masks the
    padded scores to -inf. The runtime arguments are the fused projection [T, 3*heads*dh] (Q, K,
    V of head h at columns h*dh, D + h*dh, 2D + h*dh) and O [T, heads*dh]."""
    npu = npu or NPU1()
    cands = [(bq, bk)] if bq else [(q, k) for q in (16, 8, 4) for k in (64, 32, 16, 8)]
    return _first_checked(name, "query block / key chunk", npu, forced=bool(bq), builds=(
        (f"Bq={q} Bk={k}", lambda q=q, k=k: _attention_design(name, heads, T, dh, npu, q, k)) for q, k in cands))


def _attention_design(name, H, T, dh, npu, bq, bk) -> Design:
    R, C = npu.rows, npu.cols
    D = H * dh
    tk = _ceil_to(T, bk)
    group = R * bq                         # query rows per round per column
    if T < group:
        raise DesignError(f"{T} queries is fewer than one round of {group}")
    rounds, tail = -(-T // group), T % group != 0
    heads_per_column = [len(range(c, H, C)) for c in range(C)]
    l1 = {"S block (Bq x Tk fp32; P over it)": bq * tk * 4, "Q block (2 x Bq*dh)": 2 * bq * dh * 2,
          "K/V chunk (2 x Bk*dh)": 2 * bk * dh * 2, "O accumulator (Bq*dh fp32)": bq * dh * 4,
          "O out (2 x Bq*dh)": 2 * bq * dh * 2, "row max, 1/sum (fp32)": 2 * bq * 4, "stack": ROWS_STACK}
    l2 = {"K_h, V_h (one object, replayed)": 2 * T * dh * 2, "Q split (2 x 4 blocks)": 2 * group * dh * 2,
          "O join (2 x 4 blocks)": 2 * group * dh * 2}
    transfers = []
    for c in range(C):
        for g, h in enumerate(range(c, H, C)):          # one task group per head
            for part in (1, 2):                          # K_h then V_h into the memtile object
                transfers.append(Transfer(c, "mm2s", 0, f"kv_l2_{c}", "qkv", part * D + h * dh, [1, T, 1, dh],
                                          [0, 3 * D, 0, 1], 2, g))
            starts = [(0, (rounds - int(tail)) * group)] + ([(T - group, group)] if tail else [])
            for row0, n_rows in starts:
                if n_rows == 0:
                    continue
                transfers.append(Transfer(c, "mm2s", 1, f"q_l2_{c}", "qkv", row0 * 3 * D + h * dh, [1, n_rows, 1, dh],
                                          [0, 3 * D, 0, 1], 2, g))
                transfers.append(Transfer(c, "s2mm", 0, f"o_l2_{c}", "O", row0 * D + h * dh, [1, n_rows, 1, dh],
                                          [0, D, 0, 1], 2, g))
    transfers.sort(key=lambda t: (t.column, t.group, t.direction, t.channel))
    return Design(name, "attention", dict(op="attention", heads=H, T=T, dh=dh, bq=bq, bk=bk, tk_pad=tk,
                                          rounds_per_head=rounds, heads_per_column=heads_per_column, core_rows=R),
                  ROWS_STACK, l1, l2, 2, 1, {"qkv": (T * 3 * D, 2), "O": (T * D, 2)}, transfers, open_groups=1,
                  vector_rows=[("S rows (fp32)", tk * 4, bq), ("Q rows", dh * 2, bq), ("K/V chunk rows", dh * 2, bk),
                               ("O rows", dh * 2, bq)],
                  # KV broadcast + 4 Q splits + O out; KV in + Q in + 4-tile O join
                  memtile_mm2s=1 + R + 1, memtile_s2mm=2 + R, memtile_north=1 + R, memtile_lock=rounds)


def gemm_design(name: str, M: int, K: int, N: int, npu: NPU1 | None = None, tiles=None, dtype: str = "bf16") -> Design:
    """The whole-array GEMM (kernels/matmul/aie/gemm/design.py; with dtype "i8" the INT8 one of
    kernels/matmul_int8/aie/gemm/design.py), upstream whole_array's data movement: core (i, c)
    computes m x n tiles of C; A rows of core row i come from shim i (repeated once per column
    block: stride 0, outermost); B columns of core column c from shim c; C tiles join in memtile c
    and drain through shim c. M and N need not be multiples of the 4m x 4n array block: a last
    block overlaps its neighbour. Two row blocks' task groups are in flight (ping-pong). bf16:
    BF16 in, FP32 C (mm.cc matmul_bf16_f32, mmul 4x8x4); i8: int8 in, int32 C (mm.cc
    matmul_i8_i32, mmul 4x8x8 on aie2: m % 16, k % 8, n % 16)."""
    npu = npu or NPU1()
    if dtype not in ("bf16", "i8"):
        raise ValueError(f"dtype must be bf16 or i8, not {dtype!r}")
    if dtype == "i8":
        cands = [tiles] if tiles else [(64, 128, 64), (64, 64, 64), (32, 128, 64), (64, 64, 32), (32, 64, 32)]
    else:
        cands = [tiles] if tiles else [(64, 64, 32), (32, 64, 64), (64, 32, 64), (32, 64, 32), (32, 32, 32)]
    def build(m, k, n):
        if dtype == "i8" and (m % 16 or n % 16 or k % 8):
            raise DesignError("mm.cc's i8 kernel (mmul 4x8x8, 4x2 unrolled) needs m % 16, k % 8, n % 16")
        if m % 8 or n % 8 or k % 8 or K % k or M < 4 * m or N < 4 * n:
            raise DesignError(f"does not divide K={K} or exceeds M, N")
        return _gemm_design_tiles(name, M, K, N, m, k, n, npu, dtype)
    return _first_checked(name, "tile", npu, forced=bool(tiles),
                          builds=((f"tile {m}x{k}x{n}", lambda t=t: build(*t)) for t in cands for m, k, n in [t]))


def _block_starts(total: int, block: int) -> list:
    n = -(-total // block)
    return [min(i * block, total - block) for i in range(n)]


def _gemm_design_tiles(name, M, K, N, m, k, n, npu, dtype="bf16") -> Design:
    R, C = npu.rows, npu.cols
    eb = 1 if dtype == "i8" else 2   # A and B element bytes; C is 4 (FP32 or int32)
    rows = _block_starts(M, R * m)
    cols = _block_starts(N, C * n)
    main_cols = N // (C * n)
    col_tail = N % (C * n) != 0
    transfers = []
    for g, r0 in enumerate(rows):
        for i in range(R):    # A: core row i from shim i, K/k tiles of m x k, once per column block
            transfers.append(Transfer(i, "mm2s", 0, f"A_L3L2_{i}", "A", (r0 + i * m) * K,
                                      [len(cols), K // k, m, k], [0, k, K, 1], eb, g))
        for c in range(C):
            parts = [(c * n, main_cols, C * n)] + ([(N - C * n + c * n, 1, C * n)] if col_tail else [])
            for off, count, step in parts:
                if count == 0:
                    continue
                transfers.append(Transfer(c, "mm2s", 1, f"B_L3L2_{c}", "B", off,
                                          [count, K // k, k, n], [step, k * N, N, 1], eb, g))
                transfers.append(Transfer(c, "s2mm", 0, f"C_L2L3_{c}", "acc", r0 * N + off,
                                          [1, count, R * m, n], [0, step, N, 1], 4, g))
    l1 = matmul_l1_bytes(m, k, n, elem_bytes=eb)
    l2 = {"A (2 x m*k)": 2 * m * k * eb, "B (2 x k*n)": 2 * k * n * eb, "C join (2 x 4*m*n 32-bit)": 2 * R * m * n * 4}
    a_name = "qa" if dtype == "i8" else "A"   # the INT8 GEMM reads the quantize stage's output
    if dtype == "i8":
        transfers = [replace(t, buffer=a_name) if t.buffer == "A" else t for t in transfers]
    return Design(name, "gemm", dict(M=M, K=K, N=N, m=m, k=k, n=n, row_starts=rows, col_starts=cols,
                                     tiles_per_core=len(rows) * len(cols), dtype=dtype),
                  GEMM_STACK, l1, l2, 2, 1, {a_name: (M * K, eb), "B": (K * N, eb), "acc": (M * N, 4)}, transfers,
                  open_groups=2, vector_rows=[("A tile rows", k * eb, m), ("C tile rows", n * 4, m)],
                  dtypes={a_name: "int8", "B": "int8", "acc": "int32"} if dtype == "i8" else {},
                  # A broadcast along row i, B down column c, C out; in: A, B and the 4-tile C join
                  memtile_mm2s=3, memtile_s2mm=2 + R, memtile_north=2)


def designs_for(kernel, npu: NPU1 | None = None) -> list:
    """The design of every stage of a manifest kernel (phoenix_npu.manifest.ManifestKernel)."""
    npu = npu or NPU1()
    tag = kernel.describe()
    if kernel.op == "matmul":
        if kernel.batch != 1 or kernel.b_layout != "row_major":
            raise DesignError(f"{tag}: only batch 1, row-major B GEMMs have a design")
        return [gemm_design(f"{tag} (GEMM)", kernel.M, kernel.K, kernel.N, npu),
                rows_design(f"{tag} (epilogue)", "epilogue", kernel.M, kernel.N, npu, bias=kernel.bias,
                            residual=kernel.residual)]
    if kernel.op == "matmul_int8":
        # kernels/matmul_int8/aie: quantize A (BF16 -> int8, shifted for uint8 activations), the
        # whole-array INT8 GEMM (upstream mm.cc matmul_i8_i32), the dequantizing epilogue.
        if kernel.batch != 1 or kernel.b_layout != "row_major":
            raise DesignError(f"{tag}: only batch 1, row-major B INT8 GEMMs have a design")
        # Weights with zero points (docs/npu.md 2d): the quantize stage writes [qa'' | qa''] and the
        # GEMM runs on K' = 2K against B' = [qb; -zb] (the XRT device builds B' once per weight).
        zp = getattr(kernel, "weight_zero_points", False)
        return [rows_design(f"{tag} (quantize)", "quantize", kernel.M, kernel.K, npu, dup=2 if zp else 1),
                gemm_design(f"{tag} (INT8 GEMM)", kernel.M, 2 * kernel.K if zp else kernel.K, kernel.N, npu,
                            dtype="i8"),
                rows_design(f"{tag} (epilogue)", "epilogue_i8", kernel.M, kernel.N, npu, bias=kernel.bias,
                            residual=kernel.residual)]
    if kernel.op in ("layernorm", "softmax"):
        return [rows_design(tag, kernel.op, kernel.rows, kernel.cols, npu, beta=kernel.beta)]
    if kernel.op == "gelu":
        chunk = next((c for c in (2048, 1024, 512, 256) if kernel.n % c == 0), None)
        if chunk is None:
            raise DesignError(f"{tag}: n must be a multiple of 256 (chunks of whole vectors)")
        return [rows_design(tag, "gelu", kernel.n // chunk, chunk, npu)]
    raise DesignError(f"{tag}: no design for op {kernel.op}")


def check_manifest(manifest, npu: NPU1 | None = None) -> list:
    """[(kernel description, [Design], [violations])] for every kernel of a manifest."""
    out = []
    for k in manifest.kernels:
        try:
            ds = designs_for(k, npu)
            out.append((k.describe(), ds, [p for d in ds for p in check_design(d, npu)]))
        except DesignError as e:
            out.append((k.describe(), [], [str(e)]))
    return out
