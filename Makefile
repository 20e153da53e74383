# Makefile — `make` builds every program that builds on this machine; `make test` runs all CPU tests and
# compile-checks every .cu file for sm_90 and sm_80; `make gpucheck` / `make bench` / `make crossover` run on a GPU
# machine.
# Header-only C++: each program is one .cpp (or .cu) that includes what it needs from llmc/ and dev/.

CXX      ?= g++
CXXFLAGS ?= -O2 -march=x86-64-v2 -std=c++17 -Wall -Wextra -Werror -fopenmp -I.
NVCC     ?= nvcc
# sm_90 (H100/H200) and sm_80 (A100) machine code plus compute_90 PTX for newer chips; never nvcc's default.
NVCC_GENCODE ?= -gencode arch=compute_90,code=sm_90 -gencode arch=compute_80,code=sm_80 \
                -gencode arch=compute_90,code=compute_90
# Warnings are errors here and in CI; scripts/quickstart.sh builds with NVCC_WERROR= so that another host compiler's
# new warnings do not stop a user's first run.
NVCC_WERROR ?= -Werror all-warnings -Xcompiler -Werror
NVCCFLAGS ?= -O3 -std=c++17 --use_fast_math -I. $(NVCC_WERROR) -Xcompiler -Wall,-Wextra,-fopenmp
NVCC_LIBS ?= -lcublasLt -lcublas -lgomp

BUILD := build
TEST_SRCS  := $(wildcard dev/test/test_*.cpp)
TOOL_SRCS  := $(wildcard dev/data/prepare.cpp dev/data/inspect.cpp dev/cpu/*.cpp)
CU_SRCS    := $(wildcard *.cu dev/cuda/*.cu)
TEST_BINS  := $(patsubst dev/test/%.cpp,$(BUILD)/%,$(TEST_SRCS))
TOOL_BINS  := $(patsubst %.cpp,$(BUILD)/%,$(notdir $(TOOL_SRCS)))
CU_OBJS    := $(patsubst %.cu,$(BUILD)/cucheck/%.o,$(CU_SRCS))
HEADERS    := $(wildcard llmc/*.h llmc/*.cuh dev/cpu/*.h dev/test/*.h dev/cuda/*.h)

# The data-parallel CPU trainer (train_cpu.cpp over MPI), built only where OpenMPI's mpicxx is installed.
MPICXX ?= $(shell command -v mpicxx)
MPI_BINS := $(if $(MPICXX),$(BUILD)/train_cpu_mpi $(BUILD)/test_bootstrap_mpi)

.PHONY: all data test cudacheck gpu gpucheck bench crossover clean
all: $(TOOL_BINS) $(TEST_BINS) $(MPI_BINS) data

$(BUILD)/%: dev/test/%.cpp $(HEADERS) | $(BUILD)
	$(CXX) $(CXXFLAGS) $< -o $@
$(BUILD)/prepare: dev/data/prepare.cpp $(HEADERS) | $(BUILD)
	$(CXX) $(CXXFLAGS) $< -o $@ -lpthread -lz
$(BUILD)/inspect: dev/data/inspect.cpp $(HEADERS) | $(BUILD)
	$(CXX) $(CXXFLAGS) $< -o $@
$(BUILD)/%: dev/cpu/%.cpp $(HEADERS) | $(BUILD)
	$(CXX) $(CXXFLAGS) -O3 $< -o $@
$(BUILD)/train_cpu_mpi: dev/cpu/train_cpu.cpp $(HEADERS) | $(BUILD)
	$(MPICXX) $(CXXFLAGS) -O3 -DLLMC_MPI $< -o $@
$(BUILD)/test_bootstrap_mpi: dev/test/test_bootstrap.cpp $(HEADERS) | $(BUILD)
	$(MPICXX) $(CXXFLAGS) -DLLMC_MPI $< -o $@
$(BUILD):
	mkdir -p $(BUILD)

# The bundled Wikipedia sample (dev/data/corpus, ~9.9M tokens) tokenised into build/data/wiki_{train,val}: the
# scaled-down crossover's data (scripts/crossover.sh). Text is what the repository keeps; tokens take ~2 seconds.
DATA := $(BUILD)/data/wiki_train.bin $(BUILD)/data/wiki_val.bin
$(BUILD)/data/wiki_%.bin: dev/data/corpus/wikipedia_%.jsonl.gz $(BUILD)/prepare
	@mkdir -p $(dir $@)
	$(BUILD)/prepare --input $< --output-prefix $(BUILD)/data/wiki_$*
data: $(DATA)

# Every .cu must compile for both targets with warnings as errors (CI has no GPU, so this is its GPU check).
$(BUILD)/cucheck/%.o: %.cu $(HEADERS)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) $(NVCC_GENCODE) -c $< -o $@
# A one-GPU build needs no NCCL files: train_gpt.cu also compiles with NCCL's headers hidden.
$(BUILD)/cucheck/train_gpt_no_nccl_h.o: train_gpt.cu $(HEADERS)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -DLLMC_NO_NCCL_H -gencode arch=compute_90,code=sm_90 -c $< -o $@
cudacheck: $(CU_OBJS) $(BUILD)/cucheck/train_gpt_no_nccl_h.o
	@echo "cudacheck: $(words $(CU_SRCS)) .cu file(s) compiled for sm_90 and sm_80 (train_gpt.cu also without nccl.h)"
# The two trainers linked from those objects: on a machine without a GPU they run up to device selection, which is
# after every flag is parsed, so CI checks each trainer command the scripts print (dev/test/test_gpu_cli.sh).
GPU_CLI := $(BUILD)/cucheck/train_gpt $(BUILD)/cucheck/train_mdm
$(GPU_CLI): $(BUILD)/cucheck/%: $(BUILD)/cucheck/%.o
	$(NVCC) $(NVCC_GENCODE) $< -o $@ $(NVCC_LIBS)

# GPU programs (sm_90 only: what the GPU machine runs). Built here too, so a run there need not compile.
# Multi-GPU needs neither flag nor library at build time: NCCL is loaded at run time (llmc/data_parallel.cuh) and
# mpirun only starts the processes. `make gpu USE_MPI=1` (after `make clean`) also links MPI, for --dist-init mpi.
ifeq ($(USE_MPI),1)
NVCCFLAGS += -DLLMC_MPI $(addprefix -I,$(shell $(MPICXX) --showme:incdirs))
NVCC_LIBS += $(addprefix -L,$(shell $(MPICXX) --showme:libdirs)) $(addprefix -l,$(shell $(MPICXX) --showme:libs))
endif
GPU_GENCODE ?= -gencode arch=compute_90,code=sm_90
GPU_BINS := $(patsubst dev/cuda/%.cu,$(BUILD)/cuda/%,$(wildcard dev/cuda/*.cu)) \
            $(patsubst %.cu,$(BUILD)/%,$(wildcard train_*.cu test_*.cu eval_*.cu generate_*.cu))
$(BUILD)/cuda/%: dev/cuda/%.cu $(HEADERS)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) $(GPU_GENCODE) $< -o $@ $(NVCC_LIBS)
$(BUILD)/%: %.cu $(HEADERS)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) $(GPU_GENCODE) $< -o $@ $(NVCC_LIBS)
gpu: $(GPU_BINS)
gpucheck:
	bash scripts/gpucheck.sh
bench:
	bash scripts/bench.sh
# The scaled-down AR vs MDM crossover on one GPU (scripts/crossover.sh --help); CROSSOVER_FLAGS passes options on.
crossover: data $(BUILD)/train_gpt $(BUILD)/train_mdm
	bash scripts/crossover.sh $(CROSSOVER_FLAGS)

test: all cudacheck $(GPU_CLI)
	bash dev/test/run_tests.sh

clean:
	rm -rf $(BUILD)
