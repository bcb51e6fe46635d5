# Included by kernels/Makefile and by every kernel folder's Makefile (kernels/<op>/aie/Makefile):
# the toolchain pinned in toolchain.json (mlir-aie 1.4.1's C++ aiecc, Peano llvm-aie
# 21.0.0.2026080301+c9c5ecb7), how it is found, and the rules of one kernel folder.
# NOT YET RUN with the toolchain: this repository's CI has neither; `make -n` is what is checked here.
#
# A kernel folder's Makefile sets DESIGN (its design.py) and KERNEL_SOURCES, then includes this.
# Like mlir-aie's programming examples it builds into ./build of the directory make runs in:
#
#   make -f kernels/layernorm/aie/Makefile            # each manifest LayerNorm: xclbin, insts, host test
#   make -f kernels/layernorm/aie/Makefile run        # runs the host tests on the NPU (77 = no NPU)
#   make -f ... KERNEL_NAMES=PHX_LN_1500x512          # one manifest stage only
#
# Python: the one with the developer tools installed (phoenix-npu-tools: its planner writes the
# design parameters file, build/design_params.json, which is all the designs read; see
# design_params.py) and, to build, mlir_aie and llvm-aie: by default the repository's .venv
# (scripts/setup.sh).
COMMON_AIE := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
KERNELS_DIR := $(abspath $(COMMON_AIE)/../..)
REPO_PYTHON := $(abspath $(KERNELS_DIR)/../.venv/bin/python)
PYTHON ?= $(if $(wildcard $(REPO_PYTHON)),$(REPO_PYTHON),python3)

# Every value below is computed once per make run (":="; "?=" would re-run the shell at each use).
PIN = $(shell $(PYTHON) -c "import json,sys; print(json.load(open('$(COMMON_AIE)/toolchain.json'))$(1))")
MLIR_AIE_WANT := $(call PIN,['mlir_aie']['version'])
LLVM_AIE_WANT := $(call PIN,['llvm_aie']['version'])
MLIR_AIE_PIP := $(call PIN,['mlir_aie']['pip']) -f $(call PIN,['mlir_aie']['find_links'])
LLVM_AIE_PIP := '$(call PIN,['llvm_aie']['pip'])' -f $(call PIN,['llvm_aie']['find_links'])
# Installed packages, found the way pip records them (llvm-aie is not importable: its payload is
# the folder llvm-aie/ next to its dist-info).
MLIR_AIE_HAVE := $(shell $(PYTHON) -m pip show mlir_aie 2>/dev/null | sed -n 's/^Version: //p')
LLVM_AIE_SHOW := $(shell $(PYTHON) -m pip show llvm-aie 2>/dev/null | sed -n 's/^Version: /V=/p; s/^Location: /L=/p')
LLVM_AIE_HAVE := $(patsubst V=%,%,$(filter V=%,$(LLVM_AIE_SHOW)))
ifndef PEANO_INSTALL_DIR
PEANO_INSTALL_DIR := $(patsubst L=%,%,$(filter L=%,$(LLVM_AIE_SHOW)))/llvm-aie
endif
ifndef MLIR_AIE_DIR
MLIR_AIE_DIR := $(shell $(PYTHON) -c "from aie.utils.config import root_path; print(root_path())" 2>/dev/null)
endif
ifndef AIECC
AIECC := $(shell command -v aiecc 2>/dev/null)
endif
MANIFEST ?= $(KERNELS_DIR)/manifest.json
# The planner's design parameters, written at parse time (a design's --list needs them to name
# its stages) into ./build of the directory make runs in; the designs import no Python package.
PARAMS ?= build/design_params.json
ifneq ($(MAKECMDGOALS),clean)
PARAMS_WRITTEN := $(shell mkdir -p $(dir $(PARAMS)) && $(PYTHON) -m phoenix_npu.cli -q plan --manifest $(MANIFEST) --write-params $(PARAMS) >/dev/null && echo yes)
ifneq ($(PARAMS_WRITTEN),yes)
$(error could not write the design parameters $(PARAMS) (python: $(PYTHON)): run `$(PYTHON) -m phoenix_npu.cli plan --manifest $(MANIFEST) --write-params $(PARAMS)` to see why; it needs the developer tools (scripts/setup.sh, or pip install ./tools))
endif
endif

TOOL_ENV = PEANO_INSTALL_DIR=$(PEANO_INSTALL_DIR) MLIR_AIE_DIR=$(MLIR_AIE_DIR) AIECC=$(AIECC)

# Host tests (test.cpp): XRT >= the pinned minimum, as AMD's xdna-driver installs it.
XILINX_XRT ?= /opt/xilinx/xrt
XRT_INCLUDE ?= $(XILINX_XRT)/include
XRT_LIB ?= $(XILINX_XRT)/lib
HOST_CXXFLAGS ?= -std=c++17 -O2 -Wall -Wextra -Wno-unused-parameter
HOST_INCLUDES = -isystem $(XRT_INCLUDE) -I$(KERNELS_DIR) -I$(COMMON_AIE)
HOST_LIBS = -L$(XRT_LIB) -Wl,-rpath,$(XRT_LIB) -lxrt_coreutil -lpthread
# The reference the host tests compare with: the project's emulated kernels (their portable::
# forms), compiled as kernels/bench/run.sh and CMakeLists.txt compile them (ISA files with their
# ISA flags; the linker takes only the objects a test needs).
REF_SRCS := $(wildcard $(KERNELS_DIR)/common/*.cc $(KERNELS_DIR)/*/emulated*.cc)
REF_OBJS := $(patsubst $(KERNELS_DIR)/%.cc,build/ref/%.o,$(REF_SRCS))
AVX512_FLAGS := -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512bf16 -mfma -mf16c
AVX2_FLAGS := -mavx2 -mfma -mf16c
isa_flags = $(if $(findstring _avx512,$(notdir $(1))),$(AVX512_FLAGS),$(if $(findstring _avx2,$(notdir $(1))),$(AVX2_FLAGS)))

.PHONY: check-tools clean
check-tools:
	@missing=""; \
	[ "$(MLIR_AIE_HAVE)" = "$(MLIR_AIE_WANT)" ] || missing="$$missing\n  - mlir_aie $(MLIR_AIE_WANT) (found: '$(MLIR_AIE_HAVE)'): pip install $(MLIR_AIE_PIP)"; \
	[ "$(LLVM_AIE_HAVE)" = "$(LLVM_AIE_WANT)" ] || missing="$$missing\n  - llvm-aie $(LLVM_AIE_WANT) (found: '$(LLVM_AIE_HAVE)'): pip install $(LLVM_AIE_PIP)"; \
	[ -n "$(AIECC)" ] || missing="$$missing\n  - aiecc (mlir_aie's C++ compiler driver; put the wheel's bin/ on PATH)"; \
	[ -x "$(PEANO_INSTALL_DIR)/bin/clang++" ] || missing="$$missing\n  - Peano clang++ in $(PEANO_INSTALL_DIR)/bin"; \
	if [ -n "$$missing" ]; then printf "Cannot build NPU kernels here (python: $(PYTHON)); missing:$$missing\n" >&2; exit 2; fi

clean:
	rm -rf build

build/ref/%.o: $(KERNELS_DIR)/%.cc
	@mkdir -p $(@D)
	$(CXX) -std=c++17 -O2 -I$(KERNELS_DIR) $(call isa_flags,$<) -c $< -o $@

build/libphoenix_ref.a: $(REF_OBJS)
	$(AR) rcs $@ $^

# --- One kernel folder: every manifest stage of its design kind --------------------------------
ifdef DESIGN
.DEFAULT_GOAL := all
ifndef KERNEL_NAMES
KERNEL_NAMES := $(shell $(PYTHON) $(DESIGN) --params $(PARAMS) --manifest $(MANIFEST) --list)
endif
ifeq ($(strip $(KERNEL_NAMES)),)
$(error $(DESIGN) --list named no manifest stage of $(PARAMS))
endif
TEST_SRC ?= $(dir $(DESIGN))test.cpp
HOST_TEST_DEPS := $(TEST_SRC) $(COMMON_AIE)/host_test.h $(KERNELS_DIR)/common/bf16.h

.PHONY: all run $(addprefix run-,$(KERNEL_NAMES))
all: $(foreach k,$(KERNEL_NAMES),build/$(k)/final.xclbin build/$(k)/test)

# As mlir-aie's jit_xclbin rule: the design builds its xclbin and instructions in one step.
build/%/final.xclbin build/%/insts.bin: $(DESIGN) $(KERNEL_SOURCES) $(MANIFEST) $(PARAMS) $(COMMON_AIE)/build_xclbin.py $(COMMON_AIE)/iron_common.py | check-tools
	@mkdir -p $(@D)
	$(TOOL_ENV) $(PYTHON) $(DESIGN) --manifest $(MANIFEST) --params $(PARAMS) --kernel $* --xclbin-path=build/$*/final.xclbin --insts-path=build/$*/insts.bin

# Generated files are kept (make would delete them as intermediates).
.PRECIOUS: build/%/params.h build/%/final.xclbin build/%/insts.bin
build/%/params.h: $(DESIGN) $(MANIFEST) $(PARAMS)
	@mkdir -p $(@D)
	$(PYTHON) $(DESIGN) --manifest $(MANIFEST) --params $(PARAMS) --kernel $* --params-header $@

build/%/test: build/%/params.h build/libphoenix_ref.a $(HOST_TEST_DEPS)
	$(CXX) $(HOST_CXXFLAGS) $(HOST_INCLUDES) -Ibuild/$* -o $@ $(TEST_SRC) build/libphoenix_ref.a $(HOST_LIBS)

run: $(addprefix run-,$(KERNEL_NAMES))
$(addprefix run-,$(KERNEL_NAMES)): run-%: build/%/test build/%/final.xclbin build/%/insts.bin
	./build/$*/test -x build/$*/final.xclbin -i build/$*/insts.bin -k $*
endif
