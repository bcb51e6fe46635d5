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
// the zmm state, and the environment variable PHOENIX_KERNEL_ISA is not "portable", "avx2" or
// "avx_vnni" (set it to force a lesser path, e.g. to compare the paths).
bool UseAvx512Bf16();

// True when the AVX2 kernels may run (AVX2 + FMA + F16C, OS support for the ymm state) and
// PHOENIX_KERNEL_ISA is not "portable". Kernels with an AVX2 body use it when UseAvx512Bf16() is
// false; the others fall back to the portable reference.
bool UseAvx2Fma();

// True when the INT8 MatMul may run its AVX-512 VNNI body (vpdpbusd zmm): AVX512F+BW+VL+DQ+VNNI,
// FMA, F16C, OS support for the zmm state, and PHOENIX_KERNEL_ISA is unset, "auto" or
// "avx512_vnni" (cpu_features.cc orders the values: portable < avx2 < avx_vnni < avx512_bf16 <
// avx512_vnni; a value caps the paths at that one).
bool UseAvx512Vnni();

// True when the INT8 MatMul may run its AVX-VNNI body (VEX vpdpbusd ymm, with the AVX2 epilogue):
// UseAvx2Fma() and AVX-VNNI, and PHOENIX_KERNEL_ISA is not "portable" or "avx2". The INT8 MatMul
// prefers the AVX-512 VNNI body when UseAvx512Vnni() is true.
bool UseAvxVnni();

// Name of the INT8 MatMul's path in use: "avx512_vnni", "avx_vnni", "avx2" or "portable".
const char* Int8IsaName();

// Name of the kernel paths in use, for logs: the PHOENIX_KERNEL_ISA value that selects them,
// "avx512_vnni" (INT8 through vpdpbusd zmm; the BF16 kernels on AVX-512 BF16 where the CPU has
// it, else on AVX2), "avx512_bf16" (AVX-512 BF16 kernels, INT8 on AVX-VNNI or AVX2), "avx_vnni"
// (AVX2 kernels, INT8 through VEX vpdpbusd ymm), "avx2" or "portable". Int8IsaName() names the
// INT8 path, UseAvx512Bf16() says which BF16 kernels run.
const char* KernelIsaName();

}  // namespace phoenix
