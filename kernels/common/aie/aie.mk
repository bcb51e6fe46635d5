# Shared rules for kernels/<op>/aie/Makefile: build an xclbin + insts.bin per shape with mlir-aie
# (IRON, aiecc.py) and Peano (llvm-aie). NOT YET RUN: this repository's CI has neither.
#
#   make                       # the default shape of the kernel's Makefile
#   make SHAPE_ARGS="..."      # another shape (see each Makefile)
#
# Each kernel Makefile sets NAME (the xclbin's name) and OBJ (its compiled kernel object) before
# including this file, and writes the rules for build/$(OBJ) and build/$(NAME).mlir; the
# xclbin rule, `all` and `clean` are here.
#
# Needs: mlir-aie's Python package (`python3 -c "import aie"`; pip wheel `mlir_aie` or a source
# build with `source utils/env_setup.sh`), and Peano (PEANO_INSTALL_DIR, pip wheel `llvm-aie`).
.DEFAULT_GOAL := all
PYTHON ?= python3
MLIR_AIE_DIR ?= $(shell $(PYTHON) -c "from aie.utils.config import root_path; print(root_path())" 2>/dev/null)
PEANO_INSTALL_DIR ?= $(shell $(PYTHON) -c "import llvm_aie, os; print(os.path.dirname(llvm_aie.__file__))" 2>/dev/null)
AIECC ?= $(shell command -v aiecc.py 2>/dev/null)
COMMON_AIE := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
PEANO_FLAGS = -O2 -std=c++20 --target=aie2-none-unknown-elf -DNDEBUG -I $(MLIR_AIE_DIR)/include -I $(COMMON_AIE) \
              -Wno-parentheses -Wno-attributes -Wno-macro-redefined

.PHONY: check-tools
check-tools:
	@missing=""; \
	[ -n "$(MLIR_AIE_DIR)" ] || missing="$$missing\n  - mlir-aie (Python package 'aie': pip install mlir_aie from https://github.com/Xilinx/mlir-aie/releases, or source its env_setup.sh)"; \
	[ -n "$(AIECC)" ] || missing="$$missing\n  - aiecc.py (comes with mlir-aie; put its bin/ on PATH)"; \
	[ -x "$(PEANO_INSTALL_DIR)/bin/clang++" ] || missing="$$missing\n  - Peano / llvm-aie (pip install llvm-aie, or set PEANO_INSTALL_DIR)"; \
	if [ -n "$$missing" ]; then printf "Cannot build NPU kernels here; missing:$$missing\n" >&2; exit 2; fi

all: check-tools build/$(NAME).xclbin

build/$(NAME).xclbin: build/$(NAME).mlir build/$(OBJ)
	cd build && $(AIECC) --aie-generate-xclbin --no-compile-host --xclbin-name=$(NAME).xclbin \
	  --no-xchesscc --no-xbridge --peano $(PEANO_INSTALL_DIR) \
	  --aie-generate-npu-insts --npu-insts-name=$(NAME).insts.bin $(NAME).mlir

clean:
	rm -rf build
.PHONY: all clean
