// Emulated fused attention: dispatcher, and the reference form (see attention.h / README.md for
// the numerics).
//
// Reference form (portable::Attention, the numerics specification): one query row at a time,
// scores in FP32 in a scratch row, softmax, P rounded to BF16, then P . V, sequential FP32 sums.
//
// Fast form (CPUs with AVX512_BF16, emulated_avx512.cc): per call, Q^T, K and V of every head
// are packed once into vdpbf16ps layouts (packing buffer reused); then each thread takes blocks
// of 32 query rows of a head: the block's FP32 scores, transposed (S^T [N][32 queries], one
// query per lane), come from 12-key x 32-query register tiles into a per-thread scratch that
// stays in L2; the softmax runs down the columns (per query: the max, KernelExp bit-exact, and
// the sum in the reference's sequential key order), P is rounded to BF16 into key-pair layout
// and O = P V (6 x 64 register tiles) is rounded once and stored. The scores never reach memory
// outside the thread's scratch; no allocation after warm-up.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <type_traits>
#include <vector>

#include "common/batch_offsets.h"
#include "common/checked_size.h"
#include "attention/attention.h"
#include "attention/attention_internal.h"
#include "common/cpu_features.h"
#include "common/kernel_isa.h"
#include "common/parallel.h"
#include "common/split_operands.h"

namespace phoenix::kernels {

namespace portable {

template <typename T>
void AttentionAs(const AttentionArgs& a, const T* Q, const T* K, const T* V, T* O, int num_threads) {
  const int64_t batches = a.BatchCount();
  const int64_t Dp = ProductK(Q, a.D), Np = ProductK(Q, a.N);  // BF16 products per score / output
  ParallelFor(batches * a.M, num_threads, [&](int64_t r0, int64_t r1) {
    std::vector<float> s(static_cast<size_t>(a.N));
    std::vector<T> p(static_cast<size_t>(a.N));
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t m = r % a.M;
      const int64_t* strides[4] = {a.q_batch_strides, a.k_batch_strides, a.v_batch_strides, a.o_batch_strides};
      int64_t off[4];
      BatchOffsets(r / a.M, a.batch_rank, a.batch_shape, 4, strides, off);
      const int64_t qo = off[0], ko = off[1], vo = off[2], oo = off[3];
      const T* q = Q + qo + m * a.q_rs;
      float mx = -INFINITY;
      bool nan = false;
      for (int64_t n = 0; n < a.N; ++n) {
        const T* k = K + ko + n * a.k_rs;
        float acc = 0.0f;
        for (int64_t d = 0; d < Dp; ++d)
          acc += Bf16ToF32(APrime(q, d, a.D, a.q_cs)) * Bf16ToF32(BPrime(k, d, a.D, a.k_cs));
        s[n] = a.scale * acc;
        nan |= std::isnan(s[n]);
        mx = s[n] > mx ? s[n] : mx;
      }
      float sum = 0.0f;
      for (int64_t n = 0; n < a.N; ++n) {
        s[n] = KernelExp(s[n] - mx);
        sum += s[n];
      }
      const float inv = 1.0f / sum;
      for (int64_t n = 0; n < a.N; ++n) p[n] = FromF32<T>(nan ? NAN : s[n] * inv);
      T* o = O + oo + m * a.o_rs;
      for (int64_t j = 0; j < a.Dv; ++j) {
        float acc = 0.0f;
        for (int64_t n = 0; n < Np; ++n)
          acc += Bf16ToF32(APrime(p.data(), n, a.N, 1)) * Bf16ToF32(BPrime(V + vo + j * a.v_cs, n, a.N, a.v_rs));
        o[j * a.o_cs] = FromF32<T>(acc);
      }
    }
  });
}

void Attention(const AttentionArgs& a, const bf16_t* Q, const bf16_t* K, const bf16_t* V, bf16_t* O,
               int num_threads) {
  AttentionAs(a, Q, K, V, O, num_threads);
}
void Attention(const AttentionArgs& a, const split_t* Q, const split_t* K, const split_t* V, split_t* O,
               int num_threads) {
  AttentionAs(a, Q, K, V, O, num_threads);
}

}  // namespace portable

namespace {

template <typename T>
void Grow(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
}

// 64-byte aligned view into a vector grown with 64 bytes of slack.
template <typename T>
T* Aligned(std::vector<T>& v, size_t n) {
  Grow(v, n + 64 / sizeof(T));
  const uintptr_t p = reinterpret_cast<uintptr_t>(v.data());
  return reinterpret_cast<T*>((p + 63) & ~uintptr_t{63});
}

// Element offsets of Q, K, V, O for every head (batch), and whether K / V differ between heads
// (else they are packed once for all).
void HeadOffsets(const AttentionArgs& a, std::vector<int64_t>& q, std::vector<int64_t>& k, std::vector<int64_t>& v,
                 std::vector<int64_t>& o, bool* k_batched, bool* v_batched) {
  const int64_t batches = a.BatchCount();
  for (auto* x : {&q, &k, &v, &o}) Grow(*x, batches);
  for (int64_t bi = 0; bi < batches; ++bi) {
    const int64_t* strides[4] = {a.q_batch_strides, a.k_batch_strides, a.v_batch_strides, a.o_batch_strides};
    int64_t off[4];
    BatchOffsets(bi, a.batch_rank, a.batch_shape, 4, strides, off);
    q[bi] = off[0];
    k[bi] = off[1];
    v[bi] = off[2];
    o[bi] = off[3];
    *k_batched |= off[1] != k[0];
    *v_batched |= off[2] != v[0];
  }
}

// Per calling thread: per-batch offsets and the packed Q, K, V of every head of the call.
struct PackScratch {
  std::vector<int64_t> q_off, k_off, v_off, o_off;
  std::vector<const bf16_t*> q_ptrs, k_ptrs, v_ptrs;
  std::vector<bf16_t> packed, expanded;
};

// The BF16 operands the packers read, per head: Q, K, V themselves, or for BF16x3 their
// expansions Q' [M][3D], K' [N][3D], V' [3N][Dv] (split_operands.h) in `expanded`.
struct PackSources {
  const bf16_t *q, *k, *v;
  const int64_t *q_off, *k_off, *v_off;  // per head
  int64_t D, NP;                          // packed head dim (D or 3D) and keys of V (N or 3N)
  int64_t q_rs, q_cs, k_rs, k_cs, v_rs, v_cs;
};

PackSources Sources(const AttentionArgs& a, const bf16_t* Q, const bf16_t* K, const bf16_t* V, PackScratch& ps,
                    int64_t, int64_t, int64_t, int) {
  return {Q, K, V, ps.q_off.data(), ps.k_off.data(), ps.v_off.data(), a.D, a.N,
          a.q_rs, a.q_cs, a.k_rs, a.k_cs, a.v_rs, a.v_cs};
}

PackSources Sources(const AttentionArgs& a, const split_t* Q, const split_t* K, const split_t* V, PackScratch& ps,
                    int64_t nq, int64_t nk, int64_t nv, int threads) {
  const int64_t M = a.M, N = a.N, D = a.D, Dv = a.Dv;
  const int64_t qe = M * 3 * D, ke = N * 3 * D, ve = 3 * N * Dv;
  Grow(ps.expanded, static_cast<size_t>(nq * qe + nk * ke + nv * ve));
  bf16_t* xq = ps.expanded.data();
  bf16_t* xk = xq + nq * qe;
  bf16_t* xv = xk + nk * ke;
  const int64_t *qoff = ps.q_off.data(), *koff = ps.k_off.data(), *voff = ps.v_off.data();
  // Rows: Q' row m = [hi | hi* | lo], K' row n = [hi | lo | hi*], V' rows n, N + n, 2N + n = hi, lo, hi*.
  ParallelFor(nq * M + nk * N + nv * N, threads, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      if (r < nq * M) {
        const int64_t bi = r / M, m = r % M;
        const split_t* src = Q + qoff[bi] + m * a.q_rs;
        bf16_t* dst = xq + bi * qe + m * 3 * D;
        if (a.q_cs == 1) avx512::SplitRow(src, D, dst, dst + D, dst + 2 * D);
        else for (int64_t d = 0; d < 3 * D; ++d) dst[d] = APrime(src, d, D, a.q_cs);
      } else if (r < nq * M + nk * N) {
        const int64_t bi = (r - nq * M) / N, n = (r - nq * M) % N;
        const split_t* src = K + koff[bi] + n * a.k_rs;
        bf16_t* dst = xk + bi * ke + n * 3 * D;
        if (a.k_cs == 1) avx512::SplitRow(src, D, dst, dst + 2 * D, dst + D);
        else for (int64_t d = 0; d < 3 * D; ++d) dst[d] = BPrime(src, d, D, a.k_cs);
      } else {
        const int64_t bi = (r - nq * M - nk * N) / N, n = (r - nq * M - nk * N) % N;
        const split_t* src = V + voff[bi] + n * a.v_rs;
        bf16_t* dst = xv + bi * ve;
        if (a.v_cs == 1) {
          avx512::SplitRow(src, Dv, dst + n * Dv, dst + (2 * N + n) * Dv, dst + (N + n) * Dv);
        } else {
          for (int64_t j = 0; j < Dv; ++j) {
            const split_t x = src[j * a.v_cs];
            dst[n * Dv + j] = SplitHi(x);
            dst[(N + n) * Dv + j] = SplitLo(x);
            dst[(2 * N + n) * Dv + j] = SplitHiCross(x);
          }
        }
      }
    }
  });
  // The packers now read the expansions: head bi at bi * (elements per head).
  for (int64_t bi = 0; bi < nq; ++bi) ps.q_off[bi] = bi * qe;
  for (int64_t bi = 0; bi < nk; ++bi) ps.k_off[bi] = bi * ke;
  for (int64_t bi = 0; bi < nv; ++bi) ps.v_off[bi] = bi * ve;
  return {xq, xk, xv, ps.q_off.data(), ps.k_off.data(), ps.v_off.data(), 3 * D, 3 * N,
          3 * D, 1, 3 * D, 1, Dv, 1};
}

// Per worker thread: the score / P block of one unit.
struct UnitScratch {
  std::vector<float> f;
  std::vector<bf16_t> h;
};

// Query rows per unit: 32 (two 16-query panels). The S^T block (N x 32 FP32), the P block and
// this head's packed K and V stay in a 1 MiB L2 for N = 1500; long rows get 16.
// PHOENIX_ATTENTION_BLOCK (16, 32, 48 or 64) overrides (tuning).
int64_t BlockRows(int64_t N) {
  static const int64_t forced = [] {
    const char* e = std::getenv("PHOENIX_ATTENTION_BLOCK");
    const int64_t v = e ? std::atoll(e) : 0;
    return (v >= 16 && v <= 64 && v % 16 == 0) ? v : int64_t{0};
  }();
  if (forced) return forced;
  return N * 32 * 6 <= 512 * 1024 ? 32 : 16;
}

template <typename T>
void AttentionAvx512(const AttentionArgs& a, const T* Q, const T* K, const T* V, T* O, int num_threads) {
  thread_local PackScratch ps;
  const int64_t batches = a.BatchCount();
  const int threads = std::max(1, num_threads);
  for (auto* v : {&ps.q_ptrs, &ps.k_ptrs, &ps.v_ptrs}) Grow(*v, batches);
  bool k_batched = false, v_batched = false;
  HeadOffsets(a, ps.q_off, ps.k_off, ps.v_off, ps.o_off, &k_batched, &v_batched);

  // Pack Q^T, K and V of every head (K or V shared by all batches is packed once). Jobs are
  // (operand, head, part): a head's operand is split into parts when there are few heads.
  const int64_t nq = batches, nk = k_batched ? batches : 1, nv = v_batched ? batches : 1;
  const PackSources src = Sources(a, Q, K, V, ps, nq, nk, nv, threads);
  const int64_t q_elems = avx512::PackedBElems(src.D, a.M), k_elems = avx512::KeyTileElems(a.N, src.D),
                v_elems = avx512::PackedBElems(src.NP, a.Dv);
  bf16_t* pq = Aligned(ps.packed, static_cast<size_t>(nq * q_elems + nk * k_elems + nv * v_elems + 64));
  bf16_t* pk = pq + nq * q_elems;
  bf16_t* pv = pk + nk * k_elems;
  const int64_t q_units = (a.M + 15) / 16, k_units = (a.N + avx512::kKeyTile - 1) / avx512::kKeyTile,
                v_units = (a.Dv + 15) / 16;
  const int64_t q_parts = std::min<int64_t>(q_units, nq >= 2 * threads ? 1 : 2 * threads);
  const int64_t k_parts = std::min<int64_t>(k_units, nk >= 2 * threads ? 1 : 2 * threads);
  const int64_t v_parts = std::min<int64_t>(v_units, nv >= 2 * threads ? 1 : 2 * threads);
  const int64_t jq = nq * q_parts, jk = nk * k_parts, jv = nv * v_parts;
  const int64_t *qoff = src.q_off, *koff = src.k_off, *voff = src.v_off;
  ParallelFor(jq + jk + jv, threads, [&](int64_t j0, int64_t j1) {
    for (int64_t j = j0; j < j1; ++j) {
      if (j < jq) {
        const int64_t bi = j / q_parts, part = j % q_parts;
        avx512::PackB(src.q + qoff[bi], src.D, a.M, src.q_cs, src.q_rs, pq + bi * q_elems, q_units * part / q_parts,
                      q_units * (part + 1) / q_parts);
      } else if (j < jq + jk) {
        const int64_t bi = (j - jq) / k_parts, part = (j - jq) % k_parts;
        avx512::PackKeyTiles(src.k + koff[bi], a.N, src.D, src.k_rs, src.k_cs, pk + bi * k_elems, k_units * part / k_parts,
                             k_units * (part + 1) / k_parts);
      } else {
        const int64_t bi = (j - jq - jk) / v_parts, part = (j - jq - jk) % v_parts;
        avx512::PackB(src.v + voff[bi], src.NP, a.Dv, src.v_rs, src.v_cs, pv + bi * v_elems, v_units * part / v_parts,
                      v_units * (part + 1) / v_parts);
      }
    }
  });
  for (int64_t bi = 0; bi < batches; ++bi) {
    ps.q_ptrs[bi] = pq + bi * q_elems;
    ps.k_ptrs[bi] = pk + (k_batched ? bi : 0) * k_elems;
    ps.v_ptrs[bi] = pv + (v_batched ? bi : 0) * v_elems;
  }

  avx512::AttentionPlan p;
  p.args = &a;
  p.D = src.D;
  p.NP = src.NP;
  p.split = std::is_same<T, split_t>::value;
  p.O = O;
  p.o_offsets = ps.o_off.data();
  p.packed_q = ps.q_ptrs.data();
  p.packed_k = ps.k_ptrs.data();
  p.packed_v = ps.v_ptrs.data();
  p.block_rows = BlockRows(a.N);
  p.blocks = (a.M + p.block_rows - 1) / p.block_rows;
  p.units = batches * p.blocks;
  // Small problems: fewer threads (about 2 MFLOP per thread at least).
  const double flops = 2.0 * batches * a.M * (a.N * double(src.D) + src.NP * double(a.Dv));
  const int use = static_cast<int>(std::max<double>(1.0, std::min<double>(threads, flops / 2e6)));
  const size_t nf = static_cast<size_t>(avx512::AttentionScratchFloats(p.block_rows, a.N));
  const size_t nh = static_cast<size_t>(avx512::AttentionScratchBf16(p.block_rows, src.NP));
  ParallelFor(p.units, use, [&](int64_t u0, int64_t u1) {
    thread_local UnitScratch us;
    avx512::AttentionScratch s;
    s.f = Aligned(us.f, nf);
    s.h = Aligned(us.h, nh);
    avx512::AttentionUnits(p, s, u0, u1);
  });
}

// The scratch sizes a call may need (packed Q, K, V of every head, a score block; the
// reference's rows of N), from the model's dims: refused (std::length_error, on the calling
// thread) when they overflow int64, before any path runs or allocates.
template <typename T>
void CheckScratchSizes(const AttentionArgs& a, const T* Q) {
  const int64_t batches = a.BatchCount();
  const int64_t r = ProductK(Q, 1);  // 3 for BF16x3 (Q', K', V' expansions)
  const int64_t d2 = CheckedAdd(CheckedMul(r, a.D, "Attention D"), 2, "Attention D");
  const int64_t n2 = CheckedAdd(CheckedMul(r, a.N, "Attention N"), 2, "Attention N");
  const int64_t q = CheckedMul(CheckedAdd(a.M, 16, "Attention M"), d2, "Attention Q");
  const int64_t k = CheckedMul(CheckedAdd(a.N, avx512::kKeyTile, "Attention N"), d2, "Attention K");
  const int64_t v = CheckedMul(n2, CheckedAdd(a.Dv, 16, "Attention Dv"), "Attention V");
  CheckedMul(CheckedMul(CheckedAdd(CheckedAdd(q, k, "Attention"), v, "Attention"), 2, "Attention"), batches, "Attention");
  CheckedMul(CheckedAdd(a.N, 2, "Attention N"), 64 * sizeof(float), "Attention scores");
  CheckedMul(CheckedAdd(a.Dv, 16, "Attention Dv"), 16 * sizeof(float), "Attention accumulators");
}

// The AVX2 path (BF16): Q^T, K and V of every head packed to FP32 once per call, then units of
// kBlockRows queries on the threads (emulated_avx2.cc).
void AttentionAvx2(const AttentionArgs& a, const bf16_t* Q, const bf16_t* K, const bf16_t* V, bf16_t* O,
                   int num_threads) {
  struct Scratch {
    std::vector<int64_t> q_off, k_off, v_off, o_off;
    std::vector<float> packed;
    std::vector<const float*> q_ptrs, k_ptrs, v_ptrs;
    std::vector<avx2::OperandRange> ranges, q_range, k_range, v_range;  // ranges: per packed operand
  };
  thread_local Scratch ps;
  const int64_t batches = a.BatchCount();
  const int threads = std::max(1, num_threads);
  for (auto* v : {&ps.q_ptrs, &ps.k_ptrs, &ps.v_ptrs}) Grow(*v, batches);
  for (auto* v : {&ps.q_range, &ps.k_range, &ps.v_range}) Grow(*v, batches);
  bool k_batched = false, v_batched = false;
  HeadOffsets(a, ps.q_off, ps.k_off, ps.v_off, ps.o_off, &k_batched, &v_batched);
  const int64_t nq = batches, nk = k_batched ? batches : 1, nv = v_batched ? batches : 1;
  const int64_t q_elems = avx2::PackedBFloats(a.D, a.M), k_elems = avx2::KeyPanelFloats(a.N, a.D),
                v_elems = avx2::KeyPanelFloats(a.Dv, a.N);
  Grow(ps.packed, static_cast<size_t>(nq * q_elems + nk * k_elems + nv * v_elems));
  float* pq = ps.packed.data();
  float* pk = pq + nq * q_elems;
  float* pv = pk + nk * k_elems;
  const int64_t *qoff = ps.q_off.data(), *koff = ps.k_off.data(), *voff = ps.v_off.data();
  const int64_t q_panels = (a.M + 15) / 16;
  Grow(ps.ranges, static_cast<size_t>(nq + nk + nv));
  avx2::OperandRange* ranges = ps.ranges.data();
  ParallelFor(nq + nk + nv, threads, [&](int64_t j0, int64_t j1) {
    for (int64_t j = j0; j < j1; ++j) {
      float* dst;
      int64_t n;
      if (j < nq) {
        dst = pq + j * q_elems, n = q_elems;
        avx2::PackB(Q + qoff[j], a.D, a.M, a.q_cs, a.q_rs, dst, 0, q_panels);
      } else if (j < nq + nk) {
        dst = pk + (j - nq) * k_elems, n = k_elems;
        avx2::PackKeyPanels(K + koff[j - nq], a.N, a.D, a.k_rs, a.k_cs, dst);
      } else {
        dst = pv + (j - nq - nk) * v_elems, n = v_elems;
        avx2::PackKeyPanels(V + voff[j - nq - nk], a.Dv, a.N, a.v_cs, a.v_rs, dst);  // V^T
      }
      ranges[j] = avx2::RangeOf(dst, n);
    }
  });
  for (int64_t bi = 0; bi < batches; ++bi) {
    const int64_t kj = k_batched ? bi : 0, vj = v_batched ? bi : 0;
    ps.q_ptrs[bi] = pq + bi * q_elems;
    ps.k_ptrs[bi] = pk + kj * k_elems;
    ps.v_ptrs[bi] = pv + vj * v_elems;
    ps.q_range[bi] = ranges[bi];
    ps.k_range[bi] = ranges[nq + kj];
    ps.v_range[bi] = ranges[nq + nk + vj];
  }
  avx2::AttentionPlan p;
  p.args = &a;
  p.O = O;
  p.o_offsets = ps.o_off.data();
  p.packed_q = ps.q_ptrs.data();
  p.packed_k = ps.k_ptrs.data();
  p.packed_v = ps.v_ptrs.data();
  p.q_range = ps.q_range.data();
  p.k_range = ps.k_range.data();
  p.v_range = ps.v_range.data();
  p.blocks = (a.M + avx2::kBlockRows - 1) / avx2::kBlockRows;
  p.units = batches * p.blocks;
  const double flops = 2.0 * batches * a.M * (a.N * double(a.D) + a.N * double(a.Dv));
  const int use = static_cast<int>(std::max<double>(1.0, std::min<double>(threads, flops / 2e6)));
  const size_t nf = static_cast<size_t>(avx2::AttentionScratchFloats(a.N, a.Dv));
  ParallelFor(p.units, use, [&](int64_t u0, int64_t u1) {
    thread_local std::vector<float> scratch;
    Grow(scratch, nf);
    avx2::AttentionUnits(p, scratch.data(), u0, u1);
  });
}

template <typename T>
void Dispatch(const AttentionArgs& a, const T* Q, const T* K, const T* V, T* O, int num_threads) {
  if (a.M <= 0 || a.Dv <= 0 || a.BatchCount() <= 0) return;
  CheckScratchSizes(a, Q);
  // N = 0 (O = 0) or D = 0 (uniform P): degenerate, left to the reference.
  if (a.N <= 0 || a.D <= 0) return portable::Attention(a, Q, K, V, O, num_threads);
  if (UseAvx512Bf16()) return AttentionAvx512(a, Q, K, V, O, num_threads);
  if constexpr (std::is_same<T, bf16_t>::value) {
    if (UseAvx2Fma()) return AttentionAvx2(a, Q, K, V, O, num_threads);
  }
  portable::Attention(a, Q, K, V, O, num_threads);
}

}  // namespace

void Attention(const AttentionArgs& a, const bf16_t* Q, const bf16_t* K, const bf16_t* V, bf16_t* O,
               int num_threads) {
  Dispatch(a, Q, K, V, O, num_threads);
}
void Attention(const AttentionArgs& a, const split_t* Q, const split_t* K, const split_t* V, split_t* O,
               int num_threads) {
  Dispatch(a, Q, K, V, O, num_threads);
}

}  // namespace phoenix::kernels
