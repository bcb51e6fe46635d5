"""A short fuzz run in CI: a few hundred random chains and DAGs (the long run is tools/fuzz.py).
PHOENIX_FUZZ_GRAPHS bounds both (scripts/sanitize.sh runs fewer under the sanitizers)."""
import os
from collections import Counter

from dag_fuzz import check_dag
from graph_fuzz import check_graph

N = int(os.environ.get("PHOENIX_FUZZ_GRAPHS", "300"))
N_DAGS = N * 5 // 3  # a DAG takes about 60 ms here: 500 in about 30 s


def test_random_graphs_match_cpu_or_fall_back():
    claimed_any = 0
    for seed in range(N):
        r = check_graph(seed)
        claimed_any += r["claimed"] > 0
    # the generator must actually exercise the provider, not just the CPU EP
    assert claimed_any > N // 3, f"only {claimed_any} of {N} graphs had nodes on PhoenixNPU"


def test_random_graphs_at_bf16x3():
    """The same generator at precision=bf16x3: every view, broadcast and shape the compiler
    emits, on the BF16-pair kernels (other seeds than above)."""
    claimed_any = 0
    for seed in range(100_000, 100_000 + N // 3):
        claimed_any += check_graph(seed, precision="bf16x3")["claimed"] > 0
    assert claimed_any > N // 9


def test_random_dags_match_cpu():
    """Random DAGs (tests/dag_fuzz.py): several readers and outputs, attention, GELU patterns
    and look-alikes, Q/DQ chains through views, INT8 weights (edge scales too), integer shape
    arithmetic in every width, ranks to 10, symbolic dims at several sizes, NaN / Inf feeds, malformed
    Reshapes, each at the precision and fuse_attention its seed draws. Every seed runs; the
    failures are reported together, each with its seed (tools/fuzz.py --dag --start SEED
    --graphs 1 reruns one)."""
    failures, stats = [], Counter()
    for seed in range(N_DAGS):
        try:
            r = check_dag(seed)
        except Exception as exc:  # noqa: BLE001 - mismatches, failed sessions and runs, generator bugs alike
            failures.append(f"seed {seed}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            continue
        stats["claimed"] += r["claimed"] > 0
        stats.update(r["kernels"])
        stats[r["config"].split()[0]] += 1
        stats[r["config"].split()[1]] += 1
        stats["symbolic"] += "symbolic" in r["desc"]
        stats.update(b for b in r["desc"].split() if b in ("qdq_view", "int8_weight", "shape_arith"))
        stats["malformed"] += "malformed" in r["desc"]
    assert not failures, f"{len(failures)} of {N_DAGS} DAGs failed:\n" + "\n".join(failures)
    # the run must reach what it is for: the provider, both precisions, attention fused and
    # not, symbolic dims, malformed models
    assert stats["claimed"] > N_DAGS // 3, stats
    for key in ("precision=bf16", "precision=bf16x3", "fuse_attention=0", "fuse_attention=1"):
        assert stats[key] >= N_DAGS // 10, (key, stats)
    assert stats["symbolic"] >= N_DAGS // 10 and stats["malformed"] >= N_DAGS // 50, stats
    # QDQ chains with views, INT8 weights, integer shape arithmetic of every width (issue 21.3-4)
    for block in ("qdq_view", "int8_weight", "shape_arith"):
        assert stats[block] >= N_DAGS // 20, (block, stats)
    for kernel in ("MatMul", "Attention", "LayerNorm", "Softmax", "Gelu", "Im2Col", "Binary", "BinaryScalar"):
        assert stats[kernel] > 0, (kernel, stats)
