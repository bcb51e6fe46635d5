// The dot-product peak microbenchmark (peak.h) and its C export.
//
// Each measurement runs 12 independent accumulators (registers 0-11) through the instruction in
// inline assembly, so the loop is throughput-bound on the instruction itself (latency <= 6
// cycles at 2 per cycle), whatever the compiler flags of this file (this file is baseline
// x86-64: the assembler takes any instruction); an instruction runs only when cpuid and the OS
// say it exists.
#include "common/peak.h"

#include <time.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>

#include "common/cpu_features.h"

namespace phoenix {
namespace {

// 12 accumulators: reg 0..11 += f(reg 12, reg 13); R is the register prefix (ymm / zmm).
#define PHX_BLOCK(op, R)                                                                          \
  op " %%" R "12, %%" R "13, %%" R "0\n\t" op " %%" R "12, %%" R "13, %%" R "1\n\t"                \
  op " %%" R "12, %%" R "13, %%" R "2\n\t" op " %%" R "12, %%" R "13, %%" R "3\n\t"                \
  op " %%" R "12, %%" R "13, %%" R "4\n\t" op " %%" R "12, %%" R "13, %%" R "5\n\t"                \
  op " %%" R "12, %%" R "13, %%" R "6\n\t" op " %%" R "12, %%" R "13, %%" R "7\n\t"                \
  op " %%" R "12, %%" R "13, %%" R "8\n\t" op " %%" R "12, %%" R "13, %%" R "9\n\t"                \
  op " %%" R "12, %%" R "13, %%" R "10\n\t" op " %%" R "12, %%" R "13, %%" R "11\n\t"
// 6 products into regs 0..5, each added into one of 6 accumulators 6..11, twice: 12 of each.
#define PHX_PAIRS(mul, add)                                                                        \
  mul " %%ymm12, %%ymm13, %%ymm0\n\t" add " %%ymm0, %%ymm6, %%ymm6\n\t"                            \
  mul " %%ymm12, %%ymm13, %%ymm1\n\t" add " %%ymm1, %%ymm7, %%ymm7\n\t"                            \
  mul " %%ymm12, %%ymm13, %%ymm2\n\t" add " %%ymm2, %%ymm8, %%ymm8\n\t"                            \
  mul " %%ymm12, %%ymm13, %%ymm3\n\t" add " %%ymm3, %%ymm9, %%ymm9\n\t"                            \
  mul " %%ymm12, %%ymm13, %%ymm4\n\t" add " %%ymm4, %%ymm10, %%ymm10\n\t"                          \
  mul " %%ymm12, %%ymm13, %%ymm5\n\t" add " %%ymm5, %%ymm11, %%ymm11\n\t"
#define PHX_ZERO_ACC                                                                               \
  "vpxor %%xmm0, %%xmm0, %%xmm0\n\t vmovdqa %%ymm0, %%ymm1\n\t vmovdqa %%ymm0, %%ymm2\n\t"            \
  "vmovdqa %%ymm0, %%ymm3\n\t vmovdqa %%ymm0, %%ymm4\n\t vmovdqa %%ymm0, %%ymm5\n\t"                 \
  "vmovdqa %%ymm0, %%ymm6\n\t vmovdqa %%ymm0, %%ymm7\n\t vmovdqa %%ymm0, %%ymm8\n\t"                 \
  "vmovdqa %%ymm0, %%ymm9\n\t vmovdqa %%ymm0, %%ymm10\n\t vmovdqa %%ymm0, %%ymm11\n\t"
#define PHX_CLOBBERS "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", \
                     "xmm11", "xmm12", "xmm13", "cc", "memory"
// The whole loop is one asm block (nothing of the compiler's in between); the sources hold
// 0x3f803f80 in every 32-bit word: 1.0f as FP32 (1.0039), BF16 pairs (1.0, 1.0), small integers,
// so no Inf, NaN or denormal ever enters the pipes. The accumulators start at 0; vzeroupper
// leaves no dirty upper state behind.
#define PHX_LOOP(R, body)                                                                          \
  do {                                                                                             \
    static const uint32_t kSource = 0x3f803f80u;                                                   \
    asm volatile(PHX_ZERO_ACC "vpbroadcastd %1, %%" R "12\n\t vpbroadcastd %1, %%" R "13\n\t"       \
                 "1:\n\t" body "dec %0\n\t jnz 1b\n\t vzeroupper"                                  \
                 : "+r"(n)                                                                         \
                 : "m"(kSource)                                                                    \
                 : PHX_CLOBBERS);                                                                  \
  } while (0)

void LoopFma(int64_t n) { PHX_LOOP("ymm", PHX_BLOCK("vfmadd231ps", "ymm")); }
void LoopMulAdd(int64_t n) { PHX_LOOP("ymm", PHX_PAIRS("vmulps", "vaddps") PHX_PAIRS("vmulps", "vaddps")); }
void LoopMaddwd(int64_t n) { PHX_LOOP("ymm", PHX_PAIRS("vpmaddwd", "vpaddd") PHX_PAIRS("vpmaddwd", "vpaddd")); }
void LoopDpbf16(int64_t n) { PHX_LOOP("zmm", PHX_BLOCK("vdpbf16ps", "zmm")); }
void LoopDpbusd(int64_t n) { PHX_LOOP("zmm", PHX_BLOCK("vpdpbusd", "zmm")); }
void LoopDpbusdVex(int64_t n) { PHX_LOOP("ymm", PHX_BLOCK("%{vex%} vpdpbusd", "ymm")); }  // AVX-VNNI ({vex}: not the EVEX form)

// Operations per call of `loop` with n = 1 (12 instructions of `ops` each), timed over about
// `seconds`: the best of 5 rounds (other processes only ever slow a round down).
// Timed in this thread's CPU time, so that other processes on the machine (which take wall time
// from it, not cycles) do not lower the figure.
double ThreadSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

double Rate(void (*loop)(int64_t), double ops_per_iteration, double seconds) {
  loop(1000);  // warm up (and wake the vector unit)
  int64_t n = 1000;
  double best = 0;
  for (int round = 0; round < 5; ++round) {
    for (;;) {
      const double t0 = ThreadSeconds();
      loop(n);
      const double dt = ThreadSeconds() - t0;
      if (dt >= seconds / 5 || n > (int64_t{1} << 40)) {
        best = dt > 0 && n * ops_per_iteration / dt > best ? n * ops_per_iteration / dt : best;
        break;
      }
      n *= 2;
    }
  }
  return best / 1e9;
}

}  // namespace

PeakPerCore MeasurePeakPerCore(double seconds) {
  const CpuFeatures& f = GetCpuFeatures();
  PeakPerCore p;
  const bool avx2 = f.os_avx && f.avx2 && f.fma;
  const bool avx512 = f.os_avx512 && f.avx512f;
  if (avx2) {
    p.fp32_fma = Rate(&LoopFma, 12 * 8 * 2, seconds);       // 8 lanes x (mul + add)
    p.fp32_muladd = Rate(&LoopMulAdd, 12 * 8 * 2, seconds);  // 12 mul + 12 add = 12 x 8 products
    p.int16_madd = Rate(&LoopMaddwd, 12 * 16 * 2, seconds);  // 16 products per vpmaddwd
  }
  if (avx512 && f.avx512bf16) p.bf16_dot = Rate(&LoopDpbf16, 12 * 32 * 2, seconds);  // 32 products
  if (avx512 && f.avx512vnni) p.int8_dot = Rate(&LoopDpbusd, 12 * 64 * 2, seconds);  // 64 products
  if (avx2 && f.avx_vnni) p.int8_dot_ymm = Rate(&LoopDpbusdVex, 12 * 32 * 2, seconds);  // 32 products
  return p;
}

}  // namespace phoenix

namespace phoenix {

std::string PeakJson() {
  static std::once_flag once;
  static std::string* json = new std::string();  // never destroyed: safe at exit
  std::call_once(once, [] {
    const PeakPerCore p = MeasurePeakPerCore(0.05);
    const bool avx512 = UseAvx512Bf16(), avx2 = UseAvx2Fma();
    // AVX2: the FMA tile (its multiply-then-add form runs only where a product is inexact)
    const char* bf16 = avx512 ? "\"bf16_dot\"" : avx2 ? "\"fp32_fma\"" : "null";
    const char* int8 = UseAvx512Vnni() ? "\"int8_dot\"" : UseAvxVnni() ? "\"int8_dot_ymm\"" : avx2 ? "\"int16_madd\"" : "null";
    char text[640];
    std::snprintf(text, sizeof text,
                  "{\"kernel_isa\": \"%s\", \"bf16_kernels\": %s, \"int8_kernels\": %s, \"per_core\": "
                  "{\"fp32_fma\": %.1f, \"fp32_muladd\": %.1f, \"bf16_dot\": %.1f, \"int8_dot\": %.1f, "
                  "\"int8_dot_ymm\": %.1f, \"int16_madd\": %.1f}}",
                  KernelIsaName(), bf16, int8, p.fp32_fma, p.fp32_muladd, p.bf16_dot, p.int8_dot, p.int8_dot_ymm,
                  p.int16_madd);
    *json = text;
  });
  return *json;
}

}  // namespace phoenix
