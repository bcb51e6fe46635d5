# Builds every kernel of kernels/manifest.json into ONE xclbin (one hardware context) plus one
# instruction file per xclbin kernel, with exactly the toolchain pinned in toolchain.json
# (mlir-aie 1.4.1's C++ aiecc and Peano llvm-aie 21.0.0.2026080301+c9c5ecb7).
# NOT YET RUN: this repository's CI has neither; `make -n` is what is checked here.
#
#   cd kernels && make            # -> build/phoenix_npu.xclbin, build/<KERNEL>.insts.bin
#
# Included by kernels/Makefile. The work is in build_xclbin.py: per manifest stage it takes the
# design npu_model plans and checks, emits its MLIR (phoenix_iron.py), compiles the core
# kernels with Peano, and chains aiecc --xclbin-input so all kernels land in one xclbin.
.DEFAULT_GOAL := all
PYTHON ?= python3
COMMON_AIE := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
PIN = $(shell $(PYTHON) -c "import json,sys; print(json.load(open('$(COMMON_AIE)/toolchain.json'))$(1))")
MLIR_AIE_WANT := $(call PIN,['mlir_aie']['version'])
LLVM_AIE_WANT := $(call PIN,['llvm_aie']['version'])
# Installed packages, found the way pip records them (llvm-aie is not importable: its payload is
# the folder llvm-aie/ next to its dist-info).
MLIR_AIE_HAVE := $(shell $(PYTHON) -m pip show mlir_aie 2>/dev/null | sed -n 's/^Version: //p')
LLVM_AIE_HAVE := $(shell $(PYTHON) -m pip show llvm-aie 2>/dev/null | sed -n 's/^Version: //p')
PEANO_INSTALL_DIR ?= $(shell $(PYTHON) -m pip show llvm-aie 2>/dev/null | sed -n 's/^Location: //p')/llvm-aie
MLIR_AIE_DIR ?= $(shell $(PYTHON) -c "from aie.utils.config import root_path; print(root_path())" 2>/dev/null)
AIECC ?= $(shell command -v aiecc 2>/dev/null)

.PHONY: check-tools all clean
check-tools:
	@missing=""; \
	[ "$(MLIR_AIE_HAVE)" = "$(MLIR_AIE_WANT)" ] || missing="$$missing\n  - mlir_aie $(MLIR_AIE_WANT) (found: '$(MLIR_AIE_HAVE)'): pip install $(call PIN,['mlir_aie']['pip']) -f $(call PIN,['mlir_aie']['find_links'])"; \
	[ "$(LLVM_AIE_HAVE)" = "$(LLVM_AIE_WANT)" ] || missing="$$missing\n  - llvm-aie $(LLVM_AIE_WANT) (found: '$(LLVM_AIE_HAVE)'): pip install '$(call PIN,['llvm_aie']['pip'])' -f $(call PIN,['llvm_aie']['find_links'])"; \
	[ -n "$(AIECC)" ] || missing="$$missing\n  - aiecc (mlir_aie's C++ compiler driver; put the wheel's bin/ on PATH)"; \
	[ -x "$(PEANO_INSTALL_DIR)/bin/clang++" ] || missing="$$missing\n  - Peano clang++ in $(PEANO_INSTALL_DIR)/bin"; \
	if [ -n "$$missing" ]; then printf "Cannot build NPU kernels here; missing:$$missing\n" >&2; exit 2; fi

all: check-tools
	PEANO_INSTALL_DIR=$(PEANO_INSTALL_DIR) MLIR_AIE_DIR=$(MLIR_AIE_DIR) AIECC=$(AIECC) \
	  $(PYTHON) $(COMMON_AIE)/build_xclbin.py --manifest manifest.json --out build

clean:
	rm -rf build
