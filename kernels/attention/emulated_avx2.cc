// Fused attention on AVX2 (CPUs without AVX512_BF16), BF16: bit-identical to portable::Attention.
//
// Per unit (a block of kBlockRows queries of one head), with Q^T, K and V packed to FP32 once per
// call by the dispatcher:
//   1. S^T [N][R] = scale * K Q^T: 6-key x 16-query register tiles (matmul/tile_avx2.h) over D,
//      each score the reference's sequential FP32 sum over d (products of BF16 values are exact),
//      times scale;
//   2. down each column (one query per lane, 8 at a time): the row max (vmaxps(s, max) is the
//      reference's `s > max ? s : max`, NaN skipped) and the NaN flag; e = KernelExp(s - max)
//      (common/avx2_math.h ExpV); the FP32 sum in key order; P = BF16(e * (1 / sum)), or NaN for a
//      row with a NaN score, kept as FP32 values [N][R] for step 3;
//   3. O = P V: 6-query x 16-column tiles over all N in key order (one accumulator per output,
//      as the reference), ONE rounding to BF16 (matmul/epilogue_avx2.h), strided store.
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

void Unit(const AttentionPlan& pl, float* S, float* tile, int64_t bi, int64_t m0) {
  const AttentionArgs& a = *pl.args;
  const int64_t N = a.N, D = a.D, Dv = a.Dv;
  const int64_t rows = Min64(R, a.M - m0);
  const float* pq = pl.packed_q[bi] + (m0 / 16) * D * 16;  // Q^T panels of this block's queries
  const float* pk = pl.packed_k[bi];
  const __m256 scale = _mm256_set1_ps(a.scale);

  // 1. S^T = scale * K Q^T.
  for (int64_t n0 = 0; n0 < N; n0 += kKeyPanel) {
    const float* kpanel = pk + (n0 / kKeyPanel) * D * kKeyPanel;
    const int keys = static_cast<int>(Min64(kKeyPanel, N - n0));
    for (int qp = 0; qp < R / 16 && qp * 16 < rows; ++qp) {
      TileAccumulate(kpanel, kKeyPanel, pq + qp * D * 16, D, true, tile);
      for (int r = 0; r < keys; ++r)
        for (int v = 0; v < 2; ++v)
          _mm256_storeu_ps(S + (n0 + r) * R + qp * 16 + 8 * v, _mm256_mul_ps(scale, _mm256_loadu_ps(tile + r * 16 + 8 * v)));
    }
  }

  // 2. Softmax down the columns; P (BF16 values) overwrites S.
  for (int64_t g = 0; g * 8 < rows; ++g) {
    float* col = S + 8 * g;
    __m256 mx = _mm256_set1_ps(-INFINITY), nan = _mm256_setzero_ps();
    for (int64_t n = 0; n < N; ++n) {
      const __m256 s = _mm256_loadu_ps(col + n * R);
      nan = _mm256_or_ps(nan, _mm256_cmp_ps(s, s, _CMP_UNORD_Q));
      mx = _mm256_max_ps(s, mx);  // s > mx ? s : mx
    }
    __m256 sum = _mm256_setzero_ps();
    for (int64_t n = 0; n < N; ++n) {
      const __m256 e = ExpV(_mm256_sub_ps(_mm256_loadu_ps(col + n * R), mx));
      sum = _mm256_add_ps(sum, e);  // key order, as the reference
      _mm256_storeu_ps(col + n * R, e);
    }
    const __m256 inv = _mm256_div_ps(_mm256_set1_ps(1.0f), sum);
    for (int64_t n = 0; n < N; ++n) {
      const __m256 p = _mm256_blendv_ps(_mm256_mul_ps(_mm256_loadu_ps(col + n * R), inv), _mm256_set1_ps(NAN), nan);
      _mm256_storeu_ps(col + n * R, RoundBf16V(p));
    }
  }

  // 3. O = P V, one rounding.
  EpilogueCtx e;
  e.col_scale = nullptr;
  e.alpha = 1.0f;
  e.bias = nullptr;
  e.gelu = 0;
  e.r = nullptr;
  e.r_rs = e.r_cs = 0;
  e.out_quant = nullptr;
  e.c_rs = a.o_rs;
  e.c_cs = a.o_cs;
  bf16_t* Ob = pl.O + pl.o_offsets[bi] + m0 * a.o_rs;
  const float* pv = pl.packed_v[bi];
  for (int64_t r0 = 0; r0 < rows; r0 += kTileRows) {
    for (int64_t j0 = 0; j0 < Dv; j0 += 16) {
      TileAccumulate(S + r0, R, pv + (j0 / 16) * N * 16, N, true, tile);
      e.rows = static_cast<int>(Min64(kTileRows, rows - r0));
      e.cols = static_cast<int>(Min64(16, Dv - j0));
      e.c = Ob + r0 * a.o_rs + j0 * a.o_cs;
      StoreTile<bf16_t>(e, tile);
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
  float* S = scratch + 6 * 16;
  for (int64_t u = u0; u < u1; ++u) Unit(p, S, tile, u / p.blocks, (u % p.blocks) * R);
}

}  // namespace phoenix::kernels::avx2
