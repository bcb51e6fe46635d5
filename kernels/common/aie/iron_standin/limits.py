"""npu1 (AIE2, mlir-aie `npu1`) limits the stand-in enforces, each with its upstream source.

Kept apart from tools/phoenix_npu_tools/npu_model.py on purpose: the stand-in checks the designs that
the planner produced, so it must not share the planner's numbers by import. tests/test_iron_standin.py
checks that the two agree.
"""
KIB = 1024

L1_BYTES = 64 * KIB         # AIE2TargetModel::getLocalMemorySize() = 0x10000; the core's stack lives in it
MEMTILE_BYTES = 512 * KIB   # getMemTileSize() = 0x80000
DEFAULT_STACK = 0x400       # AIETargetModel::getDefaultCoreStackSize
SHIM_BDS = 16               # getNumBDs() for non-memtile tiles
MEMTILE_BDS = 48            # getNumBDs() for memtiles
SHIM_MM2S = SHIM_S2MM = 2   # shim DMA channels each way
CORE_S2MM = CORE_MM2S = 2   # compute-tile DMA channels each way
MEMTILE_MM2S = MEMTILE_S2MM = 6  # memtile DMA channels each way (AIE2 target model, DMA bundle 6)
QUEUE_DEPTH = 4             # tasks queued per shim DMA channel (mlir-aie PR #3734: a push onto a full queue is dropped)
WRAP_MAX = 1023             # AIEX dma_memcpy_nd verifier: "Size 0/1 exceeds the [0:1023] range" (10-bit wraps)
REPEAT_MAX = 64             # "Size 3 exceeds the [1:64] range" (the outermost, repeat dimension)
STRIDE_MAX = 1 << 20        # "Stride N exceeds the [1:1048576] range"
DMA_GRANULE = 4             # "Offsets need to be 4-byte aligned"; 32-bit DMA words
