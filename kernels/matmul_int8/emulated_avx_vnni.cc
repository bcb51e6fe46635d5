// INT8 MatMul on AVX-VNNI (VEX vpdpbusd ymm: Intel client CPUs from Alder Lake, AMD Zen 5 and
// the Zen 4 too): bit-identical to portable::MatMulInt8 (README.md, "Numerics"). Compiled with
// -mavx2 -mfma -mf16c -mavxvnni and nothing of AVX-512 (CMakeLists.txt: *_avx_vnni.cc), run only
// when UseAvxVnni() (or a test asks for this path on a CPU that has it).
//
// The same algorithm as emulated_avx512_vnni.cc on 8 lanes (matmul_int8_internal.h, namespace
// vnni: A quantized once per call into u8 rows qa', B packed as s8 qb' panels of 16 columns with
// their column sums, acc = S + corr[n] - zb'[n] rowsum[m] modulo 2^32 = the exact sum). The
// 6 x 16 micro-tile keeps S in 12 ymm registers over all of K: per 4 k, two 32-byte B loads (the
// halves of a panel row), 6 broadcasts of 4 A bytes, 12 vpdpbusd. The epilogue is the AVX2
// MatMuls' (matmul/epilogue_avx2.h, README steps 4-7 in 8 FP32 lanes).
#pragma GCC optimize("fp-contract=off")  // before any include: see common/avx2_math.h
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "common/avx2_math.h"
#include "common/batch_offsets.h"
#include "matmul/epilogue_avx2.h"
#include "matmul_int8/matmul_int8_internal.h"

namespace phoenix::kernels::avx_vnni {
namespace {

inline int64_t Min64(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t Max64(int64_t a, int64_t b) { return a > b ? a : b; }
constexpr int NR = vnni::kPanelCols;
static_assert(NR == avx2::kEpilogueCols, "one epilogue tile width");

inline int32_t Load4(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

struct TileCtx {
  const uint8_t* a;        // qa' panel of rows m0 .. m0 + kMR - 1 ([k4][kMR][4])
  int64_t quads;
  const int8_t* b;         // panel of columns n0 .. n0 + 15
  const int32_t* corr;     // corr + n0
  const int32_t* zb;       // zb' + n0
  const int32_t* rowsum;   // rowsum + m0, or nullptr
  avx2::EpilogueCtx e;     // everything but rows (set per tile)
};

// S (rows [0, mr), row stride 16 int32) + the correction, to FP32 (nearest even), then README
// steps 4-7.
__attribute__((noinline)) void StoreTile(TileCtx& t, const int32_t* acc, int mr) {
  alignas(32) float f[kMR * NR];
  for (int v = 0; v < 2; ++v) {
    const __m256i corr = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t.corr + 8 * v));
    const __m256i zb = t.rowsum ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t.zb + 8 * v))
                                : _mm256_setzero_si256();
    for (int r = 0; r < mr; ++r) {
      __m256i s = _mm256_add_epi32(_mm256_load_si256(reinterpret_cast<const __m256i*>(acc + NR * r + 8 * v)), corr);
      if (t.rowsum) s = _mm256_sub_epi32(s, _mm256_mullo_epi32(zb, _mm256_set1_epi32(t.rowsum[r])));
      _mm256_store_ps(f + NR * r + 8 * v, _mm256_cvtepi32_ps(s));
    }
  }
  t.e.rows = mr;
  avx2::StoreTile<bf16_t>(t.e, f);
}

template <int MR>
void Tile(TileCtx& t) {
  __m256i acc[MR][2];
#pragma GCC unroll 6
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
  const int8_t* b = t.b;
  const uint8_t* a = t.a;
  const int64_t quads = t.quads;
  for (int64_t k4 = 0; k4 < quads; ++k4) {
    const __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 64 * k4));
    const __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 64 * k4 + 32));
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
      const __m256i av = _mm256_set1_epi32(Load4(a + 4 * kMR * k4 + 4 * r));
      acc[r][0] = _mm256_dpbusd_avx_epi32(acc[r][0], av, b0);
      acc[r][1] = _mm256_dpbusd_avx_epi32(acc[r][1], av, b1);
    }
  }
  alignas(32) int32_t out[MR * NR];
#pragma GCC unroll 6
  for (int r = 0; r < MR; ++r) {
    _mm256_store_si256(reinterpret_cast<__m256i*>(out + NR * r), acc[r][0]);
    _mm256_store_si256(reinterpret_cast<__m256i*>(out + NR * r + 8), acc[r][1]);
  }
  StoreTile(t, out, MR);
}

using TileFn = void (*)(TileCtx&);
TileFn SelectTile(int mr) {
  switch (mr) {
    case 1: return &Tile<1>;
    case 2: return &Tile<2>;
    case 3: return &Tile<3>;
    case 4: return &Tile<4>;
    case 5: return &Tile<5>;
    default: return &Tile<6>;
  }
}
static_assert(kMR == 6, "SelectTile covers 1..6 rows");

// x / scale as README step 1 needs it, at a multiply's cost (emulated_avx512_vnni.cc, Quotient,
// says why the quantized value is the same): x * RN(1 / scale), divided where that lies within
// 2^-12 of a half-integer below 512 in magnitude.
inline __m256 Quotient(__m256 x, __m256 scale, __m256 recip) {
  const __m256 v = _mm256_mul_ps(x, recip);
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256 frac = _mm256_sub_ps(v, _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  const __m256 to_half = _mm256_and_ps(_mm256_sub_ps(_mm256_and_ps(frac, abs_mask), _mm256_set1_ps(0.5f)), abs_mask);
  const __m256 near = _mm256_and_ps(_mm256_cmp_ps(to_half, _mm256_set1_ps(0x1p-12f), _CMP_LT_OQ),
                                    _mm256_cmp_ps(_mm256_and_ps(v, abs_mask), _mm256_set1_ps(512.0f), _CMP_LT_OQ));
  return _mm256_testz_ps(near, near) ? v : _mm256_blendv_ps(v, _mm256_div_ps(x, scale), near);
}

}  // namespace

int32_t QuantizeRowU8(const bf16_t* x, int64_t n, const QuantParams& q, uint8_t* dst) {
  const int32_t za = q.zero_point + (q.is_signed ? 128 : 0);  // qa' = round(clamp(x / s)) + za'
  const __m256 scale = _mm256_set1_ps(q.scale);
  const float recip = 1.0f / q.scale;
  const bool by_recip = std::isnormal(recip);  // Quotient's error bound holds
  const __m256 rv = _mm256_set1_ps(recip);
  const __m256 lo = _mm256_set1_ps(static_cast<float>(QuantMin(q) - q.zero_point));
  const __m256 hi = _mm256_set1_ps(static_cast<float>(QuantMax(q) - q.zero_point));
  const __m256i zav = _mm256_set1_epi32(za);
  __m256i sum = _mm256_setzero_si256();
  const int64_t quads = vnni::Quads(n);
  for (int64_t k = 0; k < n; k += 8) {
    const int cnt = static_cast<int>(Min64(8, n - k));
    const __m256 xv = cnt == 8 ? avx2::Load8(x + k) : avx2::LoadN(x + k, cnt);
    __m256 v = by_recip ? Quotient(xv, scale, rv) : _mm256_div_ps(xv, scale);
    v = _mm256_max_ps(v, lo);  // v > lo ? v : lo (NaN -> lo)
    v = _mm256_min_ps(v, hi);
    __m256i qv = _mm256_add_epi32(_mm256_cvtps_epi32(v), zav);  // in [0, 255]
    if (cnt < 8)  // 0 past n (a zero BF16 need not quantize to za)
      qv = _mm256_and_si256(qv, _mm256_cmpgt_epi32(_mm256_set1_epi32(cnt), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
    sum = _mm256_add_epi32(sum, qv);
    const __m128i w16 = _mm_packus_epi32(_mm256_castsi256_si128(qv), _mm256_extracti128_si256(qv, 1));
    const __m128i w8 = _mm_packus_epi16(w16, w16);
    const int32_t q0 = _mm_cvtsi128_si32(w8), q1 = _mm_extract_epi32(w8, 1);
    std::memcpy(dst + (k / 4) * 4 * kMR, &q0, 4);
    if (k / 4 + 1 < quads) std::memcpy(dst + (k / 4 + 1) * 4 * kMR, &q1, 4);
  }
  alignas(32) int32_t lanes[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), sum);
  return lanes[0] + lanes[1] + lanes[2] + lanes[3] + lanes[4] + lanes[5] + lanes[6] + lanes[7];
}

void Units(const vnni::Plan& p, int64_t u0, int64_t u1) {
  const MatMulArgs& a = *p.args;
  const int64_t MR = kMR;
  const int64_t per_batch = p.n_chunks * p.m_units;
  const int64_t pstride = vnni::PanelBytes(a.K);
  const int64_t panel_bytes = vnni::APanelBytes(a.K, MR);
  const int64_t mc = Max64(MR, Min64(480, (131072 / Max64(1, panel_bytes / MR)) / MR * MR));
  avx2::OutQuant oq;
  oq.scale = p.out.scale;
  oq.lo = static_cast<float>(QuantMin(p.out) - p.out.zero_point);
  oq.hi = static_cast<float>(QuantMax(p.out) - p.out.zero_point);
  TileCtx t;
  t.quads = vnni::Quads(a.K);
  avx2::EpilogueCtx& e = t.e;
  e.alpha = a.alpha;
  e.gelu = a.epilogue == Epilogue::kGeluErf ? 1 : a.epilogue == Epilogue::kGeluTanh ? 2 : 0;
  e.r_rs = a.r_rs;
  e.r_cs = a.r_cs;
  e.c_rs = a.c_rs;
  e.c_cs = a.c_cs;
  e.out_quant = p.quantize_output ? &oq : nullptr;
  int64_t u = u0;
  while (u < u1) {
    const int64_t bidx = u / per_batch, rem = u % per_batch;
    const int64_t nc = rem / p.m_units, mu0 = rem % p.m_units;
    const int64_t mu1 = Min64(p.m_units, mu0 + (u1 - u));
    u += mu1 - mu0;
    const int64_t* strides[2] = {a.c_batch_strides, a.r_batch_strides};
    int64_t off[2];
    BatchOffsets(bidx, a.batch_rank, a.batch_shape, 2, strides, off);
    const uint8_t* Ab = p.A + bidx * p.m_units * panel_bytes;
    const int32_t* rowsum = p.rowsum ? p.rowsum + bidx * a.M : nullptr;
    const int8_t* Bp = p.packed_b[bidx];
    const int64_t n_begin = nc * p.n_chunk_cols, n_end = Min64(a.N, n_begin + p.n_chunk_cols);
    const int64_t m_begin = mu0 * MR, m_end = Min64(a.M, mu1 * MR);
    for (int64_t mb = m_begin; mb < m_end; mb += mc) {
      const int64_t me = Min64(m_end, mb + mc);
      for (int64_t n = n_begin; n < n_end; n += NR) {
        e.cols = static_cast<int>(Min64(NR, n_end - n));
        t.b = Bp + (n / NR) * pstride;
        t.corr = p.corr[bidx] + n;
        t.zb = p.zb[bidx] + n;
        e.col_scale = p.col_scale + n;
        e.bias = a.bias ? a.bias + n : nullptr;
        for (int64_t m = mb; m < me; m += MR) {
          const int mr = static_cast<int>(Min64(MR, me - m));
          t.a = Ab + (m / MR) * panel_bytes;
          t.rowsum = rowsum ? rowsum + m : nullptr;
          e.r = a.residual ? static_cast<const bf16_t*>(a.residual) + off[1] + m * a.r_rs + n * a.r_cs : nullptr;
          e.c = p.C + off[0] + m * a.c_rs + n * a.c_cs;
          SelectTile(mr)(t);
        }
      }
    }
  }
}

}  // namespace phoenix::kernels::avx_vnni
