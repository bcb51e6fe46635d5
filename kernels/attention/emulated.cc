// Emulated fused attention, reference form (see attention.h for the numerics): one query row
// at a time, scores in FP32 in a scratch row, softmax, P rounded to BF16, then P . V.
#include <cmath>
#include <vector>

#include "attention/attention.h"
#include "common/parallel.h"

namespace phoenix::kernels {

void Attention(const AttentionArgs& a, const bf16_t* Q, const bf16_t* K, const bf16_t* V, bf16_t* O,
               int num_threads) {
  const int64_t batches = a.BatchCount();
  ParallelFor(batches * a.M, num_threads, [&](int64_t r0, int64_t r1) {
    std::vector<float> s(static_cast<size_t>(a.N));
    std::vector<float> p(static_cast<size_t>(a.N));
    for (int64_t r = r0; r < r1; ++r) {
      int64_t b = r / a.M;
      const int64_t m = r % a.M;
      int64_t qo = 0, ko = 0, vo = 0, oo = 0;
      for (int d = a.batch_rank - 1; d >= 0; --d) {
        const int64_t i = b % a.batch_shape[d];
        b /= a.batch_shape[d];
        qo += i * a.q_batch_strides[d];
        ko += i * a.k_batch_strides[d];
        vo += i * a.v_batch_strides[d];
        oo += i * a.o_batch_strides[d];
      }
      const bf16_t* q = Q + qo + m * a.q_rs;
      float mx = -INFINITY;
      bool nan = false;
      for (int64_t n = 0; n < a.N; ++n) {
        const bf16_t* k = K + ko + n * a.k_rs;
        float acc = 0.0f;
        for (int64_t d = 0; d < a.D; ++d) acc += Bf16ToF32(q[d * a.q_cs]) * Bf16ToF32(k[d * a.k_cs]);
        s[n] = a.scale * acc;
        nan |= std::isnan(s[n]);
        mx = s[n] > mx ? s[n] : mx;
      }
      float sum = 0.0f;
      for (int64_t n = 0; n < a.N; ++n) {
        p[n] = KernelExp(s[n] - mx);
        sum += p[n];
      }
      const float inv = 1.0f / sum;
      for (int64_t n = 0; n < a.N; ++n) p[n] = nan ? NAN : Bf16ToF32(F32ToBf16(p[n] * inv));
      bf16_t* o = O + oo + m * a.o_rs;
      for (int64_t j = 0; j < a.Dv; ++j) {
        float acc = 0.0f;
        for (int64_t n = 0; n < a.N; ++n) acc += p[n] * Bf16ToF32(V[vo + n * a.v_rs + j * a.v_cs]);
        o[j * a.o_cs] = F32ToBf16(acc);
      }
    }
  });
}

}  // namespace phoenix::kernels
