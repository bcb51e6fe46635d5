// Emulated MatMul: dispatcher, packed-weight cache, and the portable reference form.
//
// Reference form (portable::MatMul, the numerics specification): FP32 accumulation over K in
// order, epilogue in FP32, then the residual added in FP32 and ONE BF16 rounding (the AIE kernel
// adds the residual into the accumulator).
//
// Fast form (CPUs with AVX512_BF16, emulated_avx512.cc): B packed into the vdpbf16ps layout
// (pairs of K interleaved, 16-column panels), 12 x 32 register micro-tiles accumulating all of K
// in FP32, the same epilogue and rounding. Constant B operands (weights) are packed once and
// cached by address until ReleasePackedWeights; activation B operands (attention K^T, V) are
// packed per call into a reusable per-thread scratch buffer (no allocation after warm-up).
#include <algorithm>
#include <memory>
#include <mutex>
#include <type_traits>
#include <vector>

#include "common/batch_offsets.h"
#include "common/checked_size.h"
#include "common/cpu_features.h"
#include "common/kernel_isa.h"
#include "common/parallel.h"
#include "common/split_operands.h"
#include "matmul/matmul.h"
#include "matmul/packed_weights.h"

namespace phoenix::kernels {

namespace portable {

template <typename T>
void MatMulAs(const MatMulArgs& a, const T* A, const T* B, T* C, int num_threads) {
  const int64_t batches = a.BatchCount();
  const int64_t rows = batches * a.M;
  const int64_t Kp = ProductK(A, a.K);
  const T* residual = static_cast<const T*>(a.residual);
  ParallelFor(rows, num_threads, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t m = r % a.M;
      const int64_t* strides[4] = {a.a_batch_strides, a.b_batch_strides, a.c_batch_strides, a.r_batch_strides};
      int64_t off[4];
      BatchOffsets(r / a.M, a.batch_rank, a.batch_shape, 4, strides, off);
      const int64_t ao = off[0], bo = off[1], co = off[2], ro = off[3];
      const T* arow = A + ao + m * a.a_rs;
      for (int64_t n = 0; n < a.N; ++n) {
        float acc = 0.0f;
        const T* bcol = B + bo + n * a.b_cs;
        for (int64_t k = 0; k < Kp; ++k)
          acc += Bf16ToF32(APrime(arow, k, a.K, a.a_cs)) * Bf16ToF32(BPrime(bcol, k, a.K, a.b_rs));
        float v = ApplyEpilogue(acc, a.alpha, a.bias, n, a.epilogue);
        if (residual) v += ToF32(residual[ro + m * a.r_rs + n * a.r_cs]);
        C[co + m * a.c_rs + n * a.c_cs] = FromF32<T>(v);
      }
    }
  });
}

void MatMul(const MatMulArgs& a, const bf16_t* A, const bf16_t* B, bf16_t* C, int num_threads) {
  MatMulAs(a, A, B, C, num_threads);
}
void MatMul(const MatMulArgs& a, const split_t* A, const split_t* B, split_t* C, int num_threads) {
  MatMulAs(a, A, B, C, num_threads);
}

}  // namespace portable

namespace {

// Per calling thread scratch, grown on demand and reused (no allocation after warm-up).
struct Scratch {
  std::vector<bf16_t> packed_b, packed_a, expanded_b;
  std::vector<float> packed_b_f32;
  std::vector<const bf16_t*> b_ptrs;
  std::vector<const float*> b_ptrs_f32;
  std::vector<int64_t> a_offsets, b_offsets;
  std::vector<std::shared_ptr<const std::vector<bf16_t>>> held;
  std::vector<std::shared_ptr<const std::vector<float>>> held_f32;
};

using packing::CachedPack;
using packing::Grow;
using packing::PackedWeightCache;

// Row m of A' (K' = ProductK elements, contiguous) from a strided row of A.
template <typename T>
void ExpandARow(const T* src, int64_t K, int64_t cs, bf16_t* dst) {
  const int64_t Kp = ProductK(src, K);
  for (int64_t k = 0; k < Kp; ++k) dst[k] = APrime(src, k, K, cs);
}

// B' [3K][N] contiguous from a strided BF16x3 B (avx512::SplitRow only when `avx512`).
void ExpandB(const split_t* B, int64_t K, int64_t N, int64_t rs, int64_t cs, bf16_t* dst, bool avx512 = true) {
  if (cs == 1 && avx512) {  // rows contiguous (V, weights): each row of B gives rows k, K + k and 2K + k of B'
    for (int64_t k = 0; k < K; ++k) avx512::SplitRow(B + k * rs, N, dst + k * N, dst + (2 * K + k) * N, dst + (K + k) * N);
    return;
  }
  for (int64_t k = 0; k < 3 * K; ++k)
    for (int64_t n = 0; n < N; ++n) dst[k * N + n] = BPrime(B + n * cs, k, K, rs);
}

// B packed into the vdpbf16ps layout (panels [p0, p1)); BF16x3 goes through B' in `expanded`.
void PackOperandB(const bf16_t* B, int64_t K, int64_t N, int64_t rs, int64_t cs, bf16_t* dst, int64_t p0, int64_t p1,
                  std::vector<bf16_t>*) {
  avx512::PackB(B, K, N, rs, cs, dst, p0, p1);
}
void PackOperandB(const split_t* B, int64_t K, int64_t N, int64_t rs, int64_t cs, bf16_t* dst, int64_t p0, int64_t p1,
                  std::vector<bf16_t>* expanded) {
  // Only the panels' columns are needed, but B' is cheap next to the product: expand it whole
  // once per call (callers pass all panels, or a per-thread expanded buffer).
  Grow(*expanded, static_cast<size_t>(3 * K * N));
  ExpandB(B, K, N, rs, cs, expanded->data());
  avx512::PackB(expanded->data(), 3 * K, N, N, 1, dst, p0, p1);
}

// The operand offsets and the BF16 A rows the fast paths read: per-batch offsets of A and B;
// BF16 rows with unit column stride read in place, anything else (other strides, BF16x3) gathered
// into A' [batch][M][K'] (avx512::SplitRow only on the AVX-512 path).
struct PreparedA {
  const bf16_t* A = nullptr;
  int64_t a_rs = 0;
  bool b_batched = false;
};

template <typename T>
PreparedA PrepareA(const MatMulArgs& a, const T* A, Scratch& s, int threads, bool avx512) {
  constexpr bool kSplit = std::is_same<T, split_t>::value;
  const int64_t batches = a.BatchCount();
  const int64_t M = a.M, K = a.K, Kp = ProductK(A, K);
  PreparedA out;
  Grow(s.a_offsets, batches);
  Grow(s.b_offsets, batches);
  out.b_batched = MatMulBatchOffsets(a, batches, s.a_offsets.data(), s.b_offsets.data());
  if (!kSplit && (a.a_cs == 1 || K <= 1)) {
    out.A = reinterpret_cast<const bf16_t*>(A);
    out.a_rs = a.a_rs;
    return out;
  }
  Grow(s.packed_a, static_cast<size_t>(batches * M * Kp));  // checked by CheckScratchSizes
  bf16_t* pa = s.packed_a.data();
  const int64_t* aoff = s.a_offsets.data();
  ParallelFor(batches * M, threads, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* src = A + aoff[r / M] + (r % M) * a.a_rs;
      bf16_t* dst = pa + r * Kp;
      if (kSplit && a.a_cs == 1 && avx512)
        avx512::SplitRow(reinterpret_cast<const split_t*>(src), K, dst, dst + K, dst + 2 * K);
      else ExpandARow(src, K, a.a_cs, dst);
    }
  });
  for (int64_t bi = 0; bi < batches; ++bi) s.a_offsets[bi] = bi * M * Kp;
  out.A = pa;
  out.a_rs = Kp;
  return out;
}

// Splits N into chunks when there are too few row units to keep every thread busy; returns the
// chunk width (a multiple of `tile_cols`) and sets *chunks.
int64_t NChunkCols(int64_t row_units, int64_t N, int64_t tile_cols, int threads, int64_t* chunks) {
  const int64_t col_tiles = (N + tile_cols - 1) / tile_cols;
  int64_t n = 1;
  if (row_units < 4 * threads && col_tiles > 1) n = std::min(col_tiles, (4 * threads + row_units - 1) / row_units);
  const int64_t cols = ((col_tiles + n - 1) / n) * tile_cols;
  *chunks = (N + cols - 1) / cols;
  return cols;
}

// Threads for a call of `flops`: about 2 MFLOP per thread at least.
int ThreadsFor(double flops, int threads) {
  return static_cast<int>(std::max<double>(1.0, std::min<double>(threads, flops / 2e6)));
}

template <typename T>
void MatMulAvx512(const MatMulArgs& a, const T* A, const T* B, T* C, int num_threads) {
  thread_local Scratch s;
  constexpr bool kSplit = std::is_same<T, split_t>::value;
  const int64_t batches = a.BatchCount();
  const int64_t M = a.M, N = a.N, K = a.K, Kp = ProductK(A, K);
  const int threads = std::max(1, num_threads);
  const PreparedA pa = PrepareA(a, A, s, threads, true);
  const bool b_batched = pa.b_batched;
  const bf16_t* Ause = pa.A;
  const int64_t a_rs = pa.a_rs;
  Grow(s.b_ptrs, batches);

  // B: packed into the vdpbf16ps layout (cached for constants).
  const int64_t panels = (N + avx512::kPanelCols - 1) / avx512::kPanelCols;
  const int64_t packed_elems = avx512::PackedBElems(Kp, N);
  const int64_t distinct = b_batched ? batches : 1;
  s.held.clear();
  if (a.b_is_constant) {
    for (int64_t bi = 0; bi < distinct; ++bi) {
      const T* bsrc = B + s.b_offsets[bi];
      auto data = CachedPack<bf16_t>(bsrc, nullptr, Kp, N, a.b_rs, a.b_cs, packed_elems, [&](bf16_t* dst) {
        if (kSplit) {
          PackOperandB(bsrc, K, N, a.b_rs, a.b_cs, dst, 0, panels, &s.expanded_b);
        } else {
          ParallelFor(panels, threads, [&](int64_t p0, int64_t p1) {
            PackOperandB(bsrc, K, N, a.b_rs, a.b_cs, dst, p0, p1, nullptr);
          });
        }
      });
      s.b_ptrs[bi] = data->data();
      s.held.push_back(std::move(data));
    }
  } else {
    Grow(s.packed_b, static_cast<size_t>(distinct * packed_elems));
    bf16_t* pb = s.packed_b.data();
    const int64_t* boff = s.b_offsets.data();
    if (kSplit) {
      // One batch per task: each expands its B' into its own thread's scratch, then packs it.
      ParallelFor(distinct, threads, [&](int64_t b0, int64_t b1) {
        thread_local std::vector<bf16_t> expanded;
        for (int64_t bi = b0; bi < b1; ++bi)
          PackOperandB(B + boff[bi], K, N, a.b_rs, a.b_cs, pb + bi * packed_elems, 0, panels, &expanded);
      });
    } else {
      ParallelFor(distinct * panels, threads, [&](int64_t q0, int64_t q1) {
        for (int64_t q = q0; q < q1;) {
          const int64_t bi = q / panels, p0 = q % panels, p1 = std::min(panels, p0 + (q1 - q));
          PackOperandB(B + boff[bi], K, N, a.b_rs, a.b_cs, pb + bi * packed_elems, p0, p1, nullptr);
          q += p1 - p0;
        }
      });
    }
    for (int64_t bi = 0; bi < distinct; ++bi) s.b_ptrs[bi] = pb + bi * packed_elems;
  }
  if (!b_batched)
    for (int64_t bi = 1; bi < batches; ++bi) s.b_ptrs[bi] = s.b_ptrs[0];

  avx512::MatMulPlan p;
  p.args = &a;
  p.K = Kp;
  p.A = Ause;
  p.a_rs = a_rs;
  p.a_batch_offsets = s.a_offsets.data();
  p.C = C;
  p.split = kSplit;
  p.packed_b = s.b_ptrs.data();
  p.m_units = (M + avx512::kMatMulMR - 1) / avx512::kMatMulMR;
  const int64_t row_units = batches * p.m_units;
  p.n_chunk_cols = NChunkCols(row_units, N, 32, threads, &p.n_chunks);
  p.units = row_units * p.n_chunks;
  const int use = ThreadsFor(2.0 * batches * M * N * std::max<int64_t>(Kp, 1), threads);
  ParallelFor(p.units, use, [&](int64_t u0, int64_t u1) { avx512::MatMulUnits(p, u0, u1); });
  s.held.clear();
}

// The AVX2 path (emulated_avx2.cc): B packed to FP32 panels (cached for constants), units of
// kMatMulMC rows with a per-thread scratch for the FP32 A block and the parked accumulators.
template <typename T>
void MatMulAvx2(const MatMulArgs& a, const T* A, const T* B, T* C, int num_threads) {
  thread_local Scratch s;
  constexpr bool kSplit = std::is_same<T, split_t>::value;
  const int64_t batches = a.BatchCount();
  const int64_t M = a.M, N = a.N, K = a.K, Kp = ProductK(A, K);
  const int threads = std::max(1, num_threads);
  const PreparedA pa = PrepareA(a, A, s, threads, false);
  const int64_t panels = (N + avx2::kPanelCols - 1) / avx2::kPanelCols;
  const int64_t packed_floats = avx2::PackedBFloats(Kp, N);
  const int64_t packed_with_range = packed_floats + avx2::kRangeSlotFloats;
  const int64_t distinct = pa.b_batched ? batches : 1;
  // B (or B' for BF16x3, expanded first) into FP32 panels [p0, p1) of dst.
  auto pack = [&](const T* bsrc, float* dst, int64_t p0, int64_t p1, std::vector<bf16_t>* expanded) {
    if constexpr (kSplit) {
      Grow(*expanded, static_cast<size_t>(Kp * N));
      ExpandB(bsrc, K, N, a.b_rs, a.b_cs, expanded->data(), false);
      avx2::PackB(expanded->data(), Kp, N, N, 1, dst, p0, p1);
    } else {
      avx2::PackB(bsrc, K, N, a.b_rs, a.b_cs, dst, p0, p1);
    }
  };
  Grow(s.b_ptrs_f32, batches);
  s.held_f32.clear();
  if (a.b_is_constant) {
    for (int64_t bi = 0; bi < distinct; ++bi) {
      const T* bsrc = B + s.b_offsets[bi];
      auto data = CachedPack<float>(bsrc, nullptr, Kp, N, a.b_rs, a.b_cs, packed_with_range, [&](float* dst) {
        if (kSplit) pack(bsrc, dst, 0, panels, &s.expanded_b);
        else ParallelFor(panels, threads, [&](int64_t p0, int64_t p1) { pack(bsrc, dst, p0, p1, nullptr); });
        avx2::StoreRange(dst + packed_floats, avx2::RangeOf(dst, packed_floats));
      });
      s.b_ptrs_f32[bi] = data->data();
      s.held_f32.push_back(std::move(data));
    }
  } else {
    Grow(s.packed_b_f32, static_cast<size_t>(distinct * packed_with_range));
    float* pb = s.packed_b_f32.data();
    const int64_t* boff = s.b_offsets.data();
    ParallelFor(distinct, threads, [&](int64_t b0, int64_t b1) {
      thread_local std::vector<bf16_t> expanded;
      for (int64_t bi = b0; bi < b1; ++bi) {
        float* dst = pb + bi * packed_with_range;
        pack(B + boff[bi], dst, 0, panels, &expanded);
        avx2::StoreRange(dst + packed_floats, avx2::RangeOf(dst, packed_floats));
      }
    });
    for (int64_t bi = 0; bi < distinct; ++bi) s.b_ptrs_f32[bi] = pb + bi * packed_with_range;
  }
  if (!pa.b_batched)
    for (int64_t bi = 1; bi < batches; ++bi) s.b_ptrs_f32[bi] = s.b_ptrs_f32[0];

  avx2::MatMulPlan p;
  p.args = &a;
  p.K = Kp;
  p.A = pa.A;
  p.a_rs = pa.a_rs;
  p.a_batch_offsets = s.a_offsets.data();
  p.C = C;
  p.split = kSplit;
  p.packed_b = s.b_ptrs_f32.data();
  p.packed_b_floats = packed_floats;
  p.m_blocks = (M + avx2::kMatMulMC - 1) / avx2::kMatMulMC;
  p.n_chunk_cols = NChunkCols(batches * p.m_blocks, N, avx2::kPanelCols, threads, &p.n_chunks);
  p.units = batches * p.m_blocks * p.n_chunks;
  const int use = ThreadsFor(2.0 * batches * M * N * std::max<int64_t>(Kp, 1), threads);
  const size_t scratch = static_cast<size_t>(avx2::MatMulScratchFloats(p.n_chunk_cols));
  ParallelFor(p.units, use, [&](int64_t u0, int64_t u1) {
    thread_local std::vector<float> unit_scratch;
    Grow(unit_scratch, scratch);
    avx2::MatMulUnits(p, unit_scratch.data(), u0, u1);
  });
  s.held_f32.clear();
}

// The scratch sizes a call may need, from the model's dims: refused (std::length_error, on the
// calling thread) when they overflow int64, before any path runs or allocates.
template <typename T>
void CheckScratchSizes(const MatMulArgs& a, const T* A) {
  const int64_t batches = a.BatchCount();
  const int64_t Kp = CheckedMul(ProductK(A, 1), a.K, "MatMul K");
  CheckedMul(CheckedMul(batches, a.M, "MatMul A"), Kp, "MatMul A");                       // gathered A
  CheckedMul(CheckedMul((a.N + 15) / 16, (Kp + 1) / 2 + 1, "MatMul B"), 32 * batches, "MatMul B");  // packed B
  CheckedMul(Kp, a.N, "MatMul B'");                                                       // BF16x3 B'
}

template <typename T>
void Dispatch(const MatMulArgs& a, const T* A, const T* B, T* C, int num_threads) {
  if (a.M <= 0 || a.N <= 0 || a.BatchCount() <= 0) return;
  CheckScratchSizes(a, A);
  if (a.K <= 0) return portable::MatMul(a, A, B, C, num_threads);
  if (UseAvx512Bf16()) return MatMulAvx512(a, A, B, C, num_threads);
  if (UseAvx2Fma()) return MatMulAvx2(a, A, B, C, num_threads);
  portable::MatMul(a, A, B, C, num_threads);
}

}  // namespace

void MatMul(const MatMulArgs& a, const bf16_t* A, const bf16_t* B, bf16_t* C, int num_threads) {
  Dispatch(a, A, B, C, num_threads);
}
void MatMul(const MatMulArgs& a, const split_t* A, const split_t* B, split_t* C, int num_threads) {
  Dispatch(a, A, B, C, num_threads);
}

void ReleasePackedWeights(const void* begin, size_t bytes) {
  PackedWeightCache<bf16_t>::Get().Release(begin, bytes);
  PackedWeightCache<float>::Get().Release(begin, bytes);
  PackedWeightCache<int16_t>::Get().Release(begin, bytes);  // INT8 weights (matmul_int8)
  PackedWeightCache<int8_t>::Get().Release(begin, bytes);   // INT8 weights, vpdpbusd layout
}

}  // namespace phoenix::kernels
