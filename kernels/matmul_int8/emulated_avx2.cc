// INT8 MatMul on AVX2: bit-identical to portable::MatMulInt8 (README.md, "Numerics").
//
// Per unit (kInt8MC rows x one N chunk of one batch) and K block of kInt8KC: A is quantized
// (README step 1, 8 lanes: FP32 divide, MLAS-order clamp, round half to even) into int16 pairs
// (qa - za) [row panel][k2][4][2]; B comes packed as int16 pairs (qb - zb) [panel][k2][16][2].
// The 4 x 16 tile accumulates vpmaddwd(a pair, b pairs) with vpaddd: every product is at most
// 255^2 and every pair sum below 2^17, so each step is exact, and the int32 accumulators hold the
// exact integer sum (K <= 33025), parked in memory between K blocks. The epilogue converts to
// FP32 (nearest even) and runs README steps 4-7 (matmul/epilogue_avx2.h).
#pragma GCC optimize("fp-contract=off")  // before any include: see common/avx2_math.h
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstring>

#include "common/avx2_math.h"
#include "common/batch_offsets.h"
#include "matmul/epilogue_avx2.h"
#include "matmul_int8/matmul_int8_internal.h"

namespace phoenix::kernels::avx2 {
namespace {

inline int64_t Min64(int64_t a, int64_t b) { return a < b ? a : b; }
constexpr int MR = kInt8MR, NR = kInt8PanelCols;
static_assert(NR == kEpilogueCols, "one epilogue tile width");

// README step 1 on 8 BF16 values: round(clamp(x / scale, lo, hi)) = qa - za, as int32.
inline __m256i QuantizeMinusZp(__m256 x, __m256 scale, __m256 lo, __m256 hi) {
  __m256 v = _mm256_div_ps(x, scale);
  v = _mm256_max_ps(v, lo);  // v > lo ? v : lo (NaN -> lo)
  v = _mm256_min_ps(v, hi);
  return _mm256_cvtps_epi32(v);  // nearest even (default MXCSR)
}

// Rows [0, rows) x k in [k0, k0 + kc) of A as int16 pairs, panel i at dst + i * K2 * MR (int32
// words: one pair each), word (k2, r) at [k2 * MR + r]; rows past `rows` and k past kc are 0.
void QuantizeA(const bf16_t* A, int64_t lda, int64_t rows, int64_t k0, int64_t kc, const QuantParams& q, int32_t* dst) {
  const int64_t K2 = (kc + 1) / 2, panels = (rows + MR - 1) / MR;
  const __m256 scale = _mm256_set1_ps(q.scale);
  const __m256 lo = _mm256_set1_ps(static_cast<float>(QuantMin(q) - q.zero_point));
  const __m256 hi = _mm256_set1_ps(static_cast<float>(QuantMax(q) - q.zero_point));
  alignas(32) int32_t vals[16];
  for (int64_t i = 0; i < panels; ++i) {
    int32_t* out = dst + i * K2 * MR;
    for (int r = 0; r < MR; ++r) {
      const int64_t row = i * MR + r;
      if (row >= rows) {
        for (int64_t k2 = 0; k2 < K2; ++k2) out[k2 * MR + r] = 0;
        continue;
      }
      const bf16_t* src = A + row * lda + k0;
      for (int64_t k = 0; k < kc; k += 16) {
        const int n = static_cast<int>(Min64(16, kc - k));
        const __m256 x0 = n >= 8 ? Load8(src + k) : LoadN(src + k, n);
        const __m256 x1 = n >= 16 ? Load8(src + k + 8) : n > 8 ? LoadN(src + k + 8, n - 8) : _mm256_setzero_ps();
        _mm256_store_si256(reinterpret_cast<__m256i*>(vals), QuantizeMinusZp(x0, scale, lo, hi));
        _mm256_store_si256(reinterpret_cast<__m256i*>(vals + 8), QuantizeMinusZp(x1, scale, lo, hi));
        for (int j = n; j < 16; ++j) vals[j] = 0;  // past kc (a zero BF16 may not quantize to za)
        for (int j = 0; j < 16; j += 2) {
          const uint32_t pair = static_cast<uint16_t>(vals[j]) | static_cast<uint32_t>(static_cast<uint16_t>(vals[j + 1])) << 16;
          std::memcpy(&out[((k + j) / 2) * MR + r], &pair, sizeof pair);
          if (k + j + 2 >= kc) break;
        }
      }
    }
  }
}

// acc (parked, or 0 when first) += A panel x B panel over K2 pairs.
__attribute__((noinline)) void Tile(const int32_t* a, const int16_t* b, int64_t K2, bool first, int32_t* park) {
  __m256i acc[MR][2];
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < 2; ++v)
      acc[r][v] = first ? _mm256_setzero_si256()
                        : _mm256_loadu_si256(reinterpret_cast<const __m256i*>(park + r * NR + 8 * v));
  for (int64_t k2 = 0; k2 < K2; ++k2) {
    const __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + k2 * 2 * NR));
    const __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + k2 * 2 * NR + 16));
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
      // (a float broadcast of the pair's 32 bits: GCC then keeps the 6-row loop in registers)
      const __m256i av = _mm256_castps_si256(_mm256_broadcast_ss(reinterpret_cast<const float*>(a + k2 * MR + r)));
      acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(av, b0));
      acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(av, b1));
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < 2; ++v) _mm256_storeu_si256(reinterpret_cast<__m256i*>(park + r * NR + 8 * v), acc[r][v]);
}

}  // namespace

void Int8Units(const Int8Plan& p, int32_t* scratch, int64_t u0, int64_t u1) {
  const MatMulArgs& a = *p.args;
  const int64_t per_batch = p.n_chunks * p.m_blocks;
  int32_t* apack = scratch;
  int32_t* park = scratch + int64_t{kInt8MC + kInt8MR} * (kInt8KC / 2 + 1);
  OutQuant oq;
  if (p.quantize_output) {
    oq.scale = p.out.scale;
    oq.lo = static_cast<float>(QuantMin(p.out) - p.out.zero_point);
    oq.hi = static_cast<float>(QuantMax(p.out) - p.out.zero_point);
  }
  EpilogueCtx e;
  e.alpha = a.alpha;
  e.gelu = a.epilogue == Epilogue::kGeluErf ? 1 : a.epilogue == Epilogue::kGeluTanh ? 2 : 0;
  e.r_rs = a.r_rs;
  e.r_cs = a.r_cs;
  e.c_rs = a.c_rs;
  e.c_cs = a.c_cs;
  e.out_quant = p.quantize_output ? &oq : nullptr;
  const int64_t K2_total = (a.K + 1) / 2;
  for (int64_t u = u0; u < u1; ++u) {
    const int64_t bidx = u / per_batch, rem = u % per_batch;
    const int64_t nc = rem / p.m_blocks, mb = rem % p.m_blocks;
    const int64_t* strides[2] = {a.c_batch_strides, a.r_batch_strides};
    int64_t off[2];
    BatchOffsets(bidx, a.batch_rank, a.batch_shape, 2, strides, off);
    const bf16_t* Ab = p.A + p.a_batch_offsets[bidx];
    const int16_t* Bp = p.packed_b[bidx];
    const int64_t n_begin = nc * p.n_chunk_cols, n_end = Min64(a.N, n_begin + p.n_chunk_cols);
    const int64_t m_begin = mb * kInt8MC, rows = Min64(kInt8MC, a.M - m_begin);
    const int64_t row_panels = (rows + MR - 1) / MR;
    for (int64_t k0 = 0; k0 < a.K; k0 += kInt8KC) {
      const int64_t kc = Min64(kInt8KC, a.K - k0), K2 = (kc + 1) / 2;
      const bool first = k0 == 0, last = k0 + kc >= a.K;
      QuantizeA(Ab + m_begin * p.a_rs, p.a_rs, rows, k0, kc, p.a_quant, apack);
      for (int64_t n = n_begin; n < n_end; n += NR) {
        const int16_t* bpanel = Bp + (n / NR) * K2_total * 2 * NR + (k0 / 2) * 2 * NR;
        for (int64_t i = 0; i < row_panels; ++i) {
          int32_t* tile_park = park + ((n - n_begin) / NR * row_panels + i) * MR * NR;
          Tile(apack + i * K2 * MR, bpanel, K2, first, tile_park);
          if (!last) continue;
          alignas(32) float acc[MR * NR];
          for (int j = 0; j < MR * NR; j += 8)
            _mm256_store_ps(acc + j, _mm256_cvtepi32_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(tile_park + j))));
          const int64_t m = m_begin + i * MR;
          e.rows = static_cast<int>(Min64(MR, m_begin + rows - m));
          e.cols = static_cast<int>(Min64(NR, n_end - n));
          e.col_scale = p.col_scale + n;
          e.bias = a.bias ? a.bias + n : nullptr;
          e.r = a.residual ? static_cast<const bf16_t*>(a.residual) + off[1] + m * a.r_rs + n * a.r_cs : nullptr;
          e.c = p.C + off[0] + m * a.c_rs + n * a.c_cs;
          StoreTile<bf16_t>(e, acc);
        }
      }
    }
  }
}

}  // namespace phoenix::kernels::avx2
