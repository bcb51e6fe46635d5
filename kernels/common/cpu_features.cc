#include "common/cpu_features.h"

#include <cpuid.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace phoenix {
namespace {

uint64_t Xgetbv0() {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

CpuFeatures Detect() {
  CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = (c >> 27) & 1;
  f.fma = (c >> 12) & 1;
  f.f16c = (c >> 29) & 1;
  if (osxsave) {
    const uint64_t xcr0 = Xgetbv0();
    f.os_avx = (xcr0 & 0x6) == 0x6;             // xmm, ymm
    f.os_avx512 = (xcr0 & 0xe6) == 0xe6;        // + opmask, zmm_hi256, hi16_zmm
  }
  if (__get_cpuid_max(0, nullptr) >= 7) {
    __cpuid_count(7, 0, a, b, c, d);
    f.avx2 = (b >> 5) & 1;
    f.avx512f = (b >> 16) & 1;
    f.avx512dq = (b >> 17) & 1;
    f.avx512bw = (b >> 30) & 1;
    f.avx512vl = (b >> 31) & 1;
    f.avx512vnni = (c >> 11) & 1;
    __cpuid_count(7, 1, a, b, c, d);
    f.avx_vnni = (a >> 4) & 1;
    f.avx512bf16 = (a >> 5) & 1;
  }
#endif
  return f;
}

// PHOENIX_KERNEL_ISA: unset or "auto" (the best path); or a path name, which caps the kernels
// at that path (a path the CPU lacks is never used), least to most capable:
//   "portable"     the scalar reference kernels;
//   "avx2"         the AVX2 kernels, INT8 through vpmaddwd;
//   "avx_vnni"     the AVX2 kernels, INT8 through VEX vpdpbusd ymm;
//   "avx512_bf16"  the AVX-512 BF16 kernels, INT8 as under "avx_vnni";
//   "avx512_vnni"  the AVX-512 BF16 kernels, INT8 through vpdpbusd zmm.
// Any other value means "auto".
int Rank(const char* isa) {
  if (std::strcmp(isa, "portable") == 0) return 0;
  if (std::strcmp(isa, "avx2") == 0) return 1;
  if (std::strcmp(isa, "avx_vnni") == 0) return 2;
  if (std::strcmp(isa, "avx512_bf16") == 0) return 3;
  if (std::strcmp(isa, "avx512_vnni") == 0) return 4;
  return 5;
}

bool EnvAllows(const char* isa) {
  const char* env = std::getenv("PHOENIX_KERNEL_ISA");
  if (!env || !*env || std::strcmp(env, "auto") == 0) return true;
  return Rank(isa) <= Rank(env);
}

bool DecideAvx2Fma() {
  const CpuFeatures& f = GetCpuFeatures();
  return EnvAllows("avx2") && f.os_avx && f.avx2 && f.fma && f.f16c;
}

bool DecideAvx512Bf16() {
  const CpuFeatures& f = GetCpuFeatures();
  if (!EnvAllows("avx512_bf16")) return false;
  return f.os_avx && f.os_avx512 && f.fma && f.f16c && f.avx2 && f.avx512f && f.avx512bw && f.avx512vl &&
         f.avx512dq && f.avx512bf16;
}

bool DecideAvx512Vnni() {
  const CpuFeatures& f = GetCpuFeatures();
  if (!EnvAllows("avx512_vnni")) return false;
  return f.os_avx && f.os_avx512 && f.fma && f.f16c && f.avx2 && f.avx512f && f.avx512bw && f.avx512vl &&
         f.avx512dq && f.avx512vnni;
}

bool DecideAvxVnni() {
  const CpuFeatures& f = GetCpuFeatures();
  return EnvAllows("avx_vnni") && DecideAvx2Fma() && f.avx_vnni;
}

}  // namespace

const CpuFeatures& GetCpuFeatures() {
  static const CpuFeatures features = Detect();
  return features;
}

bool UseAvx512Bf16() {
  static const bool use = DecideAvx512Bf16();
  return use;
}

bool UseAvx2Fma() {
  static const bool use = DecideAvx2Fma();
  return use;
}

bool UseAvx512Vnni() {
  static const bool use = DecideAvx512Vnni();
  return use;
}

bool UseAvxVnni() {
  static const bool use = DecideAvxVnni();
  return use;
}

const char* Int8IsaName() {
  return UseAvx512Vnni() ? "avx512_vnni" : UseAvxVnni() ? "avx_vnni" : UseAvx2Fma() ? "avx2" : "portable";
}

const char* KernelIsaName() {
  if (UseAvx512Vnni()) return "avx512_vnni";
  if (UseAvx512Bf16()) return "avx512_bf16";
  if (UseAvxVnni()) return "avx_vnni";
  if (UseAvx2Fma()) return "avx2";
  return "portable";
}

}  // namespace phoenix
