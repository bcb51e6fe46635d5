// Emulated MatMul, reference form: FP32 accumulation over K in order, epilogue in FP32, then the
// residual added in FP32 and ONE BF16 rounding (the AIE kernel adds the residual into the accumulator).
#include "common/parallel.h"
#include "matmul/matmul.h"

namespace phoenix::kernels {

void MatMul(const MatMulArgs& a, const bf16_t* A, const bf16_t* B, bf16_t* C, int num_threads) {
  const int64_t batches = a.BatchCount();
  const int64_t rows = batches * a.M;
  ParallelFor(rows, num_threads, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      int64_t b = r / a.M, m = r % a.M;
      int64_t ao = 0, bo = 0, co = 0, ro = 0;
      for (int d = a.batch_rank - 1; d >= 0; --d) {
        int64_t i = b % a.batch_shape[d];
        b /= a.batch_shape[d];
        ao += i * a.a_batch_strides[d];
        bo += i * a.b_batch_strides[d];
        co += i * a.c_batch_strides[d];
        ro += i * a.r_batch_strides[d];
      }
      const bf16_t* arow = A + ao + m * a.a_rs;
      for (int64_t n = 0; n < a.N; ++n) {
        float acc = 0.0f;
        const bf16_t* bcol = B + bo + n * a.b_cs;
        for (int64_t k = 0; k < a.K; ++k) acc += Bf16ToF32(arow[k * a.a_cs]) * Bf16ToF32(bcol[k * a.b_rs]);
        float v = ApplyEpilogue(acc, a.alpha, a.bias, n, a.epilogue);
        if (a.residual) v += Bf16ToF32(a.residual[ro + m * a.r_rs + n * a.r_cs]);
        C[co + m * a.c_rs + n * a.c_cs] = F32ToBf16(v);
      }
    }
  });
}

// The reference path keeps no packed copies.
void ReleasePackedWeights(const void*, size_t) {}

}  // namespace phoenix::kernels
