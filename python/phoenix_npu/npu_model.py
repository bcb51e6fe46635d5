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
    """npu1 (Phoenix / Hawk Point, XDNA1, AIE-ML) as mlir-aie exposes it.

    Sources: AMD AM020 (AIE-ML architecture), UG1603, mlir-aie's npu1 device model; see
    docs/npu.md. Values marked ASSUMPTION are ours and are the first thing to calibrate on
    hardware.
    """

    cols: int = 4                      # mlir-aie npu1: 4 usable columns
    rows: int = 4                      # 4 compute rows (+ 1 memtile row + 1 shim row)
    l1_bytes: int = 64 * KIB           # data memory per compute tile (AM020)
    l1_reserved: int = 4 * KIB         # ASSUMPTION: stack (1 KiB default) + alignment slack
    memtile_bytes: int = 512 * KIB     # per memtile (AM020)
    bf16_macs: int = 128               # BF16 MACs / cycle / tile, FP32 accumulation (AM020)
    int8_macs: int = 256               # INT8 MACs / cycle / tile (AM020)
    clock_ghz: float = 1.0             # 1.0-1.6 GHz range (driver power table)
    shim_tiles: int = 4
    shim_mm2s: int = 2                 # DDR -> array channels per shim tile
    shim_s2mm: int = 2                 # array -> DDR channels per shim tile
    channel_bytes_per_cycle: int = 4   # 32-bit AXI4-stream per DMA channel (AM020)
    core_s2mm: int = 2                 # input DMA channels of a compute tile (AM020)
    memtile_mm2s: int = 6              # memtile DMA channels each way (AM020)
    dma_efficiency: float = 0.85       # ASSUMPTION: BD/reconfiguration gaps
    mac_efficiency: float = 0.80       # ASSUMPTION: inner mmul loop vs prologue/epilogue/loop control
    # Vector unit. AIE-ML has no FP32 vector multiplier: FP32 multiplies are emulated with BF16
    # products (UG1603 "Floating-Point Operations"; 'fast' mode = 6 products + splitting).
    fp32_lanes: int = 16
    fp32_mul_cycles: float = 8.0       # ASSUMPTION: cycles per 16-lane FP32 multiply (emulated)
    fp32_add_cycles: float = 1.0       # native FP32 add on the accumulator registers
    fp32_misc_cycles: float = 1.0      # compare/select/convert/integer op per 16 lanes
    launch_overhead_us: float = 10.0   # ASSUMPTION: XRT run submit + completion per kernel
    head_switch_exposed: bool = True   # attention: next head's K/V load is not overlapped

    @property
    def cores(self) -> int:
        return self.cols * self.rows

    @property
    def hz(self) -> float:
        return self.clock_ghz * 1e9

    def peak_bf16_flops(self) -> float:
        return self.cores * self.bf16_macs * 2 * self.hz

    def shim_in_bytes_per_s(self) -> float:
        return self.shim_tiles * self.shim_mm2s * self.channel_bytes_per_cycle * self.hz * self.dma_efficiency

    def shim_out_bytes_per_s(self) -> float:
        return self.shim_tiles * self.shim_s2mm * self.channel_bytes_per_cycle * self.hz * self.dma_efficiency


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
        if self.op == "matmul":
            return 2.0 * p.get("batch", 1) * p["M"] * p["K"] * p["N"]
        if self.op == "attention":
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


def encoder_kernels(model: str = "base", seconds: float = 30.0, attention: str = "fused") -> list[Kernel]:
    """The kernel calls of one encoder run: conv stem, per-layer blocks, final LayerNorm."""
    if model not in WHISPER:
        raise ValueError(f"unknown model {model!r}; choose from {', '.join(WHISPER)}")
    D, H, L = WHISPER[model]
    T = int(round(seconds * 50))         # 50 positions per second after the stride-2 conv
    if not 1 <= T <= 1500:
        raise ValueError("seconds must be in (0, 30]: Whisper's encoder window is 30 s")
    frames = 2 * T
    ks = [
        # conv1 (k=3, pad 1) as im2col matmul; the im2col is a DMA access pattern, not a copy.
        Kernel("conv1+gelu", "matmul", dict(M=frames, K=3 * N_MELS, N=D, bias=True, gelu=True, weight=True)),
        # conv2 (k=3, stride 2) + GELU, then + positional embedding as the residual epilogue.
        Kernel("conv2+gelu+pos", "matmul", dict(M=T, K=3 * D, N=D, bias=True, gelu=True, residual=True, weight=True)),
        Kernel("ln1", "layernorm", dict(rows=T, cols=D), L),
        Kernel("qkv", "matmul", dict(M=T, K=D, N=3 * D, bias=True, weight=True), L),
    ]
    if attention == "fused":
        ks.append(Kernel("attention", "attention", dict(heads=H, T=T, dh=64), L))
    elif attention == "unfused":
        ks += [
            Kernel("scores=QK^T", "matmul", dict(batch=H, M=T, K=64, N=T, weight=False), L),
            Kernel("softmax", "softmax", dict(rows=H * T, cols=T), L),
            Kernel("context=PV", "matmul", dict(batch=H, M=T, K=T, N=64, weight=False), L),
        ]
    else:
        raise ValueError("attention must be 'fused' or 'unfused'")
    ks += [
        Kernel("out_proj+res", "matmul", dict(M=T, K=D, N=D, bias=True, residual=True, weight=True), L),
        Kernel("ln2", "layernorm", dict(rows=T, cols=D), L),
        Kernel("fc1+gelu", "matmul", dict(M=T, K=D, N=4 * D, bias=True, gelu=True, weight=True), L),
        Kernel("fc2+res", "matmul", dict(M=T, K=4 * D, N=D, bias=True, residual=True, weight=True), L),
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


def matmul_l1_bytes(m: int, k: int, n: int, bias: bool, residual: bool) -> dict:
    b = {
        "A (2 x m*k bf16)": 2 * m * k * 2,
        "B (2 x k*n bf16)": 2 * k * n * 2,
        "acc (m*n fp32)": m * n * 4,
        "C out (2 x m*n bf16)": 2 * m * n * 2,
    }
    if bias:
        b["bias (2 x n fp32)"] = 2 * n * 4
    if residual:
        b["residual (m*n bf16)"] = m * n * 2
    return b


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
    """Best (fastest) fitting tiling, or the given `tiles=(m,k,n)` / `mode`, which must fit."""
    p = kern.params
    M, K, N, batch = p["M"], p["K"], p["N"], p.get("batch", 1)
    bias, gelu, residual = p.get("bias", False), p.get("gelu", False), p.get("residual", False)
    cands = [tiles] if tiles else [(m, k, n) for m in MM_M for k in MM_K for n in MM_N]
    modes = [mode] if mode else (["stream", "a_panel"] if residual else ["stream", "a_panel", "b_panel"])
    return _fastest(kern.name, (
        (lambda m=m, k=k, n=n, md=md: _matmul_one(kern, npu, numerics, m, k, n, md, M, K, N, batch, bias, gelu,
                                                  residual))
        for (m, k, n) in cands for md in modes), forced=bool(tiles))


def _matmul_one(kern, npu, numerics, m, k, n, mode, M, K, N, batch, bias, gelu, residual) -> KernelPlan:
    name = kern.name
    if m % 8 or n % 8 or k % 16:
        raise PlanError(name, f"tile {m}x{k}x{n}: the 4x8x4 BF16 mmul with 2x2 unrolling needs m, n % 8 == 0 and k % 16 == 0")
    if residual and k % m:
        raise PlanError(name, f"tile {m}x{k}x{n}: the residual tile rides the B stream in k x n objects and needs k % m == 0")
    if mode == "b_panel" and residual:
        raise PlanError(name, "b_panel mode is not used with a residual epilogue (see the note above plan_matmul)")
    R, C = npu.rows, npu.cols
    Mp, Np, Kp = _ceil_to(M, R * m), _ceil_to(N, C * n), _ceil_to(K, k)
    if M < R * m or N < C * n:
        raise PlanError(name, f"tile {m}x{k}x{n}: matrix {M}x{N} smaller than one {R * m}x{C * n} array block")
    l1 = _check(name, f"compute tile L1 (tile {m}x{k}x{n})", matmul_l1_bytes(m, k, n, bias, residual),
                npu.l1_bytes - npu.l1_reserved)
    l2 = _check(name, f"memtile L2 (mode {mode}, tile {m}x{k}x{n}, K={Kp})",
                matmul_l2_bytes(m, k, n, Kp, mode, bias, residual, R), npu.memtile_bytes)
    row_blocks, col_blocks = Mp // (R * m), Np // (C * n)
    # Shim traffic per call.
    a_once, b_once = Mp * Kp * 2.0, Kp * Np * 2.0
    if mode == "stream":
        a_bytes, b_bytes = a_once * col_blocks, b_once * row_blocks
    elif mode == "a_panel":
        a_bytes, b_bytes = a_once, b_once * row_blocks
    else:  # b_panel
        a_bytes, b_bytes = a_once * col_blocks, b_once
    shim_in = batch * (a_bytes + b_bytes + (Mp * Np * 2.0 if residual else 0.0) + (Np * 4.0 if bias else 0.0))
    shim_out = batch * M * N * 2.0
    # Compute: per k-step a tile does m*k*n MACs; its two input channels must deliver the A and B
    # tiles (4 B/cycle each) in the same time, else the core waits on its DMA.
    mac_cycles = m * k * n / (npu.bf16_macs * npu.mac_efficiency)
    feed_cycles = max(m * k * 2, k * n * 2) / (npu.channel_bytes_per_cycle * npu.dma_efficiency)
    steps = batch * row_blocks * col_blocks * (Kp // k)
    blocks = batch * row_blocks * col_blocks
    # residual objects on the B channel: 4 m x n tiles per output block
    res_cycles = blocks * (R * m * n * 2 / (npu.channel_bytes_per_cycle * npu.dma_efficiency) if residual else 0.0)
    epi = 0.0
    if bias:
        epi += vector_cycles_per_element(npu, "bias", numerics)
    if gelu:
        epi += vector_cycles_per_element(npu, "erf_gelu", numerics)
    if residual:
        epi += vector_cycles_per_element(npu, "residual", numerics)
    epi_cycles = batch * row_blocks * col_blocks * m * n * epi
    compute_cycles = steps * max(mac_cycles, feed_cycles) + res_cycles + epi_cycles
    dma_s = max(shim_in / npu.shim_in_bytes_per_s(), shim_out / npu.shim_out_bytes_per_s())
    plan = KernelPlan(kern, f"{mode} m,k,n={m},{k},{n} blocks={row_blocks}x{col_blocks}x{Kp // k}"
                      + (f" batch={batch}" if batch > 1 else ""),
                      l1, l2, shim_in, shim_out, compute_cycles / npu.hz, dma_s, npu.launch_overhead_us * 1e-6)
    if feed_cycles > mac_cycles:
        plan.notes.append("core input DMA slower than the MACs for this tile")
    waste = (Mp * Np) / (M * N) - 1
    if waste > 0.001:
        plan.notes.append(f"{waste * 100:.1f}% recomputed (overlapped tail blocks)")
    plan.bound = "dma" if dma_s > plan.compute_s else ("vector" if epi_cycles > steps * max(mac_cycles, feed_cycles) else "compute")
    return plan


# --- Fused attention, one head per column --------------------------------------------------------
# A column takes one head at a time: K_h and V_h (T x 64 each) sit in its memtile; the 4 cores of
# the column split the KEYS in quarters. For each block of Bq query rows every core computes its
# quarter of S = Q K^T into L1 in FP32 (never rounded: kernels/attention/attention.h), the 4
# cores exchange row maxima and row sums through the
# memtile (two small join + broadcast FIFOs), every core forms P = bf16(exp(scale*S - max) / sum)
# for its quarter exactly as the Softmax kernel does, and multiplies by its V quarter into an
# FP32 partial O; the partials are summed down the column's cascade and the last core writes O
# (one BF16 rounding). Numerics: those of the emulated Attention kernel, except the order of
# the FP32 sums (row sum and P@V are summed in 4 partials).
def plan_attention(kern: Kernel, npu: NPU1, numerics: str = "contract", bq=None, bk=None) -> KernelPlan:
    p = kern.params
    H, T, dh = p["heads"], p["T"], p["dh"]
    return _fastest(kern.name, (
        (lambda q=q, b=b: _attention_one(kern, npu, numerics, H, T, dh, q, b))
        for q in ([bq] if bq else (16, 32, 48, 64)) for b in ([bk] if bk else (16, 32, 64))), forced=bool(bq))


def _attention_one(kern, npu, numerics, H, T, dh, bq, bk) -> KernelPlan:
    name, R, C = kern.name, npu.rows, npu.cols
    Tq = _ceil_to(T, R * bk)                 # keys: quarters of whole key blocks
    tk = Tq // R                             # keys per core
    l1 = _check(name, f"compute tile L1 (Bq={bq}, Bk={bk}, {tk} keys/core)", {
        "Q block (2 x Bq*64 bf16)": 2 * bq * dh * 2,
        "K blocks (2 x Bk*64)": 2 * bk * dh * 2,
        "V blocks (2 x Bk*64)": 2 * bk * dh * 2,
        "S quarter (Bq*T/4 fp32; P written over it in bf16)": bq * tk * 4,
        "O partial (Bq*64 fp32)": bq * dh * 4,
        "row stats (4 x Bq fp32)": 4 * bq * 4,
    }, npu.l1_bytes - npu.l1_reserved)
    l2 = _check(name, f"memtile L2 (T={T})", {
        "K_h (Tq*64 bf16)": Tq * dh * 2,
        "V_h (Tq*64 bf16)": Tq * dh * 2,
        "Q blocks (2 x Bq*64)": 2 * bq * dh * 2,
        "O out (2 x Bq*64)": 2 * bq * dh * 2,
        "stats exchange (2 x 2 x 4*Bq fp32)": 2 * 2 * R * bq * 4,
    }, npu.memtile_bytes)
    qblocks = -(-T // bq)
    # Per query block and core: QK^T and PV over its key quarter, fed by 2 channels (K, V).
    mac_cycles = 2 * bq * tk * dh / (npu.bf16_macs * npu.mac_efficiency)
    feed_cycles = (tk * dh * 2) / (npu.channel_bytes_per_cycle * npu.dma_efficiency)  # K and V in parallel
    sm_cycles = bq * tk * vector_cycles_per_element(npu, "softmax", numerics)
    sync_cycles = 2 * 400                     # ASSUMPTION: two memtile round trips for max and sum
    block_cycles = max(mac_cycles, feed_cycles) + sm_cycles + sync_cycles
    rounds = -(-H // C)
    head_load_cycles = 2 * T * dh * 2 / (npu.shim_mm2s * npu.channel_bytes_per_cycle * npu.dma_efficiency)
    cycles = rounds * (qblocks * block_cycles + (head_load_cycles if npu.head_switch_exposed else 0))
    shim_in = 3.0 * H * T * dh * 2
    shim_out = 1.0 * H * T * dh * 2
    dma_s = max(shim_in / npu.shim_in_bytes_per_s(), shim_out / npu.shim_out_bytes_per_s())
    plan = KernelPlan(kern, f"head/column, keys/4 per core, Bq={bq} Bk={bk} rounds={rounds}",
                      l1, l2, shim_in, shim_out, cycles / npu.hz, dma_s, npu.launch_overhead_us * 1e-6)
    plan.bound = "vector" if sm_cycles > max(mac_cycles, feed_cycles) else "compute"
    if H % C:
        plan.notes.append(f"{H} heads on {C} columns: last round uses {H % C} column(s)")
    return plan


# --- Row kernels (LayerNorm, Softmax) and elementwise GELU ----------------------------------------
def plan_rows(kern: Kernel, npu: NPU1, numerics: str = "contract", rows_per_obj=None) -> KernelPlan:
    p = kern.params
    rows, cols = p["rows"], p["cols"]
    fn = {"layernorm": "layernorm", "softmax": "softmax"}[kern.op]
    return _fastest(kern.name, ((lambda r=r: _rows_one(kern, npu, numerics, fn, rows, cols, r))
                                for r in ([rows_per_obj] if rows_per_obj else (1, 2, 4, 8, 16))),
                    forced=bool(rows_per_obj))


def _rows_one(kern, npu, numerics, fn, rows, cols, r) -> KernelPlan:
    l1 = _check(kern.name, f"compute tile L1 ({r} rows of {cols})", {
        "x (2 x r*cols bf16)": 2 * r * cols * 2,
        "y (2 x r*cols bf16)": 2 * r * cols * 2,
        **({"gamma, beta (fp32)": 2 * cols * 4} if fn == "layernorm" else {}),
    }, npu.l1_bytes - npu.l1_reserved)
    l2 = _check(kern.name, f"memtile L2 ({r} rows of {cols})", {
        "x split (2 x 4*r*cols)": 2 * npu.rows * r * cols * 2,
        "y join (2 x 4*r*cols)": 2 * npu.rows * r * cols * 2,
    }, npu.memtile_bytes)
    rows_p = _ceil_to(rows, npu.cores * r)
    cyc = rows_p / npu.cores * cols * vector_cycles_per_element(npu, fn, numerics)
    shim_in = rows * cols * 2.0 + (2 * cols * 4.0 if fn == "layernorm" else 0)
    shim_out = rows * cols * 2.0
    dma_s = max(shim_in / npu.shim_in_bytes_per_s(), shim_out / npu.shim_out_bytes_per_s())
    plan = KernelPlan(kern, f"rows over 16 tiles, {r} row(s)/object", l1, l2, shim_in, shim_out,
                      cyc / npu.hz, dma_s, npu.launch_overhead_us * 1e-6)
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
    if kern.op in ("layernorm", "softmax"):
        return plan_rows(kern, npu, numerics)
    if kern.op == "gelu":
        return plan_gelu(kern, npu, numerics)
    raise ValueError(f"no planner for op {kern.op!r}")


@dataclass
class EncoderPlan:
    model: str
    seconds: float
    npu: NPU1
    numerics: str
    plans: list

    @property
    def time_s(self) -> float:
        return sum(p.total_s for p in self.plans)

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
                 numerics: str = "contract", attention: str = "fused", npu: NPU1 | None = None) -> EncoderPlan:
    npu = replace(npu or NPU1(), clock_ghz=clock_ghz)
    plans = [plan_kernel(k, npu, numerics) for k in encoder_kernels(model, seconds, attention)]
    return EncoderPlan(model, seconds, npu, numerics, plans)


def physical_limit_ms(gflop: float, clock_ghz: float = 1.0) -> float:
    return gflop * 1e9 / NPU1(clock_ghz=clock_ghz).peak_bf16_flops() * 1e3


if __name__ == "__main__":  # pragma: no cover
    for mdl in WHISPER:
        e = plan_encoder(mdl)
        print(mdl, f"{e.time_s * 1e3:.1f} ms", f"{e.realtime_factor:.0f}x", f"{e.utilisation * 100:.0f}%", e.limiting.kernel.name)
