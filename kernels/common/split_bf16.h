// The BF16x3 element: a value carried as a PAIR of BF16 numbers, hi = bf16(x) and
// lo = bf16(x - hi), 16 significant bits instead of 8. Kernels store the pair as the FP32 sum
// hi + lo, which is exact (|lo| <= ulp(hi) / 2) and from which both halves come back exactly:
// hi = bf16(v), lo = v - hi. The AIE kernels keep the two BF16 planes; the numbers are the same.
//
// Why it exists: a few positions of Whisper's encoder carry "massive activations" (one channel
// near 150) that the last layer cancels; with 8-bit significands that cancellation leaves
// cosine 0.76-0.89 against FP32 at those positions (kernels/README.md, "Precision"). BF16x3 runs
// every matmul as hi*hi + hi*lo + lo*hi on the same BF16 MACs (3x the MACs).
//
// Only a struct here (no functions), so AVX-512 translation units can include it safely.
#pragma once

namespace phoenix {

struct split_t {
  float v;  // hi + lo, exactly
};
static_assert(sizeof(split_t) == 4, "split_t is stored as one FP32");

}  // namespace phoenix
