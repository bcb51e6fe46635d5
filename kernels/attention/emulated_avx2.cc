// Fused attention on AVX2 (CPUs without AVX512_BF16), BF16: bit-identical to portable::Attention.
//
// Per unit (a block of kBlockRows queries of one head), with Q^T, K and V packed to FP32 once per
// call by the dispatcher:
//   1. S^T [N][R] = scale * K Q^T: 6-key x 16-query register tiles (matmul/tile_avx2.h) over D,
//      each score the reference's sequential FP32 sum over d, times scale; per query the
//      running max (vmaxps(s, max) is the reference's `s > max ? s : max`, NaN skipped) and the
//      NaN flag;
//   2. down each column (one query per lane, 8 at a time): e = KernelExp(s - max)
//      (common/avx2_math.h ExpV); the FP32 sum in key order; P = BF16(e * (1 / sum)), or NaN for a
//      row with a NaN score, kept as FP32 values [N][R] for step 3;
//   3. O = P V as O^T = V^T P^T: 6-dim x 16-query tiles (P read in place from S), each output
//      the reference's sum in key order, over blocks of kValueKeys keys with the accumulators
//      parked in FP32 between blocks (exact), ONE rounding to BF16 (matmul/epilogue_avx2.h),
//      strided store.
// Products of BF16 values are exact in FP32 unless they overflow or leave the normal range: the
// tiles take the FMA form when the operands' ranges rule that out (ProductsExact), else multiply
// then add, so the bits are the reference's either way.
#pragma GCC optimize("fp-contract=off")  // before any include: see common/avx2_math.h
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "attention/attention_internal.h"
#include "common/avx2_math.h"
#include "matmul/epilogue_avx2.h"
#include "matmul/tile_avx2.h"

namespace phoenix::kernels::avx2 {
namespace {

inline int64_t Min64(int64_t a, int64_t b) { return a < b ? a : b; }
constexpr int R = kBlockRows;
static_assert(kKeyPanel == kTileRows && kTileCols == 16 && R % 16 == 0 && R % kTileRows == 0, "tile shapes");

void Unit(const AttentionPlan& pl, float* S, float* tile, float* park, int64_t bi, int64_t m0) {
  const AttentionArgs& a = *pl.args;
  const int64_t N = a.N, D = a.D, Dv = a.Dv;
  const int64_t rows = Min64(R, a.M - m0);
  const float* pq = pl.packed_q[bi] + (m0 / 16) * D * 16;  // Q^T panels of this block's queries
  const float* pk = pl.packed_k[bi];
  const __m256 scale = _mm256_set1_ps(a.scale);
  const bool qk_fused = ProductsExact(pl.q_range[bi], pl.k_range[bi]);

  // 1. S^T = scale * K Q^T, with each query's running max (vmaxps(s, max) is the reference's
  // `s > max ? s : max`, NaN skipped, keys in order) and NaN flag, 8 queries per vector.
  constexpr int kGroups = R / 8;
  __m256 mxs[kGroups], nans[kGroups];
  for (int g = 0; g < kGroups; ++g) mxs[g] = _mm256_set1_ps(-INFINITY), nans[g] = _mm256_setzero_ps();
  for (int64_t n0 = 0; n0 < N; n0 += kKeyPanel) {
    const float* kpanel = pk + (n0 / kKeyPanel) * D * kKeyPanel;
    const int keys = static_cast<int>(Min64(kKeyPanel, N - n0));
    for (int qp = 0; qp < R / 16 && qp * 16 < rows; ++qp) {
      TileAccumulate(qk_fused, kpanel, kKeyPanel, pq + qp * D * 16, 16, D, true, tile);
      for (int v = 0; v < 2; ++v) {
        __m256 mx = mxs[2 * qp + v], nan = nans[2 * qp + v];
        for (int r = 0; r < keys; ++r) {
          const __m256 s = _mm256_mul_ps(scale, _mm256_loadu_ps(tile + r * 16 + 8 * v));
          _mm256_storeu_ps(S + (n0 + r) * R + qp * 16 + 8 * v, s);
          nan = _mm256_or_ps(nan, _mm256_cmp_ps(s, s, _CMP_UNORD_Q));
          mx = _mm256_max_ps(s, mx);
        }
        mxs[2 * qp + v] = mx, nans[2 * qp + v] = nan;
      }
    }
  }

  // 2. Softmax down the columns; P (BF16 values) overwrites S.
  RangeAcc p_range;
  for (int64_t g = 0; g * 8 < rows; ++g) {
    float* col = S + 8 * g;
    const __m256 mx = mxs[g], nan = nans[g];
    __m256 sum = _mm256_setzero_ps();
    for (int64_t n = 0; n < N; ++n) {
      const __m256 e = ExpV(_mm256_sub_ps(_mm256_loadu_ps(col + n * R), mx));
      sum = _mm256_add_ps(sum, e);  // key order, as the reference
      _mm256_storeu_ps(col + n * R, e);
    }
    const __m256 inv = _mm256_div_ps(_mm256_set1_ps(1.0f), sum);
    for (int64_t n = 0; n < N; ++n) {
      const __m256 p = _mm256_blendv_ps(_mm256_mul_ps(_mm256_loadu_ps(col + n * R), inv), _mm256_set1_ps(NAN), nan);
      const __m256 pb = RoundBf16V(p);
      p_range.Add(pb);
      _mm256_storeu_ps(col + n * R, pb);
    }
  }
  const bool pv_fused = ProductsExact(p_range.Finish(), pl.v_range[bi]);

  // 3. O = P V, computed as O^T = V^T P^T so that P is read in place: a tile is 6 value dims
  // (a V^T panel, a_step 6) x 16 queries (one cache line of a row of S, b_step R); per output
  // the same sum over keys in order. Key blocks of kValueKeys keep the block's P lines in L1
  // while the dims' tiles pass them; the tiles park their accumulators between blocks.
  EpilogueCtx e;
  e.col_scale = nullptr;
  e.alpha = 1.0f;
  e.bias = nullptr;
  e.gelu = 0;
  e.r = nullptr;
  e.r_rs = e.r_cs = 0;
  e.out_quant = nullptr;
  e.c_rs = a.o_cs;  // a tile row is a value dim
  e.c_cs = a.o_rs;  // a tile column is a query
  bf16_t* Ob = pl.O + pl.o_offsets[bi] + m0 * a.o_rs;
  const float* pvt = pl.packed_v[bi];
  for (int64_t q0 = 0; q0 < rows; q0 += 16) {
    for (int64_t k0 = 0; k0 < N; k0 += kValueKeys) {
      const int64_t kc = Min64(kValueKeys, N - k0);
      const bool first = k0 == 0, last = k0 + kc >= N;
      for (int64_t d0 = 0; d0 < Dv; d0 += kKeyPanel) {
        float* acc = park + d0 / kKeyPanel * (kTileRows * kTileCols);
        TileAccumulate(pv_fused, pvt + d0 * N + k0 * kKeyPanel, kKeyPanel, S + k0 * R + q0, R, kc, first, acc);
        if (!last) continue;
        e.rows = static_cast<int>(Min64(kKeyPanel, Dv - d0));
        e.cols = static_cast<int>(Min64(16, rows - q0));
        e.c = Ob + q0 * a.o_rs + d0 * a.o_cs;
        StoreTile<bf16_t>(e, acc);
      }
    }
  }
}

}  // namespace

void PackKeyPanels(const bf16_t* K, int64_t N, int64_t D, int64_t rs, int64_t cs, float* dst) {
  for (int64_t n0 = 0; n0 < N; n0 += kKeyPanel) {
    float* out = dst + (n0 / kKeyPanel) * D * kKeyPanel;
    for (int r = 0; r < kKeyPanel; ++r) {
      const int64_t n = n0 + r;
      for (int64_t d = 0; d < D; ++d) {
        const uint32_t bits = n < N ? static_cast<uint32_t>(K[n * rs + d * cs]) << 16 : 0u;
        std::memcpy(out + d * kKeyPanel + r, &bits, sizeof(float));
      }
    }
  }
}

void AttentionUnits(const AttentionPlan& p, float* scratch, int64_t u0, int64_t u1) {
  float* tile = scratch;
  float* park = scratch + kTileRows * kTileCols;  // AttentionParkFloats(Dv)
  float* S = park + AttentionParkFloats(p.args->Dv);
  for (int64_t u = u0; u < u1; ++u) Unit(p, S, tile, park, u / p.blocks, (u % p.blocks) * R);
}

}  // namespace phoenix::kernels::avx2
