// Fused attention on AVX-512 with AVX512_BF16 (vdpbf16ps): the emulated device's fast path.
//
// One work unit = one block of R query rows (R = 16 * NV, NV query panels of 16) of one head,
// with Q^T, K and V packed by the dispatcher (see attention_internal.h):
//   1. S^T = scale * K Q^T into an FP32 scratch [N][R] (never rounded; one query per lane):
//      register tiles of 12 keys x 32 queries (8 x 48, 6 x 64), vdpbf16ps over the pairs of D;
//      the tile epilogue multiplies by scale (the reference's scale * acc) and keeps each
//      query's running max (vmaxps(s, max): a NaN score never enters the max, as in the
//      reference's `s > mx ? s : mx`);
//   2. down each column (query), in key order: e = KernelExp(s - max) (bit-identical), the FP32
//      sum in the reference's sequential order (one lane per query), inv = 1 / sum,
//      P = BF16(e * inv) (one rounding, nearest even) stored as key pairs [N/2][R] for step 3.
//      A NaN score makes the sum, hence the whole P row, NaN, as the reference (which forces it);
//   3. O = P V: 6 query x 64 column register tiles, vdpbf16ps over pairs of keys against V packed
//      by avx512::PackB, FP32 accumulation over all N in registers, ONE BF16 rounding, strided
//      store.
// Summation orders: S and O sum pairs of products per vdpbf16ps step (each BF16 x BF16 product
// is exact in FP32) in order, unlike the reference's one product at a time: S may differ in the
// last FP32 bits, hence P by 1 BF16 ulp now and then. The softmax sum has the reference's order.
// vdpbf16ps treats BF16 denormal inputs as zero and flushes denormal results (AIE2 has no
// denormals either).
#pragma GCC optimize("fp-contract=off")  // before any include: see common/avx512_math.h
// GCC 12 warns falsely about _mm512_undefined_* inside intrinsics under an optimize pragma.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "attention/attention_internal.h"
#include "common/avx512_math.h"
#include "common/checked_size.h"
#include "common/kernel_isa.h"

namespace phoenix::kernels::avx512 {
namespace {

inline int64_t Min64(int64_t a, int64_t b) { return a < b ? a : b; }

inline int32_t LoadPair(const bf16_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}


// ---- S^T = scale * K Q^T ----------------------------------------------------------------------
struct ScoreCtx {
  const bf16_t* k;   // packed key tile at the tile's first key (pairs at + 2 * kKeyTile per k2)
  int64_t K2;        // pairs along D
  const bf16_t* q;   // packed Q^T panel of the block's first 16 queries (next panels at + qstride)
  int64_t qstride;
  float scale;
  float* s;          // S^T at (first key of the tile, query 0)
  int64_t lds;       // floats per S^T row (= R)
  float* mx;         // NV x 16 running max per query
};

template <int MR, int NV>
void ScoreTile(const ScoreCtx& t) {
  __m512 acc[MR][NV];
#pragma GCC unroll 12
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_ps();
  const bf16_t* k = t.k;
  const bf16_t* q = t.q;
  const int64_t qs = t.qstride;
  for (int64_t k2 = 0; k2 < t.K2; ++k2) {
    __m512bh bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = (__m512bh)_mm512_loadu_si512(q + v * qs + 32 * k2);
#pragma GCC unroll 12
    for (int r = 0; r < MR; ++r) {
      const __m512bh av = (__m512bh)_mm512_set1_epi32(LoadPair(k + 2 * kKeyTile * k2 + 2 * r));
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], av, bv[v]);
    }
  }
  const __m512 scale = _mm512_set1_ps(t.scale);
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) {
    __m512 m = _mm512_load_ps(t.mx + 16 * v);
#pragma GCC unroll 12
    for (int r = 0; r < MR; ++r) {
      const __m512 x = _mm512_mul_ps(scale, acc[r][v]);
      _mm512_store_ps(t.s + r * t.lds + 16 * v, x);
      m = _mm512_max_ps(x, m);  // NaN x keeps m
    }
    _mm512_store_ps(t.mx + 16 * v, m);
  }
}

using ScoreFn = void (*)(const ScoreCtx&);
template <int NV>
ScoreFn SelectScore(int mr) {
  switch (mr) {
    case 1: return &ScoreTile<1, NV>;
    case 2: return &ScoreTile<2, NV>;
    case 3: return &ScoreTile<3, NV>;
    case 4: return &ScoreTile<4, NV>;
    case 5: return &ScoreTile<5, NV>;
    case 6: return &ScoreTile<6, NV>;
    case 7: return &ScoreTile<7 <= 24 / NV ? 7 : 1, NV>;
    case 8: return &ScoreTile<8 <= 24 / NV ? 8 : 1, NV>;
    case 9: return &ScoreTile<9 <= 24 / NV ? 9 : 1, NV>;
    case 10: return &ScoreTile<10 <= 24 / NV ? 10 : 1, NV>;
    case 11: return &ScoreTile<11 <= 24 / NV ? 11 : 1, NV>;
    default: return &ScoreTile<12 <= 24 / NV ? 12 : 1, NV>;
  }
}

// ---- O = P V --------------------------------------------------------------------------------
struct PvCtx {
  const bf16_t* p;   // P block at query 0 of the tile: key pair k2 of query i at p + 2 * (k2 * ldp + i)
  int64_t ldp;       // queries per P row (= R)
  int64_t K2;        // pairs of keys
  const bf16_t* b;   // packed V panel of columns j0 .. j0+15 (the next panels at + pstride)
  int64_t pstride;
  void* o;           // O at (query 0 of the tile, column j0): bf16_t, or split_t when `split`
  bool split;
  int64_t o_rs, o_cs;
  int64_t ncols;     // valid columns (1 .. 16 * NV)
};

// One rounding of the FP32 accumulators to T (BF16 or BF16x3), strided store.
template <typename T, int MR, int NV>
void StoreO(const PvCtx& t, const __m512 (&acc)[MR][NV]) {
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) {
    const int64_t cnt = t.ncols - 16 * v;
    const __mmask16 m = TailMask(cnt);
#pragma GCC unroll 12
    for (int r = 0; r < MR; ++r) {
      T* op = static_cast<T*>(t.o) + r * t.o_rs + 16 * v * t.o_cs;
      if (t.o_cs == 1) {
        MaskStore16(op, m, acc[r][v]);
      } else {
        T tmp[16];
        Store16(tmp, acc[r][v]);
        for (int64_t j = 0; j < Min64(cnt, 16); ++j) op[j * t.o_cs] = tmp[j];
      }
    }
  }
}

template <int MR, int NV>
void PvTile(const PvCtx& t) {
  __m512 acc[MR][NV];
#pragma GCC unroll 12
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_ps();
  const bf16_t* b = t.b;
  const bf16_t* p = t.p;
  const int64_t ps = t.pstride, pstep = 2 * t.ldp;
  for (int64_t k2 = 0; k2 < t.K2; ++k2, p += pstep) {
    __m512bh bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = (__m512bh)_mm512_loadu_si512(b + v * ps + 32 * k2);
#pragma GCC unroll 12
    for (int r = 0; r < MR; ++r) {
      const __m512bh av = (__m512bh)_mm512_set1_epi32(LoadPair(p + 2 * r));
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], av, bv[v]);
    }
  }
  if (t.split) StoreO<split_t, MR, NV>(t, acc);
  else StoreO<bf16_t, MR, NV>(t, acc);
}

using PvFn = void (*)(const PvCtx&);
constexpr int kPvMR = 6, kPvNV = 4;  // 6 x 64 tile: 24 accumulators, 4 V loads + 6 P broadcasts a step
template <int MR>
constexpr PvFn PvFor(int nv) {
  return nv == 1 ? &PvTile<MR, 1> : nv == 2 ? &PvTile<MR, 2> : nv == 3 ? &PvTile<MR, 3> : &PvTile<MR, 4>;
}
PvFn SelectPv(int mr, int nv) {
  switch (mr) {
    case 1: return PvFor<1>(nv);
    case 2: return PvFor<2>(nv);
    case 3: return PvFor<3>(nv);
    case 4: return PvFor<4>(nv);
    case 5: return PvFor<5>(nv);
    default: return PvFor<6>(nv);
  }
}

// ---- P = BF16(e * inv) for a pair of keys, interleaved into key pairs -------------------------
// vcvtne2ps2bf16 rounds to nearest even like F32ToBf16 for every normal, zero, Inf or NaN input
// (checked over all FP32 values in [0, 1]) but treats FP32 denormals as zero: lanes holding one
// (e * inv below 2^-126, rare) take the exact F32ToBf16 path instead.
inline __m512i PairBf16(__m512 a, __m512 b, __m512i interleave) {
  const __mmask16 den = _mm512_fpclass_ps_mask(a, 0x20) | _mm512_fpclass_ps_mask(b, 0x20);
  __m512i w;
  if (__builtin_expect(den == 0, 1)) {
    w = (__m512i)_mm512_cvtne2ps_pbh(b, a);  // words 0..15 from a, 16..31 from b
  } else {
    w = _mm512_inserti64x4(_mm512_zextsi256_si512(F32ToBf16x16(a)), F32ToBf16x16(b), 1);
  }
  return _mm512_permutexvar_epi16(interleave, w);  // (a_i, b_i) pairs
}

template <int NV>
void Unit(const AttentionPlan& pl, const AttentionScratch& sc, int64_t bi, int64_t m0, int64_t rows) {
  const AttentionArgs& a = *pl.args;
  const int64_t N = a.N, D = pl.D, Dv = a.Dv, R = pl.block_rows, NP = pl.NP;
  float* S = sc.f;
  float* mxbuf = sc.f + N * R;
  bf16_t* P = sc.h;
  const int64_t KD2 = (D + 1) / 2, KN2 = (NP + 1) / 2;
  const int64_t q_pstride = PackedPanelElems(D), v_pstride = PackedPanelElems(NP);

  // 1. S^T and the running max per query.
  for (int v = 0; v < NV; ++v) _mm512_store_ps(mxbuf + 16 * v, _mm512_set1_ps(-INFINITY));
  ScoreCtx st;
  st.K2 = KD2;
  st.q = pl.packed_q[bi] + (m0 / 16) * q_pstride;
  st.qstride = q_pstride;
  st.scale = a.scale;
  st.lds = R;
  st.mx = mxbuf;
  constexpr int kMR = 24 / NV < kKeyTile ? 24 / NV : kKeyTile;  // keys per register tile
  const bf16_t* pk = pl.packed_k[bi];
  for (int64_t n0 = 0; n0 < N; n0 += kKeyTile) {
    const bf16_t* tile = pk + (n0 / kKeyTile) * KD2 * 2 * kKeyTile;
    const int64_t nk = Min64(kKeyTile, N - n0);
    for (int64_t r = 0; r < nk; r += kMR) {
      st.k = tile + 2 * r;
      st.s = S + (n0 + r) * R;
      SelectScore<NV>(static_cast<int>(Min64(kMR, nk - r)))(st);
    }
  }

  // 2. Softmax down the columns; P as key pairs.
  __m512 mx[NV], sum[NV], inv[NV];
  for (int v = 0; v < NV; ++v) {
    mx[v] = _mm512_load_ps(mxbuf + 16 * v);
    sum[v] = _mm512_setzero_ps();
  }
  for (int64_t n = 0; n < N; ++n) {
    float* row = S + n * R;
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      const __m512 e = ExpNonPositive(_mm512_sub_ps(_mm512_load_ps(row + 16 * v), mx[v]));
      sum[v] = _mm512_add_ps(sum[v], e);  // sequential in n, as the reference
      _mm512_store_ps(row + 16 * v, e);
    }
  }
  for (int v = 0; v < NV; ++v) inv[v] = _mm512_div_ps(_mm512_set1_ps(1.0f), sum[v]);
  const __m512i interleave = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7,
                                              22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  if (!pl.split) {
    for (int64_t k2 = 0; k2 < KN2; ++k2) {
      const float* r0 = S + 2 * k2 * R;
      const bool pad = 2 * k2 + 1 >= N;  // odd N: the last pair is (key N-1, 0); its V row is zero
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) {
        const __m512 e0 = _mm512_mul_ps(_mm512_load_ps(r0 + 16 * v), inv[v]);
        const __m512 e1 = pad ? _mm512_setzero_ps() : _mm512_mul_ps(_mm512_load_ps(r0 + R + 16 * v), inv[v]);
        _mm512_store_si512(P + 2 * (k2 * R + 16 * v), PairBf16(e0, e1, interleave));
      }
    }
  } else {
    // BF16x3: P' = [P_hi | P_hi* | P_lo] over 3N keys (split_operands.h), p = e * inv rounded
    // to hi + lo exactly as RoundSplit: hi = bf16(p), lo = bf16(p - hi); a NaN p has hi* = lo = 0.
    for (int64_t k2 = 0; k2 < KN2; ++k2) {
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) {
        __m512 x[2];
        for (int h = 0; h < 2; ++h) {
          const int64_t j = 2 * k2 + h;
          if (j >= NP) {  // odd 3N: the last pair is (key 3N-1, 0)
            x[h] = _mm512_setzero_ps();
            continue;
          }
          const __m512 pv = _mm512_mul_ps(_mm512_load_ps(S + (j % N) * R + 16 * v), inv[v]);
          const int seg = static_cast<int>(j / N);
          if (seg == 0) {
            x[h] = pv;  // PairBf16 rounds it to hi
          } else {
            const __m512 hi = RoundBf16V(pv);
            const __mmask16 finite = _mm512_cmplt_ps_mask(_mm512_abs_ps(pv), _mm512_set1_ps(INFINITY));
            x[h] = _mm512_maskz_mov_ps(finite, seg == 1 ? hi : _mm512_sub_ps(pv, hi));
          }
        }
        _mm512_store_si512(P + 2 * (k2 * R + 16 * v), PairBf16(x[0], x[1], interleave));
      }
    }
  }

  // 3. O = P V.
  PvCtx pt;
  pt.ldp = R;
  pt.K2 = KN2;
  pt.pstride = v_pstride;
  pt.o_rs = a.o_rs;
  pt.o_cs = a.o_cs;
  const size_t o_elem = pl.split ? sizeof(split_t) : sizeof(bf16_t);
  char* Ob = static_cast<char*>(pl.O) + (pl.o_offsets[bi] + m0 * a.o_rs) * o_elem;
  pt.split = pl.split;
  const bf16_t* pv = pl.packed_v[bi];
  for (int64_t r = 0; r < rows; r += kPvMR) {
    const int mr = static_cast<int>(Min64(kPvMR, rows - r));
    pt.p = P + 2 * r;
    for (int64_t j0 = 0; j0 < Dv; j0 += 16 * kPvNV) {
      pt.ncols = Min64(16 * kPvNV, Dv - j0);
      pt.b = pv + (j0 / kPanelCols) * v_pstride;
      pt.o = Ob + (r * a.o_rs + j0 * a.o_cs) * o_elem;
      SelectPv(mr, static_cast<int>((pt.ncols + 15) / 16))(pt);
    }
  }
}

}  // namespace

void PackKeyTiles(const bf16_t* K, int64_t N, int64_t D, int64_t rs, int64_t cs, bf16_t* dst, int64_t t0, int64_t t1) {
  const int64_t K2 = (D + 1) / 2, full = D / 2;
  // Rows contiguous along D: pair k2 of the tile's 12 keys is one 32-bit word per key.
  const bool gather_ok = cs == 1 && rs > 0 && GatherOffsetsFit(rs, sizeof(bf16_t), kKeyTile, 4);  // 32-bit lane offsets
  const __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0, 0, 0, 0),
                                         _mm512_set1_epi32(static_cast<int32_t>(gather_ok ? rs * 2 : 0)));
  for (int64_t t = t0; t < t1; ++t) {
    bf16_t* out = dst + t * K2 * 2 * kKeyTile;
    const int64_t n0 = t * kKeyTile, nn = Min64(kKeyTile, N - n0);
    int64_t k2 = 0;
    if (gather_ok) {
      const __mmask16 m = static_cast<__mmask16>((1u << nn) - 1u);
      const bf16_t* base = K + n0 * rs;
      for (; k2 < full; ++k2) {
        const __m512i g = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), m, idx, base + 2 * k2, 1);
        _mm512_mask_storeu_epi32(out + 2 * kKeyTile * k2, 0x0fff, g);
      }
    }
    for (; k2 < K2; ++k2)
      for (int r = 0; r < kKeyTile; ++r) {
        const int64_t n = n0 + r;
        const bf16_t* src = K + n * rs;
        bf16_t* o = out + 2 * (k2 * kKeyTile + r);
        o[0] = n < N ? src[2 * k2 * cs] : bf16_t(0);
        o[1] = (n < N && 2 * k2 + 1 < D) ? src[(2 * k2 + 1) * cs] : bf16_t(0);
      }
  }
}

void AttentionUnits(const AttentionPlan& pl, const AttentionScratch& sc, int64_t u0, int64_t u1) {
  const int64_t M = pl.args->M, R = pl.block_rows;
  for (int64_t u = u0; u < u1; ++u) {
    const int64_t bi = u / pl.blocks, m0 = (u % pl.blocks) * R;
    const int64_t rows = Min64(R, M - m0);
    switch ((rows + 15) / 16) {
      case 1: Unit<1>(pl, sc, bi, m0, rows); break;
      case 2: Unit<2>(pl, sc, bi, m0, rows); break;
      case 3: Unit<3>(pl, sc, bi, m0, rows); break;
      default: Unit<4>(pl, sc, bi, m0, rows); break;
    }
  }
}

}  // namespace phoenix::kernels::avx512
