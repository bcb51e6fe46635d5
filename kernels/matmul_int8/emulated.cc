// Emulated INT8 MatMul: the reference (portable::MatMulInt8, the numerics of README.md step by
// step), the dispatcher (parameter checks, packed-weight cache, threads) and the packing of B
// for the AVX2 and the vpdpbusd (AVX-VNNI, AVX-512 VNNI) paths. See README.md for the contract.
#include <algorithm>
#include <cmath>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/batch_offsets.h"
#include "common/checked_size.h"
#include "common/cpu_features.h"
#include "common/parallel.h"
#include "matmul/packed_weights.h"
#include "matmul_int8/matmul_int8.h"
#include "matmul_int8/matmul_int8_internal.h"

namespace phoenix::kernels {
namespace {

// (qb - zb) of B element (k, n) of one batch, as README.md step 2: weights or quantized BF16.
struct BSource {
  const int8_t* w = nullptr;       // weights, or nullptr
  const bf16_t* x = nullptr;       // BF16 activations
  int64_t rs = 0, cs = 0;
  const Int8MatMulArgs* q = nullptr;
  int32_t operator()(int64_t k, int64_t n) const {
    if (w) {
      const int32_t zp = q->b_zero_point ? q->b_zero_point[q->b_channels == 1 ? 0 : n] : 0;
      return static_cast<int32_t>(w[k * rs + n * cs]) - zp;
    }
    return Quantize(Bf16ToF32(x[k * rs + n * cs]), q->b_act) - q->b_act.zero_point;
  }
};

// sa * sb[n] (README step 4), one FP32 multiply per column.
float ColumnScale(const Int8MatMulArgs& q, int64_t n) {
  return q.a.scale * (q.b_int8 ? q.b_scale[q.b_channels == 1 ? 0 : n] : q.b_act.scale);
}

// README steps 4-7 for one accumulator.
float Finish(const MatMulArgs& a, const Int8MatMulArgs& q, int32_t acc, float col_scale, int64_t n, float residual,
             bool has_residual) {
  float v = ApplyEpilogue(static_cast<float>(acc) * col_scale, a.alpha, a.bias, n, a.epilogue);
  if (has_residual) v += residual;
  if (q.quantize_output) v = Dequantize(Quantize(v, q.out), q.out);
  return v;
}

void CheckParams(const QuantParams& p, const char* what) {
  if (const char* why = QuantParamsRefusal(p)) throw std::invalid_argument(std::string("MatMulInt8: ") + what + " " + why);
}

void CheckArgs(const MatMulArgs& a, const Int8MatMulArgs& q, const bf16_t* B_bf16) {
  CheckParams(q.a, "A");
  if (q.quantize_output) CheckParams(q.out, "output");
  if (q.b_int8) {
    if (!q.b_scale || (q.b_channels != 1 && q.b_channels != a.N))
      throw std::invalid_argument("MatMulInt8: weight scales must be per tensor (1) or per column (N)");
  } else {
    if (!B_bf16) throw std::invalid_argument("MatMulInt8: no B (neither INT8 weights nor BF16 activations)");
    CheckParams(q.b_act, "B");
  }
  if (const char* why = Int8MatMulRefusal(a.K, q.b_int8 ? q.b_scale : nullptr, q.b_int8 ? q.b_channels : 0))
    throw std::invalid_argument(std::string("MatMulInt8: ") + why);
}

// Panels [p0, p1) of B in the AVX2 layout (matmul_int8_internal.h).
void PackInt8B(const BSource& b, int64_t K, int64_t N, int16_t* dst, int64_t p0, int64_t p1) {
  const int64_t K2 = (K + 1) / 2;
  for (int64_t p = p0; p < p1; ++p) {
    int16_t* out = dst + p * K2 * 2 * avx2::kInt8PanelCols;
    for (int64_t k2 = 0; k2 < K2; ++k2)
      for (int j = 0; j < avx2::kInt8PanelCols; ++j) {
        const int64_t n = p * avx2::kInt8PanelCols + j;
        for (int h = 0; h < 2; ++h) {
          const int64_t k = 2 * k2 + h;
          out[(k2 * avx2::kInt8PanelCols + j) * 2 + h] = static_cast<int16_t>(k < K && n < N ? b(k, n) : 0);
        }
      }
  }
}

using packing::Grow;

// One batch's B (at element offset `offset`) as the packers read it.
BSource BOf(const MatMulArgs& a, const Int8MatMulArgs& q, const bf16_t* B_bf16, int64_t offset) {
  BSource b;
  b.q = &q;
  b.rs = a.b_rs;
  b.cs = a.b_cs;
  if (q.b_int8) b.w = q.b_int8 + offset;
  else b.x = B_bf16 + offset;
  return b;
}

// B of every distinct batch, packed for one body: constant INT8 weights once per process (the
// cache is keyed by the zero points too: they are packed in), anything else into `buf` at each
// call. pack(b, K, N, dst, p0, p1) packs panels [p0, p1) of one batch's B. Sets ptrs[0 .. distinct).
template <typename Elem, typename Source, typename Pack>
void PackEveryB(const MatMulArgs& a, const Int8MatMulArgs& q, int64_t K, int64_t N, int64_t distinct,
                int64_t panels, int64_t packed, int threads, const Source& source, std::vector<Elem>& buf,
                std::vector<const Elem*>& ptrs, std::vector<std::shared_ptr<const std::vector<Elem>>>& held,
                const Pack& pack) {
  held.clear();
  if (q.b_int8 && a.b_is_constant) {
    for (int64_t bi = 0; bi < distinct; ++bi) {
      const BSource b = source(bi);
      auto data = packing::CachedPack<Elem>(b.w, q.b_zero_point, K, N, a.b_rs, a.b_cs, packed, [&](Elem* dst) {
        ParallelFor(panels, threads, [&](int64_t p0, int64_t p1) { pack(b, K, N, dst, p0, p1); });
      });
      ptrs[bi] = data->data();
      held.push_back(std::move(data));
    }
    return;
  }
  Grow(buf, static_cast<size_t>(distinct * packed));
  Elem* pb = buf.data();
  ParallelFor(distinct * panels, threads, [&](int64_t j0, int64_t j1) {
    for (int64_t j = j0; j < j1; ++j) pack(source(j / panels), K, N, pb + (j / panels) * packed, j % panels, j % panels + 1);
  });
  for (int64_t bi = 0; bi < distinct; ++bi) ptrs[bi] = pb + bi * packed;
}


void MatMulInt8Avx2(const MatMulArgs& a, const Int8MatMulArgs& q, const bf16_t* A, const bf16_t* B_bf16, bf16_t* C,
                    int num_threads) {
  struct Scratch {
    std::vector<int64_t> a_off, b_off;
    std::vector<bf16_t> a_rows;
    std::vector<int16_t> packed_b;
    std::vector<const int16_t*> b_ptrs;
    std::vector<float> col_scale;
    std::vector<std::shared_ptr<const std::vector<int16_t>>> held;
  };
  thread_local Scratch s;
  const int threads = std::max(1, num_threads);
  const int64_t batches = a.BatchCount(), M = a.M, N = a.N, K = a.K;
  Grow(s.a_off, batches);
  Grow(s.b_off, batches);
  Grow(s.b_ptrs, batches);
  const bool b_batched = MatMulBatchOffsets(a, batches, s.a_off.data(), s.b_off.data());
  // A rows with unit column stride are read in place; others are gathered (BF16, exact).
  const bf16_t* Ause = A;
  int64_t a_rs = a.a_rs;
  if (a.a_cs != 1 && K > 1) {
    Grow(s.a_rows, static_cast<size_t>(CheckedMul(CheckedMul(batches, M, "MatMulInt8 A"), K, "MatMulInt8 A")));
    bf16_t* dst = s.a_rows.data();
    const int64_t* aoff = s.a_off.data();
    ParallelFor(batches * M, threads, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t k = 0; k < K; ++k) dst[r * K + k] = A[aoff[r / M] + (r % M) * a.a_rs + k * a.a_cs];
    });
    for (int64_t bi = 0; bi < batches; ++bi) s.a_off[bi] = bi * M * K;
    Ause = dst;
    a_rs = K;
  }
  // B: (qb - zb) as int16 pairs; constant weights packed once and cached.
  const int64_t panels = (N + avx2::kInt8PanelCols - 1) / avx2::kInt8PanelCols;
  const int64_t packed = avx2::Int8PackedBElems(K, N);
  const int64_t distinct = b_batched ? batches : 1;
  CheckedMul(packed, distinct, "MatMulInt8 B");
  // (thread_local `s` must not be named inside lambdas that run on the pool's threads)
  const int64_t* boff = s.b_off.data();
  auto source = [&](int64_t bi) { return BOf(a, q, B_bf16, boff[bi]); };
  PackEveryB<int16_t>(a, q, K, N, distinct, panels, packed, threads, source, s.packed_b, s.b_ptrs, s.held, PackInt8B);
  if (!b_batched)
    for (int64_t bi = 1; bi < batches; ++bi) s.b_ptrs[bi] = s.b_ptrs[0];
  Grow(s.col_scale, static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n) s.col_scale[n] = ColumnScale(q, n);

  avx2::Int8Plan p;
  p.args = &a;
  p.a_quant = q.a;
  p.A = Ause;
  p.a_rs = a_rs;
  p.a_batch_offsets = s.a_off.data();
  p.packed_b = s.b_ptrs.data();
  p.col_scale = s.col_scale.data();
  p.quantize_output = q.quantize_output;
  p.out = q.out;
  p.C = C;
  p.m_blocks = (M + avx2::kInt8MC - 1) / avx2::kInt8MC;
  const int64_t row_units = batches * p.m_blocks, col_tiles = panels;
  p.n_chunks = row_units < 4 * threads && col_tiles > 1 ? std::min(col_tiles, (4 * threads + row_units - 1) / row_units) : 1;
  p.n_chunk_cols = (col_tiles + p.n_chunks - 1) / p.n_chunks * avx2::kInt8PanelCols;
  p.n_chunks = (N + p.n_chunk_cols - 1) / p.n_chunk_cols;
  p.units = row_units * p.n_chunks;
  const double ops = 2.0 * batches * M * N * K;
  const int use = static_cast<int>(std::max<double>(1.0, std::min<double>(threads, ops / 4e6)));
  const size_t words = static_cast<size_t>(avx2::Int8ScratchWords(p.n_chunk_cols));
  ParallelFor(p.units, use, [&](int64_t u0, int64_t u1) {
    thread_local std::vector<int32_t> scratch;
    Grow(scratch, words);
    avx2::Int8Units(p, scratch.data(), u0, u1);
  });
  s.held.clear();
}


// ---- The vpdpbusd paths (matmul_int8_internal.h, namespace vnni) -----------------------------

// Panels [p0, p1) of B in the vnni layout, with their colsum and zb' (int32, after the panels).
// qb' = (qb - zb) + zb' where zb' = zb for int8 B and zb - 128 for uint8 activations, so qb' is
// the stored int8 (weights) or the quantized value shifted into int8.
void PackVnniB(const BSource& b, int64_t K, int64_t N, int8_t* dst, int64_t p0, int64_t p1) {
  const int64_t Q = vnni::Quads(K), panels = vnni::Panels(N);
  int32_t* colsum = reinterpret_cast<int32_t*>(dst + panels * vnni::PanelBytes(K));
  int32_t* zbs = colsum + panels * vnni::kPanelCols;
  const Int8MatMulArgs& q = *b.q;
  for (int64_t p = p0; p < p1; ++p) {
    int8_t* out = dst + p * vnni::PanelBytes(K);
    for (int j = 0; j < vnni::kPanelCols; ++j) {
      const int64_t n = p * vnni::kPanelCols + j;
      int32_t zb = 0;
      if (n < N) {
        if (b.w) zb = q.b_zero_point ? q.b_zero_point[q.b_channels == 1 ? 0 : n] : 0;
        else zb = q.b_act.zero_point - (q.b_act.is_signed ? 0 : 128);
      }
      int32_t sum = 0;
      for (int64_t k4 = 0; k4 < Q; ++k4)
        for (int h = 0; h < 4; ++h) {
          const int64_t k = 4 * k4 + h;
          const int32_t v = k < K && n < N ? b(k, n) + zb : 0;  // qb' in [-128, 127]
          out[(k4 * vnni::kPanelCols + j) * 4 + h] = static_cast<int8_t>(v);
          sum += v;
        }
      colsum[p * vnni::kPanelCols + j] = sum;
      zbs[p * vnni::kPanelCols + j] = zb;
    }
  }
}

void MatMulInt8Vnni(bool zmm, const MatMulArgs& a, const Int8MatMulArgs& q, const bf16_t* A, const bf16_t* B_bf16,
                    bf16_t* C, int num_threads) {
  struct Scratch {
    std::vector<int64_t> a_off, b_off;
    std::vector<uint8_t> qa;
    std::vector<int32_t> rowsum, corr;
    std::vector<int8_t> packed_b;
    std::vector<const int8_t*> b_ptrs;
    std::vector<const int32_t*> corr_ptrs, zb_ptrs;
    std::vector<float> col_scale;
    std::vector<std::shared_ptr<const std::vector<int8_t>>> held;
  };
  thread_local Scratch s;
  const int threads = std::max(1, num_threads);
  const int64_t batches = a.BatchCount(), M = a.M, N = a.N, K = a.K;
  Grow(s.a_off, batches);
  Grow(s.b_off, batches);
  Grow(s.b_ptrs, batches);
  Grow(s.corr_ptrs, batches);
  Grow(s.zb_ptrs, batches);
  const bool b_batched = MatMulBatchOffsets(a, batches, s.a_off.data(), s.b_off.data());
  // B: s8 qb' panels + colsum + zb'; constant weights packed once and cached.
  const int64_t panels = vnni::Panels(N), npad = panels * vnni::kPanelCols;
  const int64_t packed = vnni::PackedBBytes(K, N);
  const int64_t distinct = b_batched ? batches : 1;
  CheckedMul(packed, distinct, "MatMulInt8 B");
  const int64_t* boff = s.b_off.data();
  auto source = [&](int64_t bi) { return BOf(a, q, B_bf16, boff[bi]); };
  PackEveryB<int8_t>(a, q, K, N, distinct, panels, packed, threads, source, s.packed_b, s.b_ptrs, s.held, PackVnniB);
  // corr[n] = za' (K zb'[n] - colsum[n]) modulo 2^32 (unsigned arithmetic: no signed overflow)
  const int32_t za = q.a.zero_point + (q.a.is_signed ? 128 : 0);
  Grow(s.corr, static_cast<size_t>(distinct * npad));
  bool any_zb = false;
  for (int64_t bi = 0; bi < distinct; ++bi) {
    const int32_t* colsum = reinterpret_cast<const int32_t*>(s.b_ptrs[bi] + panels * vnni::PanelBytes(K));
    const int32_t* zb = colsum + npad;
    int32_t* corr = s.corr.data() + bi * npad;
    for (int64_t n = 0; n < npad; ++n) {
      const uint32_t t = static_cast<uint32_t>(K) * static_cast<uint32_t>(zb[n]) - static_cast<uint32_t>(colsum[n]);
      corr[n] = static_cast<int32_t>(static_cast<uint32_t>(za) * t);
      any_zb |= zb[n] != 0;
    }
    s.corr_ptrs[bi] = corr;
    s.zb_ptrs[bi] = zb;
  }
  if (!b_batched)
    for (int64_t bi = 1; bi < batches; ++bi) {
      s.b_ptrs[bi] = s.b_ptrs[0];
      s.corr_ptrs[bi] = s.corr_ptrs[0];
      s.zb_ptrs[bi] = s.zb_ptrs[0];
    }
  // A: every row quantized once into qa' (u8) row panels, and its sum when some zb' is not 0;
  // the zmm body does it inside its units instead when each row belongs to one unit (one N
  // chunk): the BF16 rows are read once, right before the tiles use the panels.
  const int64_t MR = zmm ? avx512_vnni::kMR : avx_vnni::kMR;
  const int64_t m_units = (M + MR - 1) / MR, panel_bytes = vnni::APanelBytes(K, MR);
  const int64_t rows = CheckedMul(batches, M, "MatMulInt8 A");
  const int64_t tile_cols = zmm ? 2 * vnni::kPanelCols : vnni::kPanelCols;
  const int64_t row_units = batches * m_units, col_tiles = (N + tile_cols - 1) / tile_cols;
  int64_t n_chunks = row_units < 4 * threads && col_tiles > 1 ? std::min(col_tiles, (4 * threads + row_units - 1) / row_units) : 1;
  const int64_t n_chunk_cols = (col_tiles + n_chunks - 1) / n_chunks * tile_cols;
  n_chunks = (N + n_chunk_cols - 1) / n_chunk_cols;
  const bool fused = zmm && n_chunks == 1 && a.a_cs == 1;
  if (!fused) {
    Grow(s.qa, static_cast<size_t>(CheckedMul(CheckedMul(batches, m_units, "MatMulInt8 A"), panel_bytes, "MatMulInt8 A")));
    Grow(s.rowsum, static_cast<size_t>(rows));
    {
      uint8_t* qa = s.qa.data();
      int32_t* rowsum = s.rowsum.data();
      const int64_t* aoff = s.a_off.data();
      const QuantParams qp = q.a;
      auto quantize_row = zmm ? &avx512_vnni::QuantizeRowU8 : &avx_vnni::QuantizeRowU8;
      ParallelFor(rows, std::max<int>(1, std::min<int64_t>(threads, rows * K / 16384 + 1)), [&](int64_t r0, int64_t r1) {
        thread_local std::vector<bf16_t> gathered;
        for (int64_t r = r0; r < r1; ++r) {
          const int64_t bi = r / M, m = r % M;
          const bf16_t* src = A + aoff[bi] + m * a.a_rs;
          if (a.a_cs != 1) {  // gather the row (BF16, exact)
            Grow(gathered, static_cast<size_t>(K));
            for (int64_t k = 0; k < K; ++k) gathered[k] = src[k * a.a_cs];
            src = gathered.data();
          }
          uint8_t* dst = qa + (bi * m_units + m / MR) * panel_bytes + (m % MR) * 4;
          rowsum[r] = quantize_row(src, K, qp, dst);
        }
      });
    }
  }
  Grow(s.col_scale, static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n) s.col_scale[n] = ColumnScale(q, n);

  vnni::Plan p;
  p.args = &a;
  p.A = s.qa.data();
  p.rowsum = any_zb && !fused ? s.rowsum.data() : nullptr;
  p.packed_b = s.b_ptrs.data();
  p.corr = s.corr_ptrs.data();
  p.zb = s.zb_ptrs.data();
  p.col_scale = s.col_scale.data();
  p.quantize_output = q.quantize_output;
  p.out = q.out;
  p.C = C;
  p.m_units = m_units;
  p.n_chunks = n_chunks;
  p.n_chunk_cols = n_chunk_cols;
  p.units = row_units * p.n_chunks;
  p.fused_quant = fused;
  p.fused_rowsum = fused && any_zb;
  p.a_bf16 = A;
  p.a_rs = a.a_rs;
  p.a_off = s.a_off.data();
  p.a_quant = q.a;
  const double ops = 2.0 * batches * M * N * K;
  const int use = static_cast<int>(std::max<double>(1.0, std::min<double>(threads, ops / 4e6)));
  if (zmm) ParallelFor(p.units, use, [&](int64_t u0, int64_t u1) { avx512_vnni::Units(p, u0, u1); });
  else ParallelFor(p.units, use, [&](int64_t u0, int64_t u1) { avx_vnni::Units(p, u0, u1); });
  s.held.clear();
}

}  // namespace

namespace portable {

void MatMulInt8(const MatMulArgs& a, const Int8MatMulArgs& q, const bf16_t* A, const bf16_t* B_bf16, bf16_t* C,
                int num_threads) {
  const int64_t batches = a.BatchCount();
  ParallelFor(batches * a.M, num_threads, [&](int64_t r0, int64_t r1) {
    std::vector<int32_t> qa(static_cast<size_t>(a.K));
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t m = r % a.M;
      const int64_t* strides[4] = {a.a_batch_strides, a.b_batch_strides, a.c_batch_strides, a.r_batch_strides};
      int64_t off[4];
      BatchOffsets(r / a.M, a.batch_rank, a.batch_shape, 4, strides, off);
      for (int64_t k = 0; k < a.K; ++k)  // step 1: qa - za
        qa[k] = Quantize(Bf16ToF32(A[off[0] + m * a.a_rs + k * a.a_cs]), q.a) - q.a.zero_point;
      BSource b;
      b.q = &q;
      b.rs = a.b_rs;
      b.cs = a.b_cs;
      if (q.b_int8) b.w = q.b_int8 + off[1];
      else b.x = B_bf16 + off[1];
      const bf16_t* residual = static_cast<const bf16_t*>(a.residual);
      for (int64_t n = 0; n < a.N; ++n) {
        int32_t acc = 0;  // step 3: exact (K <= kMaxInt8K)
        for (int64_t k = 0; k < a.K; ++k) acc += qa[k] * b(k, n);
        const float res = residual ? Bf16ToF32(residual[off[3] + m * a.r_rs + n * a.r_cs]) : 0.0f;
        C[off[2] + m * a.c_rs + n * a.c_cs] = F32ToBf16(Finish(a, q, acc, ColumnScale(q, n), n, res, residual != nullptr));
      }
    }
  });
}

}  // namespace portable

bool Int8PathRuns(Int8Path path) {
  const CpuFeatures& f = GetCpuFeatures();
  const bool avx2 = f.os_avx && f.avx2 && f.fma && f.f16c;
  switch (path) {
    case Int8Path::kPortable: return true;
    case Int8Path::kAvx2: return avx2;
    case Int8Path::kAvxVnni: return avx2 && f.avx_vnni;
    case Int8Path::kAvx512Vnni:
      return avx2 && f.os_avx512 && f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.avx512vnni;
  }
  return false;
}

void MatMulInt8On(Int8Path path, const MatMulArgs& a, const Int8MatMulArgs& q, const bf16_t* A, const bf16_t* B_bf16,
                  bf16_t* C, int num_threads) {
  if (a.M <= 0 || a.N <= 0 || a.BatchCount() <= 0) return;
  CheckArgs(a, q, B_bf16);
  CheckedMul(CheckedMul(a.BatchCount(), a.M, "MatMulInt8"), std::max<int64_t>(a.K, 1), "MatMulInt8");
  if (!Int8PathRuns(path)) throw std::invalid_argument("MatMulInt8: this CPU cannot run the requested path");
  if (a.K <= 0 || path == Int8Path::kPortable) return portable::MatMulInt8(a, q, A, B_bf16, C, num_threads);
  if (path == Int8Path::kAvx2) return MatMulInt8Avx2(a, q, A, B_bf16, C, num_threads);
  MatMulInt8Vnni(path == Int8Path::kAvx512Vnni, a, q, A, B_bf16, C, num_threads);
}

void MatMulInt8(const MatMulArgs& a, const Int8MatMulArgs& q, const bf16_t* A, const bf16_t* B_bf16, bf16_t* C,
                int num_threads) {
  const Int8Path path = UseAvx512Vnni() ? Int8Path::kAvx512Vnni
                        : UseAvxVnni()  ? Int8Path::kAvxVnni
                        : UseAvx2Fma()  ? Int8Path::kAvx2
                                        : Int8Path::kPortable;
  MatMulInt8On(path, a, q, A, B_bf16, C, num_threads);
}

}  // namespace phoenix::kernels
