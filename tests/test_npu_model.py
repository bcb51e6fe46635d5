"""npu1 cost model and tile plan: arithmetic against hand-computed cases, memory checks."""
import math

import pytest

import _npu_path  # noqa: F401
from phoenix_npu_tools import npu_model as nm


def test_peak_and_physical_limit():
    npu = nm.NPU1()
    assert npu.peak_bf16_flops() == pytest.approx(16 * 128 * 2 * 1e9)           # 4.096 TFLOP/s
    assert nm.NPU1(clock_ghz=1.6).peak_bf16_flops() == pytest.approx(6.5536e12)
    assert nm.physical_limit_ms(87.0) == pytest.approx(87e9 / 4.096e12 * 1e3)    # ~21.2 ms
    # shim: 4 tiles x 2 channels x 4 B/cycle x 1 GHz x efficiency
    assert npu.shim_in_bytes_per_s() == pytest.approx(32e9 * npu.dma_efficiency)


def test_base_encoder_flops_match_design():
    e = nm.plan_encoder("base")
    # DESIGN.md: ~84 GFLOP in the 6 layers + ~3 GFLOP conv stem for a 30 s window.
    layers = sum(p.kernel.flops * p.kernel.repeat for p in e.plans if not p.kernel.name.startswith("conv"))
    stem = sum(p.kernel.flops for p in e.plans if p.kernel.name.startswith("conv"))
    assert layers / 1e9 == pytest.approx(84.3, abs=0.5)
    assert stem / 1e9 == pytest.approx(3.1, abs=0.2)


def test_matmul_hand_computed():
    npu = nm.NPU1(mac_efficiency=1.0, dma_efficiency=1.0, launch_overhead_us=0.0)
    k = nm.Kernel("mm", "matmul", dict(M=512, K=256, N=512))
    p = nm.plan_matmul(k, npu, tiles=(64, 32, 64), mode="stream")
    # 2 x 2 blocks of 256 x 256, 8 k-steps; per step max(64*32*64/128, 4096 B / 4 B) = 1024 cycles
    assert p.compute_s == pytest.approx(2 * 2 * 8 * 1024 / 1e9)
    # L1 of the GEMM core: A, B (bf16) and C (fp32) double-buffered, and upstream's 0xD00 stack
    assert p.l1_bytes == 2 * 64 * 32 * 2 + 2 * 32 * 64 * 2 + 2 * 64 * 64 * 4 + 0xD00
    # stream: A (512x256 bf16) re-read per column block (2), B (256x512) per row block (2)
    assert p.shim_in == pytest.approx(2 * 512 * 256 * 2 + 2 * 256 * 512 * 2)
    assert p.shim_out == pytest.approx(512 * 512 * 4)  # FP32 C to the scratch; the epilogue rounds
    assert p.time_s == pytest.approx(max(p.compute_s, p.dma_s))
    # 64x64x64: A 16 + B 16 + C 32 KiB + stack > 64 KiB
    with pytest.raises(nm.PlanError) as e:
        nm.plan_matmul(k, nm.NPU1(), tiles=(64, 64, 64), mode="stream")
    assert "L1" in e.value.reason and "stack" in e.value.reason


def test_attention_l1_rejected_and_best_fits():
    k = nm.Kernel("attn", "attention", dict(heads=8, T=1500, dh=64))
    with pytest.raises(nm.PlanError) as e:
        nm.plan_attention(k, nm.NPU1(), bq=64, bk=64)
    assert "L1" in e.value.reason
    p = nm.plan_attention(k, nm.NPU1())
    assert p.l1_bytes <= 64 * 1024 and p.l2_bytes <= 512 * 1024


def test_attention_design_fits_npu1_only_with_8_query_rows():
    """Q block x all keys per tile with the contract's FP32 scores kept in L1 (docs/npu.md 2b)."""
    d = nm.attention_design("attn", 8, 1500, 64)
    assert nm.check_design(d) == []
    assert (d.params["bq"], d.params["bk"], d.params["tk_pad"], d.params["rounds_per_head"]) == (8, 16, 1504, 47)
    assert d.core_inputs == 2 and (d.memtile_mm2s, d.memtile_s2mm, d.memtile_north) == (6, 6, 5)
    assert d.l1["S block (Bq x Tk fp32; P over it)"] == 8 * 1504 * 4
    with pytest.raises(nm.DesignError, match="L1"):            # 16 rows of FP32 scores: 94 KiB
        nm.attention_design("attn", 8, 1500, 64, bq=16, bk=16)
    with pytest.raises(nm.DesignError, match="lock value"):    # 4 rows: K/V replayed 94 times > 63
        nm.attention_design("attn", 8, 1500, 64, bq=4, bk=32)
    # every shim task of a head stays inside the fused projection / O and each column's heads
    for t in d.transfers:
        assert t.buffer in ("qkv", "O") and t.group < 2


def test_no_tiling_fits_raises():
    k = nm.Kernel("ln", "layernorm", dict(rows=10, cols=1 << 20))
    with pytest.raises(nm.PlanError) as e:
        nm.plan_rows(k, nm.NPU1())
    assert "fits npu1" in str(e.value)


def test_contract_vector_costs_hand_computed():
    npu = nm.NPU1()
    # exp: 8 FP32 muls x 8 cycles + 7 adds + 4 other, per 16 lanes
    assert nm.vector_cycles_per_element(npu, "exp") == pytest.approx((8 * 13 + 7 + 4) / 16)  # 13: Peano "safe"
    with pytest.raises(ValueError):
        nm.vector_cycles_per_element(npu, "exp", "fast")


def test_every_kernel_of_every_model_fits():
    # medium / large: FC1's epilogue row (N = 4D FP32) no longer fits one tile: the planner says so
    with pytest.raises(nm.PlanError, match="L1"):
        nm.plan_encoder("medium")
    for model in ("tiny", "base", "small"):
        for clock in (1.0, 1.6):
            e = nm.plan_encoder(model, clock)
            for p in e.plans:
                assert p.l1_bytes <= e.npu.l1_bytes
                assert p.l2_bytes <= e.npu.memtile_bytes
                assert p.time_s >= max(p.compute_s, p.dma_s)
            assert 0 < e.utilisation <= 1


def test_clock_scales_time():
    a, b = nm.plan_encoder("tiny", 1.0), nm.plan_encoder("tiny", 1.6)
    assert b.time_s < a.time_s


def test_recalibrated_figures_and_sources():
    npu = nm.NPU1()
    assert npu.mac_efficiency == 0.5 and npu.fp32_mul_cycles == 13.0
    # npu1's published launch cost (xdna-driver #796: 92 us/iter), not the 45-60 us of mlir-aie #2381
    assert npu.launch_overhead_us == 92.0
    # a PDI reload per change of xclbin kernel, 0.1-0.57 ms published (iree-amd-aie #1187, hrx-system #807)
    assert (npu.pdi_reload_us, npu.pdi_reload_high_us) == (100.0, 570.0)
    assert npu.shim_bds == 16 and npu.dma_queue_depth == 4 and npu.hw_contexts == 6
    # every constant `plan` prints has its value and a source; the unpublished ones say ASSUMPTION
    src = {name: (value, text) for name, value, _, text in npu.sources()}
    for name in ("launch_overhead_us", "pdi_reload_us", "pdi_reload_high_us", "mac_efficiency", "fp32_mul_cycles",
                 "context_create_us", "clock_ghz", "dma_efficiency"):
        assert src[name][0] == getattr(npu, name) and len(src[name][1]) > 10, name
    assert "#796" in src["launch_overhead_us"][1] and "#807" in src["pdi_reload_high_us"][1]
    for name in ("context_create_us", "dma_efficiency", "dma_task_us"):
        assert "ASSUMPTION" in src[name][1], name


def test_base_headline_figures_are_stable():
    """The figures docs/npu.md quotes (update both together)."""
    e = nm.plan_encoder("base")
    assert 21.0 < e.physical_limit_s * 1e3 < 21.6
    # docs/npu.md 3: 173.6 ms with 0.1 ms PDI reloads, 202.2 ms with 0.57 ms (the review's 170-200 ms)
    assert 170e-3 < e.time_s < 178e-3 and 198e-3 < e.time_high_s < 206e-3
    assert len(e.launches) == 61 and e.reloads == 61 and e.context_creates == 0
    assert e.reconfig_s() == pytest.approx(61 * 100e-6) and e.reconfig_s(True) == pytest.approx(61 * 570e-6)
    host = sum(p.total_s for p in e.plans if p.bound == "host")
    assert e.limiting.kernel.name == "attention (host)" and 90e-3 < host < 98e-3   # attention 84.3 + conv stem
    fused = nm.plan_encoder("base", attention="fused")  # attention_design: checked, not built
    att = next(p for p in fused.plans if p.kernel.op == "attention")
    host_att = next(p for p in e.plans if p.kernel.op == "host_attention").total_s
    # the planner's evidence (docs/npu.md 2b): slower than the host kernel at 1.0 GHz, bound by the
    # FP32 exponentials of the contract and the per-block K/V stream, not by the MACs
    assert 215e-3 < fused.time_s < 230e-3 and att.total_s > host_att and att.bound == "vector"
    fast = nm.plan_encoder("base", clock_ghz=1.6, attention="fused")
    assert next(p for p in fast.plans if p.kernel.op == "attention").total_s < host_att


def test_gemms_are_priced_with_the_built_tile():
    """Review M1: the model priced the best searched tile (48x32x48 for QKV), not gemm_design's."""
    e = nm.plan_encoder("base")
    gemms = [p for p in e.plans if p.kernel.op == "matmul"]
    assert len(gemms) == 4
    for p in gemms:
        d = nm.gemm_design("x", p.kernel.params["M"], p.kernel.params["K"], p.kernel.params["N"])
        assert f"m,k,n={d.params['m']},{d.params['k']},{d.params['n']}" in p.tiling and "built" in p.tiling
    built = sum(p.total_s for p in gemms)
    searched = sum(nm.plan_matmul(p.kernel, e.npu, tiles=(48, 32, 48)).total_s for p in gemms)
    assert 34e-3 < built < 37e-3 and searched < built   # the review: 35.9 ms built vs 30.7 ms searched


def test_conv_stem_is_host_work():
    """No NPU design exists for the stem (conv1's K = 240 fits no GEMM tile; neither conv is in the manifest)."""
    with pytest.raises(nm.DesignError):
        nm.gemm_design("conv1", 3000, 240, 512)
    e = nm.plan_encoder("base")
    stem = [p for p in e.plans if p.kernel.name.startswith("conv")]
    assert len(stem) == 2 and all(p.bound == "host" and p.overhead_s == 0 for p in stem)
    assert all(nm.stage_key(p.kernel) is None for p in stem)
    # measured emulated MatMul rate + Im2Col (docs/benchmarks.md): about 10 ms for whisper-base
    assert 9e-3 < sum(p.total_s for p in stem) < 11e-3


def test_pdi_reloads_count_changes_of_xclbin_kernel():
    assert nm.pdi_reloads([]) == 0
    assert nm.pdi_reloads(["a", "a", "a"]) == 1          # the firmware elides a reload of the loaded PDI
    assert nm.pdi_reloads(["a", "b", "a", "a", "c"]) == 4
    ks = nm.encoder_kernels("base")
    seq = nm.launch_sequence(ks)
    # per layer: LN, QKV GEMM + epilogue, out GEMM + epilogue, LN, FC1 + epilogue, FC2 + epilogue; then ln_post
    assert len(seq) == 6 * 10 + 1 and seq[0] == seq[5] == seq[-1] == ("layernorm", 1500, 512)
    assert len(set(seq)) == 9   # LN, 4 GEMMs, 4 epilogues (named per MatMul in the manifest)


def test_context_cache_accounting_hand_computed():
    seq = ["a", "b", "c"]
    # everything fits: only the first run creates contexts
    assert nm.context_misses(seq, 3)["misses"] == 0
    # a cycle of 3 through 2 contexts: LRU evicts exactly the one needed next (3 misses per run);
    # farthest-next-use keeps one resident (2 misses per run)
    assert nm.context_misses(seq, 2, "lru")["misses"] == 3
    assert nm.context_misses(seq, 2, "belady")["misses"] == 2
    assert nm.context_misses(seq, 1)["misses"] == 3
    with pytest.raises(ValueError):
        nm.context_misses(seq, 0)
    base = nm.launch_sequence(nm.encoder_kernels("base"))
    assert [nm.context_misses(base, c)["misses"] for c in (4, 5, 6, 9)] == [34, 27, 21, 0]
    assert nm.context_misses(base, 6, "lru")["misses"] == 48


def test_per_stage_mode_pays_context_creations():
    one = nm.plan_encoder("base")
    per = nm.plan_encoder("base", mode="per-stage", contexts=6)
    assert per.kernels_s == pytest.approx(one.kernels_s) and per.reloads == one.reloads == 61
    assert per.context_creates == 21
    assert per.time_s - one.time_s == pytest.approx(21 * per.npu.context_create_us * 1e-6)
    assert nm.plan_encoder("base", mode="per-stage", contexts=4).time_s > per.time_s
    with pytest.raises(ValueError):
        nm.plan_encoder("base", mode="per-stage", contexts=7)   # npu1 has 6 for all processes
    with pytest.raises(ValueError):
        nm.plan_encoder("base", mode="full-elf")


def test_seconds_and_bad_inputs():
    assert next(k for k in nm.encoder_kernels("base", 10) if k.name == "ln1").params["rows"] == 500
    with pytest.raises(ValueError):
        nm.encoder_kernels("huge")
    with pytest.raises(ValueError):
        nm.encoder_kernels("base", 31)


def test_plan_cli(capsys):
    import argparse
    from phoenix_npu_tools import npu_plan
    p = argparse.ArgumentParser()
    npu_plan.add_arguments(p)
    assert npu_plan.run(p.parse_args(["--model", "tiny"])) == 0
    out = capsys.readouterr().out
    assert "modelled encoder time" in out and "MODELLED" in out and "limiting kernel" in out
    # every constant printed with its source; the reconfiguration line counts the launches
    assert "constants of the time model" in out and "xdna-driver #796" in out and "hrx-system #807" in out
    assert "PDI reloads x 0.10 ms" in out and "mode one-xclbin" in out
    assert npu_plan.run(p.parse_args(["--model", "base", "--mode", "per-stage", "--contexts", "6"])) == 0
    out = capsys.readouterr().out
    assert "21 hw_context creations" in out and "per-stage" in out
    assert npu_plan.run(p.parse_args(["--model", "base", "--mode", "per-stage", "--contexts", "9"])) == 1
    assert npu_plan.run(p.parse_args(["--all", "--clock", "1.6"])) == 0
    out = capsys.readouterr().out
    for m in nm.WHISPER:
        assert m in out


# --- designs and their mechanical check against npu1's limits -------------------------------------
def test_manifest_designs_are_within_limits():
    from phoenix_npu.manifest import load_manifest
    m = load_manifest(nm_root() / "kernels" / "manifest.json", check_artifacts=False)
    results = nm.check_manifest(m)
    assert len(results) == len(m.kernels)
    for desc, designs, problems in results:
        assert designs and not problems, (desc, problems)
        for d in designs:
            assert sum(d.l1.values()) <= 64 * 1024 and d.core_inputs <= 2


def test_softmax_1500_columns_keeps_rows_aligned():
    d = nm.rows_design("sm", "softmax", 12000, 1500)
    assert d.params["rows_per_obj"] == 1          # 3000-byte rows: only one per 32-byte-aligned buffer
    with pytest.raises(nm.DesignError, match="vector alignment"):
        nm.rows_design("sm", "softmax", 12000, 1500, rows_per_obj=2)


def test_layernorm_params_ride_the_second_channel():
    d = nm.rows_design("ln", "layernorm", 1500, 512)
    assert d.core_inputs == 2 and d.params["side"] == "broadcast"
    side = [t for t in d.transfers if t.buffer in ("gamma", "beta")]
    # sent once per column (the memtile broadcasts them to its 4 tiles), on the second channel
    assert len(side) == 2 * 4 and all(t.sizes[0] == 1 and t.channel == 1 for t in side)
    # x split to 4 tiles + the broadcast + y out: 6 memtile MM2S channels, no more
    assert (d.memtile_mm2s, d.memtile_s2mm, d.memtile_north) == (6, 6, 5)


def test_memtile_channels_are_counted_and_limited():
    """Each memtile -> core ObjectFifo takes one memtile MM2S channel and one stream (mlir-aie's
    ObjectFifo lowering: "number of output DMA channel exceeded!"). Splitting gamma/beta and x
    to 4 tiles each, as the previous LayerNorm design did, needs 9 of the 6."""
    d = nm.rows_design("ln", "layernorm", 1500, 512)
    d.memtile_mm2s, d.memtile_north = 4 + 4 + 1, 8
    problems = nm.check_design(d)
    assert any("6 MM2S" in p for p in problems) and any("streams from a memtile" in p for p in problems)
    for op, kw in (("softmax", {}), ("gelu", {}), ("epilogue", dict(bias=True)), ("epilogue", dict(bias=True, residual=True))):
        d = nm.rows_design(op, op, 3000, 512, **kw)
        assert d.memtile_mm2s <= 6 and d.memtile_s2mm <= 6 and d.memtile_north <= 6, (op, kw)
    g = nm.gemm_design("mm", 1500, 512, 2048)
    assert (g.memtile_mm2s, g.memtile_s2mm, g.memtile_north) == (3, 6, 2)


def test_epilogue_bias_leads_the_acc_rows_and_residual_uses_two_rows():
    d = nm.rows_design("epi", "epilogue", 1500, 2048, bias=True)
    assert d.core_inputs == 1 and d.params["core_rows"] == 4
    for c in range(4):   # per column: the bias (4 copies: one per tile) first, then acc rows, on MM2S 0
        ch0 = [t for t in d.transfers if t.column == c and t.direction == "mm2s" and t.channel == 0]
        assert ch0[0].buffer == "bias" and ch0[0].sizes[0] == 4 and ch0[0].strides[0] == 0
        assert all(t.buffer == "acc" for t in ch0[1:])
    r = nm.rows_design("epi", "epilogue", 1500, 512, bias=True, residual=True)
    assert r.core_inputs == 2 and r.params["core_rows"] == 2 and r.params["side"] == "split"
    assert (r.memtile_mm2s, r.memtile_north) == (2 + 2 + 1, 4)
    assert nm.check_design(r) == []


@pytest.mark.parametrize("mutate,msg", [
    (lambda d: d.transfers[0].strides.__setitem__(2, 0), "only the outermost"),          # stride-0 inner dim
    (lambda d: d.transfers.extend([d.transfers[0]] * 20), "buffer descriptors alive"),    # > 16 BDs on a shim
    (lambda d: d.transfers.extend([d.transfers[0]] * 4), "tasks queued"),                 # > 4 on one channel
    (lambda d: d.l1.__setitem__("stack", 0x8000), "L1"),                                  # stack breaks L1
    (lambda d: setattr(d, "core_inputs", 3), "input"),                                    # 3 input channels
    (lambda d: d.transfers[0].sizes.__setitem__(0, 100), "repeat"),                       # repeat > 64
    (lambda d: d.transfers[0].sizes.__setitem__(3, 2000), "wrap"),                        # d0 > 1023
    (lambda d: setattr(d.transfers[0], "offset", 10 ** 9), "reaches element"),            # out of the buffer
])
def test_deliberately_bad_parameters_are_caught(mutate, msg):
    d = nm.gemm_design("mm", 1500, 512, 2048)
    assert nm.check_design(d) == []
    mutate(d)
    problems = nm.check_design(d)
    assert any(msg in p for p in problems), problems


def test_plan_check_cli_fails_on_a_violating_manifest(tmp_path, capsys):
    import argparse
    import json
    from phoenix_npu_tools import npu_plan
    p = argparse.ArgumentParser()
    npu_plan.add_arguments(p)
    assert npu_plan.run(p.parse_args(["--check", "--manifest", str(nm_root() / "kernels" / "manifest.json")])) == 0
    out = capsys.readouterr().out
    assert "within npu1's limits" in out and "VIOLATION" not in out
    bad = {"version": 2, "xclbin": "x.xclbin", "kernels": [{"op": "softmax", "rows": 10, "cols": 1500, "stages": [
        {"kernel_name": "SM", "insts": "sm.bin", "args": ["x", "y"]}]}]}   # fewer rows than one round
    (tmp_path / "m.json").write_text(json.dumps(bad))
    assert npu_plan.run(p.parse_args(["--check", "--manifest", str(tmp_path / "m.json")])) == 1
    assert "VIOLATION" in capsys.readouterr().out


def nm_root():
    from pathlib import Path
    return Path(__file__).resolve().parent.parent


def test_int8_plan_prices_the_three_int8_stages():
    """--precision int8 (issue 23 item 5): each linear layer is quantize + INT8 GEMM + dequantizing epilogue,
    the GEMM at 256 INT8 MACs / cycle on the built i8 tile; the BF16 plan is unchanged by it."""
    from phoenix_npu_tools import npu_model as nm
    bf = nm.plan_encoder("base")
    i8 = nm.plan_encoder("base", precision="int8")
    ops = [p.kernel.op for p in i8.plans]
    assert ops.count("matmul_int8") == 4 and ops.count("quantize") == 4 and ops.count("epilogue_i8") == 4
    assert "matmul" not in ops and abs(i8.flops - bf.flops) < 1e-6 * bf.flops
    g8 = {p.kernel.name: p for p in i8.plans if p.kernel.op == "matmul_int8"}
    g16 = {p.kernel.name: p for p in bf.plans if p.kernel.op == "matmul"}
    for name, p in g8.items():
        assert "built: gemm_design" in p.tiling and p.compute_s < g16[name].compute_s   # twice the MACs per cycle
        assert p.shim_in < g16[name].shim_in                                              # one-byte operands
    # every INT8 stage is a distinct NPU launch: 3 per linear layer
    assert len(i8.launches) == len(bf.launches) + 4 * i8.plans[2].kernel.repeat
    with pytest.raises(ValueError):
        nm.plan_encoder("base", precision="fp8")


def test_int8_quantize_is_priced_as_the_vector_kernel():
    """quantize.cc is vector code (26 vector instructions per 16 lanes, 2^-11 of the lanes divided at the
    scalar kernel's 40 cycles): about 1.65 cycles per element, not the scalar kernel's 40, and the modelled
    INT8 encoder is then faster than the BF16 one at 1.0 GHz (it was 242.8 ms against 173.6 ms)."""
    from phoenix_npu_tools import npu_model as nm
    npu = nm.NPU1()
    assert nm.quantize_cycles_per_element(npu) == pytest.approx(26 / 16 + 40 / 2048)
    assert nm.quantize_cycles_per_element(npu, divided=1.0) == pytest.approx(26 / 16 + 40)   # worst case
    bf = nm.plan_encoder("base")
    i8 = nm.plan_encoder("base", precision="int8")
    q = [p for p in i8.plans if p.kernel.op == "quantize"]
    assert len(q) == 4 and sum(p.compute_s * p.kernel.repeat for p in q) < 4e-3   # 84.9 ms of kernels before
    assert i8.time_s < bf.time_s


def test_int8_designs_pass_the_limit_check():
    from phoenix_npu_tools import npu_model as nm
    d = nm.gemm_design("g", 1500, 2048, 512, dtype="i8")
    assert (d.params["m"], d.params["k"], d.params["n"]) == (64, 64, 64) and not nm.check_design(d)
    assert all(t.elem_bytes == 1 for t in d.transfers if t.buffer in ("qa", "B"))
    with pytest.raises(nm.DesignError):                 # mm.cc's i8 kernel needs n % 16
        nm.gemm_design("g", 1500, 512, 512, tiles=(64, 64, 40), dtype="i8")
    q = nm.rows_design("q", "quantize", 1500, 2048)
    assert q.buffers["qa"] == (1500 * 2048, 1) and q.dtypes == {"qa": "int8"} and not nm.check_design(q)
    e = nm.rows_design("e", "epilogue_i8", 1500, 512, bias=True, residual=True)
    cp = next(t for t in e.transfers if t.buffer == "colparams")
    assert cp.sizes[1] == 3 and cp.strides[1] == nm.COL_PARAM_COPIES * 512 and not nm.check_design(e)
