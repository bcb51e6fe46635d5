// INT8 MatMul on AVX-512 VNNI (vpdpbusd zmm): bit-identical to portable::MatMulInt8 (README.md,
// "Numerics"). Compiled with -mavx512{f,bw,vl,dq,vnni} (CMakeLists.txt: *_avx512_vnni.cc), run
// only when UseAvx512Vnni() (or a test asks for this path on a CPU that has it).
//
// The dispatcher hands over A quantized once per call into u8 rows qa' (QuantizeRowU8 below) and
// B packed as s8 qb' panels with their column sums (matmul_int8_internal.h, namespace vnni, says
// why acc = S + corr[n] - zb'[n] rowsum[m] modulo 2^32 is the exact integer sum). The 12 x 32
// micro-tile (24 zmm accumulators, like the BF16 MatMul's) keeps S in registers over all of K:
// per 4 k, two 64-byte B loads, 12 broadcasts of 4 A bytes, 24 vpdpbusd. Then, per 16 columns,
// the integer correction (wrapping epi32), float(acc) (nearest even), and README steps 4-7 in
// 16 FP32 lanes (common/avx512_math.h: the scalar operations in the scalar order).
#pragma GCC optimize("fp-contract=off")  // before any include: see common/avx512_math.h
// GCC 12 warns falsely about _mm512_undefined_* inside intrinsics under an optimize pragma.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "common/avx512_math.h"
#include "common/batch_offsets.h"
#include "common/tile_select.h"
#include "matmul_int8/matmul_int8_internal.h"

namespace phoenix::kernels::avx512_vnni {
namespace {

using avx512::MaskLoad16;
using avx512::MaskStore16;
using avx512::TailMask;

inline int64_t Min64(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t Max64(int64_t a, int64_t b) { return a > b ? a : b; }

inline int32_t Load4(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

struct TileCtx {
  const uint8_t* a;       // qa' panel of rows m0 .. m0 + kMR - 1 ([k4][kMR][4])
  int64_t quads;          // Quads(K)
  const int8_t* b;        // panel of columns n0 .. n0 + 15; the next panel follows at pstride
  int64_t pstride;
  const int32_t* corr;    // corr + n0
  const int32_t* zb;      // zb' + n0, with rowsum
  const int32_t* rowsum;  // rowsum + m0, or nullptr
  const float* col_scale; // col_scale + n0
  float alpha;
  const float* bias;      // bias + n0, or nullptr
  int gelu;               // 0 none, 1 erf, 2 tanh
  const bf16_t* r;        // residual at (m0, n0), or nullptr
  int64_t r_rs, r_cs;
  bool quantize_output;
  float oq_scale, oq_lo, oq_hi;
  bf16_t* c;              // C at (m0, n0)
  int64_t c_rs, c_cs;
  int64_t ncols;          // valid columns (1 .. 32)
};

// README steps 3 (the correction) to 7 for a tile of S (row stride 32 int32), rows [0, mr).
__attribute__((noinline)) void StoreTile(const TileCtx& t, const int32_t* acc, int mr) {
  const __m512 alpha = _mm512_set1_ps(t.alpha);
  for (int v = 0; v < 2; ++v) {
    const int64_t cnt = t.ncols - 16 * v;
    if (cnt <= 0) break;
    const __mmask16 mask = TailMask(cnt);
    const int nlanes = static_cast<int>(Min64(cnt, 16));
    const __m512i corr = _mm512_maskz_loadu_epi32(mask, t.corr + 16 * v);
    const __m512i zb = t.rowsum ? _mm512_maskz_loadu_epi32(mask, t.zb + 16 * v) : _mm512_setzero_si512();
    const __m512 cscale = _mm512_maskz_loadu_ps(mask, t.col_scale + 16 * v);
    const __m512 bias = t.bias ? _mm512_maskz_loadu_ps(mask, t.bias + 16 * v) : _mm512_setzero_ps();
    for (int r = 0; r < mr; ++r) {
      __m512i s = _mm512_add_epi32(_mm512_load_si512(acc + 32 * r + 16 * v), corr);  // modulo 2^32
      if (t.rowsum) s = _mm512_sub_epi32(s, _mm512_mullo_epi32(zb, _mm512_set1_epi32(t.rowsum[r])));
      __m512 x = _mm512_cvtepi32_ps(s);  // nearest even (default MXCSR)
      x = _mm512_mul_ps(x, cscale);
      x = _mm512_mul_ps(x, alpha);
      if (t.bias) x = _mm512_add_ps(x, bias);
      if (t.gelu) x = avx512::GeluV(x, t.gelu == 2);
      if (t.r) {
        const bf16_t* rp = t.r + r * t.r_rs + 16 * v * t.r_cs;
        if (t.r_cs == 1) {
          x = _mm512_add_ps(x, MaskLoad16(rp, mask));
        } else {
          bf16_t tmp[16] = {};
          for (int j = 0; j < nlanes; ++j) tmp[j] = rp[j * t.r_cs];
          x = _mm512_add_ps(x, avx512::Load16(tmp));
        }
      }
      if (t.quantize_output) {  // Dequantize(Quantize(x)): clamp in the MLAS order, NaN -> lo
        x = _mm512_div_ps(x, _mm512_set1_ps(t.oq_scale));
        x = _mm512_max_ps(x, _mm512_set1_ps(t.oq_lo));  // x > lo ? x : lo
        x = _mm512_min_ps(x, _mm512_set1_ps(t.oq_hi));  // x < hi ? x : hi
        x = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtps_epi32(x)), _mm512_set1_ps(t.oq_scale));
      }
      bf16_t* cp = t.c + r * t.c_rs + 16 * v * t.c_cs;
      if (t.c_cs == 1) {
        MaskStore16(cp, mask, x);
      } else {
        bf16_t tmp[16];
        avx512::Store16(tmp, x);
        for (int j = 0; j < nlanes; ++j) cp[j * t.c_cs] = tmp[j];
      }
    }
  }
}

// S of one MR x (16 NV) micro-tile over all of K, in zmm registers.
template <int MR, int NV>
void Tile(const TileCtx& t) {
  __m512i acc[MR][NV];
#pragma GCC unroll 12
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_si512();
  const int8_t* b0 = t.b;
  const int8_t* b1 = t.b + t.pstride;
  const uint8_t* a = t.a;
  const int64_t quads = t.quads;
  for (int64_t k4 = 0; k4 < quads; ++k4) {
    __m512i bv[NV];
    bv[0] = _mm512_loadu_si512(b0 + 64 * k4);
    if (NV > 1) bv[NV - 1] = _mm512_loadu_si512(b1 + 64 * k4);
#pragma GCC unroll 12
    for (int r = 0; r < MR; ++r) {
      const __m512i av = _mm512_set1_epi32(Load4(a + 4 * kMR * k4 + 4 * r));
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_dpbusd_epi32(acc[r][v], av, bv[v]);
    }
  }
  alignas(64) int32_t out[MR * 32];
#pragma GCC unroll 12
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) _mm512_store_si512(out + 32 * r + 16 * v, acc[r][v]);
  StoreTile(t, out, MR);
}

using TileFn = void (*)(const TileCtx&);

TileFn SelectTile(int mr, int nv) {
  return SelectByRows<kMR>(mr, nv, [](auto rows, int v) -> TileFn {
    return v == 1 ? &Tile<decltype(rows)::value, 1> : &Tile<decltype(rows)::value, 2>;
  });
}

// x / scale as README step 1 needs it, at a multiply's cost: q0 = x * RN(1 / scale) differs from
// RN(x / scale) by less than |x / scale| 2^-22 (two roundings of 2^-24 each, RN(1 / scale)
// normal). Step 1 only needs round_half_even(clamp(x / scale, lo, hi)), a step function of the
// quotient with steps at the half-integers (|lo|, |hi| <= 255): so where |q0| < 512 and q0 is
// farther than 2^-12 > 512 * 2^-22 from every half-integer, the step of q0 is the step of
// RN(x / scale) (and ties, x / scale at a half-integer, are within the margin); where |q0| >= 512
// both clamp to the same bound; NaN, Inf and 0 go through the multiply as through the divide.
// The lanes near a half-integer (about 1 in 2000) are divided.
inline __m512 Quotient(__m512 x, __m512 scale, __m512 recip) {
  const __m512 v = _mm512_mul_ps(x, recip);
  const __m512 frac = _mm512_sub_ps(v, _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  const __m512 to_half = _mm512_abs_ps(_mm512_sub_ps(_mm512_abs_ps(frac), _mm512_set1_ps(0.5f)));  // exact
  const __mmask16 near = _mm512_cmp_ps_mask(to_half, _mm512_set1_ps(0x1p-12f), _CMP_LT_OQ) &
                         _mm512_cmp_ps_mask(_mm512_abs_ps(v), _mm512_set1_ps(512.0f), _CMP_LT_OQ);
  return near ? _mm512_mask_div_ps(v, near, x, scale) : v;
}

}  // namespace

int32_t QuantizeRowU8(const bf16_t* x, int64_t n, const QuantParams& q, uint8_t* dst) {
  const int32_t za = q.zero_point + (q.is_signed ? 128 : 0);  // qa' = round(clamp(x / s)) + za'
  const __m512 scale = _mm512_set1_ps(q.scale);
  const float recip = 1.0f / q.scale;
  const bool by_recip = std::isnormal(recip);  // Quotient's error bound holds
  const __m512 rv = _mm512_set1_ps(recip);
  const __m512 lo = _mm512_set1_ps(static_cast<float>(QuantMin(q) - q.zero_point));
  const __m512 hi = _mm512_set1_ps(static_cast<float>(QuantMax(q) - q.zero_point));
  const __m512i zav = _mm512_set1_epi32(za);
  __m512i sum = _mm512_setzero_si512();
  const int64_t quads = vnni::Quads(n);
  for (int64_t k = 0; k < n; k += 16) {
    const __mmask16 m = TailMask(n - k);
    const __m512 xv = MaskLoad16(x + k, m);
    __m512 v = by_recip ? Quotient(xv, scale, rv) : _mm512_div_ps(xv, scale);
    v = _mm512_max_ps(v, lo);  // v > lo ? v : lo (NaN -> lo)
    v = _mm512_min_ps(v, hi);
    const __m512i qv = _mm512_maskz_add_epi32(m, _mm512_cvtps_epi32(v), zav);  // in [0, 255]; 0 past n
    sum = _mm512_add_epi32(sum, qv);
    alignas(16) int32_t w[4];  // 4 quads of u8
    _mm_store_si128(reinterpret_cast<__m128i*>(w), _mm512_cvtepi32_epi8(qv));
    const int64_t k4 = k / 4, nq = Min64(4, quads - k4);
    for (int64_t j = 0; j < nq; ++j) std::memcpy(dst + (k4 + j) * 4 * kMR, &w[j], 4);
  }
  return _mm512_reduce_add_epi32(sum);
}

void Units(const vnni::Plan& p, int64_t u0, int64_t u1) {
  const MatMulArgs& a = *p.args;
  const int64_t MR = kMR, NP = vnni::kPanelCols;
  const int64_t per_batch = p.n_chunks * p.m_units;
  const int64_t pstride = vnni::PanelBytes(a.K);
  const int64_t panel_bytes = vnni::APanelBytes(a.K, MR);
  // Rows per cache block: the A block (about 128 KiB) stays in L2 while the B panels stream past.
  const int64_t mc = Max64(MR, Min64(480, (131072 / Max64(1, panel_bytes / MR)) / MR * MR));
  TileCtx t;
  t.quads = vnni::Quads(a.K);
  t.pstride = pstride;
  t.alpha = a.alpha;
  t.gelu = a.epilogue == Epilogue::kGeluErf ? 1 : a.epilogue == Epilogue::kGeluTanh ? 2 : 0;
  t.r_rs = a.r_rs;
  t.r_cs = a.r_cs;
  t.c_rs = a.c_rs;
  t.c_cs = a.c_cs;
  t.quantize_output = p.quantize_output;
  t.oq_scale = p.out.scale;
  t.oq_lo = static_cast<float>(QuantMin(p.out) - p.out.zero_point);
  t.oq_hi = static_cast<float>(QuantMax(p.out) - p.out.zero_point);
  int64_t u = u0;
  while (u < u1) {
    const int64_t bidx = u / per_batch, rem = u % per_batch;
    const int64_t nc = rem / p.m_units, mu0 = rem % p.m_units;
    const int64_t mu1 = Min64(p.m_units, mu0 + (u1 - u));
    u += mu1 - mu0;
    const int64_t* strides[2] = {a.c_batch_strides, a.r_batch_strides};
    int64_t off[2];
    BatchOffsets(bidx, a.batch_rank, a.batch_shape, 2, strides, off);
    const uint8_t* Ab = p.fused_quant ? nullptr : p.A + bidx * p.m_units * panel_bytes;
    const int32_t* rowsum = p.rowsum ? p.rowsum + bidx * a.M : nullptr;
    int64_t first = 0;  // the row of Ab's first panel and rowsum's first entry
    const int8_t* Bp = p.packed_b[bidx];
    const int64_t n_begin = nc * p.n_chunk_cols, n_end = Min64(a.N, n_begin + p.n_chunk_cols);
    const int64_t m_begin = mu0 * MR, m_end = Min64(a.M, mu1 * MR);
    for (int64_t mb = m_begin; mb < m_end; mb += mc) {
      const int64_t me = Min64(m_end, mb + mc);
      if (p.fused_quant) {  // this block's rows, quantized into the thread's panels (hot in L2)
        thread_local std::vector<uint8_t> qa;
        thread_local std::vector<int32_t> rs;
        const int64_t rows = me - mb;
        if (static_cast<int64_t>(qa.size()) < (rows + MR - 1) / MR * panel_bytes)
          qa.resize(static_cast<size_t>((rows + MR - 1) / MR * panel_bytes));
        if (static_cast<int64_t>(rs.size()) < rows) rs.resize(static_cast<size_t>(rows));
        const bf16_t* src = p.a_bf16 + p.a_off[bidx] + mb * p.a_rs;
        for (int64_t r = 0; r < rows; ++r)
          rs[r] = QuantizeRowU8(src + r * p.a_rs, a.K, p.a_quant, qa.data() + (r / MR) * panel_bytes + (r % MR) * 4);
        Ab = qa.data();
        rowsum = p.fused_rowsum ? rs.data() : nullptr;
        first = mb;
      }
      for (int64_t n = n_begin; n < n_end; n += 2 * NP) {
        t.ncols = Min64(2 * NP, n_end - n);
        const int nv = t.ncols > NP ? 2 : 1;
        t.b = Bp + (n / NP) * pstride;
        t.corr = p.corr[bidx] + n;
        t.zb = p.zb[bidx] + n;
        t.col_scale = p.col_scale + n;
        t.bias = a.bias ? a.bias + n : nullptr;
        for (int64_t m = mb; m < me; m += MR) {
          const int mr = static_cast<int>(Min64(MR, me - m));
          t.a = Ab + ((m - first) / MR) * panel_bytes;
          t.rowsum = rowsum ? rowsum + (m - first) : nullptr;
          t.r = a.residual ? static_cast<const bf16_t*>(a.residual) + off[1] + m * a.r_rs + n * a.r_cs : nullptr;
          t.c = p.C + off[0] + m * a.c_rs + n * a.c_cs;
          SelectTile(mr, nv)(t);
        }
      }
    }
  }
}

}  // namespace phoenix::kernels::avx512_vnni
