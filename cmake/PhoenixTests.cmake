# The C++ test tier (CTest). Included by CMakeLists.txt when PHOENIX_BUILD_TESTS is ON.
#
#   phoenix_test(NAME SOURCE [MORE_SOURCES...])
#
# adds one test: an executable built from SOURCE (and any further sources, e.g. the provider
# files a provider test needs: provider/ and the ONNX Runtime headers are on its include path)
# with the project's compile flags (phoenix_flags: the sanitizers too under
# -DPHOENIX_SANITIZE=ON), linked with the kernels (phoenix_kernels). A test exits 0 when it passes, 77 when it has nothing to check on this
# machine (CTest reports it as skipped, with the reason the test printed), anything else when it
# fails. Kernel tests that compare an ISA-specific path with the reference also run with
# PHOENIX_KERNEL_ISA=avx2, so a CPU with AVX-512 checks its AVX2 path as well.

function(phoenix_test name source)
  add_executable(${name} ${source} ${ARGN})
  target_link_libraries(${name} PRIVATE phoenix_kernels phoenix_flags)
  target_include_directories(${name} PRIVATE "${CMAKE_SOURCE_DIR}/kernels" "${CMAKE_SOURCE_DIR}/provider"
                                             "${ONNXRUNTIME_INCLUDE_DIR}")
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES SKIP_RETURN_CODE 77 LABELS "cpp")
endfunction()

# A provider test (provider/tests/): the same, linked with the provider's objects too.
function(phoenix_provider_test name source)
  phoenix_test(${name} ${source} ${ARGN})
  target_link_libraries(${name} PRIVATE phoenix_provider)
endfunction()

# The same test binary once more with the AVX2 path forced (PHOENIX_KERNEL_ISA=avx2).
function(phoenix_test_isa_variants name)
  add_test(NAME ${name}.avx2 COMMAND ${name})
  set_tests_properties(${name}.avx2 PROPERTIES SKIP_RETURN_CODE 77 LABELS "cpp" ENVIRONMENT "PHOENIX_KERNEL_ISA=avx2")
endfunction()

# Kernels: each kernel's tests live in its folder (kernels/<op>/tests/).
phoenix_test(test_matmul kernels/matmul/tests/test_matmul.cc)
phoenix_test_isa_variants(test_matmul)
phoenix_test(test_attention kernels/attention/tests/test_attention.cc)
phoenix_test_isa_variants(test_attention)
phoenix_test(test_layernorm kernels/layernorm/tests/test_layernorm.cc)
phoenix_test_isa_variants(test_layernorm)
phoenix_test(test_softmax kernels/softmax/tests/test_softmax.cc)
phoenix_test(test_gelu kernels/gelu/tests/test_gelu.cc)
phoenix_test(test_elementwise kernels/elementwise/tests/test_elementwise.cc)
phoenix_test(test_im2col kernels/im2col/tests/test_im2col.cc)
phoenix_test(test_matmul_int8 kernels/matmul_int8/tests/test_matmul_int8.cc)
phoenix_test(test_fake_quant kernels/fake_quant/tests/test_fake_quant.cc)
phoenix_test_isa_variants(test_matmul_int8)
# The INT8 paths: each PHOENIX_KERNEL_ISA value (the default run takes the best).
foreach(isa avx_vnni avx512_bf16 avx512_vnni portable)
  add_test(NAME test_matmul_int8.${isa} COMMAND test_matmul_int8)
  set_tests_properties(test_matmul_int8.${isa} PROPERTIES SKIP_RETURN_CODE 77 LABELS "cpp" ENVIRONMENT "PHOENIX_KERNEL_ISA=${isa}")
endforeach()
phoenix_test(test_kernel_offsets kernels/common/tests/test_offsets.cc)
phoenix_test(test_peak kernels/common/tests/test_peak.cc)

# Provider: view algebra, buffer planning and validation, region finding, GELU patterns, shape
# inference and lowering.
phoenix_provider_test(test_views provider/tests/test_views.cc)
phoenix_provider_test(test_plan provider/tests/test_plan.cc)
phoenix_provider_test(test_regions provider/tests/test_regions.cc)
phoenix_provider_test(test_gelu_patterns provider/tests/test_gelu_patterns.cc)
phoenix_provider_test(test_shapes provider/tests/test_shapes.cc)
# The XRT device's decisions that need no XRT: run states, context cache, mode selection.
phoenix_test(test_npu_bringup provider/tests/test_npu_bringup.cc)
# The NPU INT8 MatMul's routing (Manifest::Find) and stage parameters (int8_params.h).
phoenix_provider_test(test_npu_int8 provider/tests/test_npu_int8.cc)
# The compiled-model (EPContext) compatibility string and its judgement.
phoenix_provider_test(test_compat_info provider/tests/test_compat_info.cc)

# The kernel speed bench (not a test): kernels/bench/run.sh builds and runs it.
add_executable(kernel_bench kernels/bench/kernel_bench.cc)
target_link_libraries(kernel_bench PRIVATE phoenix_kernels phoenix_flags)
