// Run-time CPU feature detection for the kernels' ISA dispatch (cpuid + xgetbv). The library is
// built for baseline x86-64; files named *_avx512.cc are compiled with AVX-512 and are only
// called when UseAvx512Bf16() is true.
#pragma once

namespace phoenix {

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false, avx512bf16 = false;
  bool avx512vnni = false, avx_vnni = false;  // vpdpbusd on zmm / on ymm (VEX)
  bool os_avx = false, os_avx512 = false;  // XCR0 says the OS saves ymm / zmm + opmask state
};

const CpuFeatures& GetCpuFeatures();

// True when the AVX-512 kernels may run: AVX512F+BW+VL+DQ+BF16 (vdpbf16ps), FMA, OS support for
// the zmm state, and the environment variable PHOENIX_KERNEL_ISA is neither "portable" nor "avx2"
// (set it to force a lesser path, e.g. to compare the paths).
bool UseAvx512Bf16();

// True when the AVX2 kernels may run (AVX2 + FMA + F16C, OS support for the ymm state) and
// PHOENIX_KERNEL_ISA is not "portable". Kernels with an AVX2 body use it when UseAvx512Bf16() is
// false; the others fall back to the portable reference.
bool UseAvx2Fma();

// Name of the best kernel path in use ("avx512_bf16", "avx2" or "portable"), for logs.
const char* KernelIsaName();

}  // namespace phoenix
