// MatMul on AVX-512 with AVX512_BF16 (vdpbf16ps): the emulated device's fast path.
//
// Numerics (the contract of matmul.h / README.md): BF16 products accumulated in FP32 over ALL of
// K in registers (no intermediate rounding, no K blocking), then the epilogue in FP32 (alpha,
// bias, GELU with the same steps as GeluF32, residual) and ONE round-to-nearest-even to BF16,
// bit-identical to F32ToBf16 (denormals kept, NaN quietened); for BF16x3 the dispatcher hands
// over A' and B' of K' = 3K (matmul.h) and the store rounds to hi + lo (RoundSplitV).
// Summation order (differs from the sequential reference, same accuracy class): each output
// keeps one FP32 accumulator; for k2 = 0, 1, ... vdpbf16ps adds the pair of products
// (A[m,2k2] * B[2k2,n], A[m,2k2+1] * B[2k2+1,n]) to it (each product of two BF16 is exact in
// FP32). vdpbf16ps treats BF16 denormal inputs as zero and flushes denormal results to zero
// (no MXCSR dependence); AIE2 has no denormals either. An odd K ends with the pair (A[m,K-1], 0)
// x (B[K-1,n], 0). Zero padding (odd K, N or M tails) multiplies zeros by zeros only for the
// outputs that are stored, so Inf/NaN inputs propagate exactly as in the reference
// (no multiplicand is ever skipped).
#pragma GCC optimize("fp-contract=off")  // before any include: see common/avx512_math.h
// GCC 12 warns falsely about _mm512_undefined_* inside intrinsics under an optimize pragma.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstring>

#include "common/batch_offsets.h"
#include "common/avx512_math.h"
#include "common/checked_size.h"
#include "common/kernel_isa.h"
#include "common/tile_select.h"

namespace phoenix::kernels::avx512 {
namespace {

inline int64_t Min64(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t Max64(int64_t a, int64_t b) { return a > b ? a : b; }

inline int32_t LoadPair(const bf16_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Everything a micro-tile needs besides its accumulators.
struct TileCtx {
  const bf16_t* a;      // A row m0, column 0
  int64_t lda;          // row stride of A in elements (column stride is 1)
  int64_t K;
  const bf16_t* b;      // packed panel of columns n0 .. n0+15 (the next panel follows at pstride)
  int64_t pstride;      // elements between consecutive packed panels
  // epilogue
  float alpha;
  const float* bias;    // nullptr or bias + n0
  int gelu;             // 0 none, 1 erf, 2 tanh
  const void* r;        // residual at (m0, n0) or nullptr (element type of C)
  int64_t r_rs, r_cs;
  void* c;              // C at (m0, n0): bf16_t, or split_t when `split`
  bool split;
  int64_t c_rs, c_cs;
  int64_t ncols;        // valid columns of this tile (1 .. 16*NV)
};

// Epilogue of one micro-tile from its FP32 accumulators (acc[r][0..31], row stride 32):
// v = acc * alpha (+ bias) (GELU) (+ residual), one rounding to T (BF16 or BF16x3), store.
template <typename T>
void StoreTileAs(const TileCtx& t, const float* acc, int mr) {
  const __m512 alpha = _mm512_set1_ps(t.alpha);
  const T* res = static_cast<const T*>(t.r);
  T* out = static_cast<T*>(t.c);
  for (int v = 0; v < 2; ++v) {
    const int64_t cnt = t.ncols - 16 * v;
    if (cnt <= 0) break;
    const __mmask16 mask = TailMask(cnt);
    const int nlanes = static_cast<int>(Min64(cnt, 16));
    const __m512 bias = t.bias ? _mm512_maskz_loadu_ps(mask, t.bias + 16 * v) : _mm512_setzero_ps();
    for (int r = 0; r < mr; ++r) {
      __m512 x = _mm512_mul_ps(_mm512_load_ps(acc + 32 * r + 16 * v), alpha);
      if (t.bias) x = _mm512_add_ps(x, bias);
      if (t.gelu) x = GeluV(x, t.gelu == 2);
      if (res) {
        const T* rp = res + r * t.r_rs + 16 * v * t.r_cs;
        if (t.r_cs == 1) {
          x = _mm512_add_ps(x, MaskLoad16(rp, mask));
        } else {
          T tmp[16] = {};
          for (int j = 0; j < nlanes; ++j) tmp[j] = rp[j * t.r_cs];
          x = _mm512_add_ps(x, Load16(tmp));
        }
      }
      T* cp = out + r * t.c_rs + 16 * v * t.c_cs;
      if (t.c_cs == 1) {
        MaskStore16(cp, mask, x);
      } else {
        T tmp[16];
        Store16(tmp, x);
        for (int j = 0; j < nlanes; ++j) cp[j * t.c_cs] = tmp[j];
      }
    }
  }
}

inline void StoreTile(const TileCtx& t, const float* acc, int mr) {
  if (t.split) StoreTileAs<split_t>(t, acc, mr);
  else StoreTileAs<bf16_t>(t, acc, mr);
}

// The K loop of one MR x (16 * NV) micro-tile: accumulators stay in zmm registers for all of K.
template <int MR, int NV>
void Tile(const TileCtx& t) {
  __m512 acc[MR][NV];
#pragma GCC unroll 12
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_ps();
  const int64_t full = t.K >> 1;
  const bf16_t* b0 = t.b;
  const bf16_t* b1 = t.b + t.pstride;
  const bf16_t* a = t.a;
  const int64_t lda = t.lda;
  for (int64_t k2 = 0; k2 < full; ++k2) {
    __m512bh bv[NV];
    bv[0] = (__m512bh)_mm512_loadu_si512(b0 + 32 * k2);
    if (NV > 1) bv[NV - 1] = (__m512bh)_mm512_loadu_si512(b1 + 32 * k2);
#pragma GCC unroll 12
    for (int r = 0; r < MR; ++r) {
      const __m512bh av = (__m512bh)_mm512_set1_epi32(LoadPair(a + r * lda + 2 * k2));
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], av, bv[v]);
    }
  }
  if (t.K & 1) {  // last, half pair: (A[m, K-1], 0) . (B[K-1, n], 0)
    __m512bh bv[NV];
    bv[0] = (__m512bh)_mm512_loadu_si512(b0 + 32 * full);
    if (NV > 1) bv[NV - 1] = (__m512bh)_mm512_loadu_si512(b1 + 32 * full);
#pragma GCC unroll 12
    for (int r = 0; r < MR; ++r) {
      const __m512bh av = (__m512bh)_mm512_set1_epi32(static_cast<int32_t>(a[r * lda + t.K - 1]));
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], av, bv[v]);
    }
  }
  alignas(64) float out[MR * 32];
#pragma GCC unroll 12
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) _mm512_store_ps(out + 32 * r + 16 * v, acc[r][v]);
  StoreTile(t, out, MR);
}

using TileFn = void (*)(const TileCtx&);

TileFn SelectTile(int mr, int nv) {
  return SelectByRows<kMatMulMR>(mr, nv, [](auto rows, int v) -> TileFn {
    return v == 1 ? &Tile<decltype(rows)::value, 1> : &Tile<decltype(rows)::value, 2>;
  });
}

}  // namespace

void PackB(const bf16_t* B, int64_t K, int64_t N, int64_t rs, int64_t cs, bf16_t* dst, int64_t p0, int64_t p1) {
  const int64_t K2 = (K + 1) / 2, full = K / 2;
  const bool gather_ok = rs == 1 && cs > 0 && GatherOffsetsFit(cs, sizeof(bf16_t), 16, 4);  // 32-bit lane offsets
  for (int64_t p = p0; p < p1; ++p) {
    bf16_t* out = dst + p * PackedPanelElems(K);
    const int64_t n0 = p * kPanelCols, nn = Min64(kPanelCols, N - n0);
    const __mmask16 m = TailMask(nn);
    if (cs == 1) {
      // rows contiguous: interleave rows 2k2 and 2k2+1, 16 columns at a time
      for (int64_t k2 = 0; k2 < K2; ++k2) {
        const bf16_t* r0 = B + 2 * k2 * rs + n0;
        const __m512i lo = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, r0));
        const __m512i hi = 2 * k2 + 1 < K ? _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, r0 + rs))
                                          : _mm512_setzero_si512();
        _mm512_storeu_si512(out + 32 * k2, _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16)));
      }
    } else if (gather_ok) {
      // columns contiguous along K (a transposed view such as K^T): pair k2 of column j is one
      // 32-bit word at B + (n0 + j) * cs + 2 * k2
      const __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                             _mm512_set1_epi32(static_cast<int32_t>(cs * 2)));
      const bf16_t* base = B + n0 * cs;
      for (int64_t k2 = 0; k2 < full; ++k2) {
        const __m512i g = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), m, idx, base + 2 * k2, 1);
        _mm512_storeu_si512(out + 32 * k2, g);
      }
      if (K & 1) {
        bf16_t* o = out + 32 * full;
        for (int j = 0; j < 16; ++j) {
          o[2 * j] = j < nn ? base[j * cs + K - 1] : bf16_t(0);
          o[2 * j + 1] = 0;
        }
      }
    } else {
      for (int64_t k2 = 0; k2 < K2; ++k2) {
        bf16_t* o = out + 32 * k2;
        for (int j = 0; j < 16; ++j)
          for (int h = 0; h < 2; ++h) {
            const int64_t k = 2 * k2 + h;
            o[2 * j + h] = (j < nn && k < K) ? B[k * rs + (n0 + j) * cs] : bf16_t(0);
          }
      }
    }
  }
}

void SplitRow(const split_t* src, int64_t n, bf16_t* hi_out, bf16_t* cross_out, bf16_t* lo_out) {
  for (int64_t k = 0; k < n; k += 16) {
    const __mmask16 m = TailMask(n - k);
    const __m512 v = MaskLoad16(src + k, m);
    const __m256i hi = F32ToBf16x16(v);  // bf16(v), as SplitHi
    const __m512 hi_f = WidenBf16x16(hi);
    // Inf / NaN lanes: 0 in the cross-term copy of hi and in lo (SplitHiCross, SplitLo)
    const __mmask16 finite = _mm512_cmplt_ps_mask(_mm512_abs_ps(v), _mm512_set1_ps(INFINITY));
    const __m256i lo = _mm256_maskz_mov_epi16(finite, F32ToBf16x16(_mm512_sub_ps(v, hi_f)));  // exact
    if (hi_out) _mm256_mask_storeu_epi16(hi_out + k, m, hi);
    if (cross_out) _mm256_mask_storeu_epi16(cross_out + k, m, _mm256_maskz_mov_epi16(finite, hi));
    if (lo_out) _mm256_mask_storeu_epi16(lo_out + k, m, lo);
  }
}

void MatMulUnits(const MatMulPlan& p, int64_t u0, int64_t u1) {
  const MatMulArgs& a = *p.args;
  const int64_t MR = kMatMulMR;
  const int64_t per_batch = p.n_chunks * p.m_units;
  const int64_t pstride = PackedPanelElems(p.K);
  const size_t c_elem = p.split ? sizeof(split_t) : sizeof(bf16_t);
  // Rows per cache block: A block of ~192 KiB stays in L2 while the B panels stream past it.
  const int64_t mc = Max64(MR, Min64(480, (196608 / Max64(1, 2 * p.K)) / MR * MR));
  const int gelu = a.epilogue == Epilogue::kGeluErf ? 1 : a.epilogue == Epilogue::kGeluTanh ? 2 : 0;
  int64_t u = u0;
  while (u < u1) {
    const int64_t bidx = u / per_batch, rem = u % per_batch;
    const int64_t nc = rem / p.m_units, mu0 = rem % p.m_units;
    const int64_t mu1 = Min64(p.m_units, mu0 + (u1 - u));
    u += mu1 - mu0;

    const int64_t* strides[2] = {a.c_batch_strides, a.r_batch_strides};
    int64_t off[2];
    BatchOffsets(bidx, a.batch_rank, a.batch_shape, 2, strides, off);
    const int64_t co = off[0], ro = off[1];
    const bf16_t* Ab = p.A + p.a_batch_offsets[bidx];
    const bf16_t* Bp = p.packed_b[bidx];
    const int64_t n_begin = nc * p.n_chunk_cols, n_end = Min64(a.N, n_begin + p.n_chunk_cols);
    const int64_t m_begin = mu0 * MR, m_end = Min64(a.M, mu1 * MR);

    TileCtx t;
    t.lda = p.a_rs;
    t.K = p.K;
    t.split = p.split;
    t.pstride = pstride;
    t.alpha = a.alpha;
    t.gelu = gelu;
    t.r_rs = a.r_rs;
    t.r_cs = a.r_cs;
    t.c_rs = a.c_rs;
    t.c_cs = a.c_cs;
    for (int64_t mb = m_begin; mb < m_end; mb += mc) {
      const int64_t me = Min64(m_end, mb + mc);
      for (int64_t n = n_begin; n < n_end; n += 2 * kPanelCols) {
        t.ncols = Min64(2 * kPanelCols, n_end - n);
        const int nv = t.ncols > kPanelCols ? 2 : 1;
        t.b = Bp + (n / kPanelCols) * pstride;
        t.bias = a.bias ? a.bias + n : nullptr;
        for (int64_t m = mb; m < me; m += MR) {
          const int mr = static_cast<int>(Min64(MR, me - m));
          t.a = Ab + m * p.a_rs;
          t.r = a.residual ? static_cast<const char*>(a.residual) + (ro + m * a.r_rs + n * a.r_cs) * c_elem : nullptr;
          t.c = static_cast<char*>(p.C) + (co + m * a.c_rs + n * a.c_cs) * c_elem;
          SelectTile(mr, nv)(t);
        }
      }
    }
  }
}

}  // namespace phoenix::kernels::avx512
