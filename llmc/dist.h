// llmc/dist.h — the data-parallel communicator: rank, world size and the few collectives ZeRO stage 1 needs, over a
// flat fp32 buffer split into W contiguous equal shards (the last one padded). Built with -DLLMC_MPI it runs over
// MPI (one process per rank, started by mpirun); otherwise it is a single process whose collectives are copies.
//
// Determinism: every reduction sums the ranks' contributions in rank order 0, 1, ..., W-1 on the receiving rank
// (reduce-scatter = MPI_Alltoall to the shard owner + an ordered sum; all-reduce = MPI_Allgather + an ordered
// sum). MPI_Reduce/MPI_Allreduce with MPI_SUM are never used: their summation order is unspecified, so two runs
// could differ in the last bit.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstring>
#include <vector>
#include "utils.h"
#ifdef LLMC_MPI
#define OMPI_SKIP_MPICXX 1  // the C API only: the deprecated C++ bindings do not compile warning-free
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#endif

// Which elements of an n-element buffer rank r owns: [begin(r), end(r)), shard = ceil(n / W) elements each, rounded
// up to a multiple of `align` (GPU buffers: every shard starts on a vector-load and NCCL-friendly boundary).
struct ShardLayout {
    size_t n = 0, shard = 0;
    int world = 1;
    ShardLayout() = default;
    ShardLayout(size_t n_, int world_, size_t align = 1)
        : n(n_), shard(((n_ + world_ - 1) / world_ + align - 1) / align * align), world(world_) {}
    size_t padded() const { return shard * world; }
    size_t begin(int r) const { return std::min(n, (size_t)r * shard); }
    size_t end(int r) const { return std::min(n, (size_t)(r + 1) * shard); }
};

class Dist {
  public:
    Dist(int* argc, char*** argv) {
#ifdef LLMC_MPI
        int provided = 0;
        // Only the main thread calls MPI; OpenMP threads run the math in between.
        MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
        MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
        MPI_Comm_size(MPI_COMM_WORLD, &world_);
#else
        (void)argc; (void)argv;
#endif
    }
    ~Dist() {
#ifdef LLMC_MPI
        MPI_Finalize();
#endif
    }
    Dist(const Dist&) = delete;
    Dist& operator=(const Dist&) = delete;

    int rank() const { return rank_; }
    int world() const { return world_; }
    bool root() const { return rank_ == 0; }

    // full[padded] (this rank's contribution to every shard) -> shard[L.shard] = sum over ranks of this rank's
    // shard, summed in rank order.
    void reduce_scatter(const float* full, float* shard, const ShardLayout& L) {
#ifdef LLMC_MPI
        std::vector<float> recv(L.padded());  // recv[k * shard ...]: rank k's values of my shard
        MPI_Alltoall(full, (int)L.shard, MPI_FLOAT, recv.data(), (int)L.shard, MPI_FLOAT, MPI_COMM_WORLD);
        for (size_t i = 0; i < L.shard; i++) {
            float s = recv[i];
            for (int k = 1; k < world_; k++) s += recv[(size_t)k * L.shard + i];
            shard[i] = s;
        }
#else
        memcpy(shard, full, L.shard * sizeof(float));
#endif
    }

    // shard[L.shard] of every rank -> full[padded], rank k's shard at k * shard.
    void allgather(const float* shard, float* full, const ShardLayout& L) {
#ifdef LLMC_MPI
        MPI_Allgather(shard, (int)L.shard, MPI_FLOAT, full, (int)L.shard, MPI_FLOAT, MPI_COMM_WORLD);
#else
        if (full != shard) memmove(full, shard, L.shard * sizeof(float));
#endif
    }

    // x[i] = sum over ranks of x[i], in rank order, identical on every rank.
    template <class T>
    void allreduce_sum(T* x, size_t n) {
#ifdef LLMC_MPI
        std::vector<T> all(n * world_);
        MPI_Allgather(x, (int)(n * sizeof(T)), MPI_BYTE, all.data(), (int)(n * sizeof(T)), MPI_BYTE, MPI_COMM_WORLD);
        for (size_t i = 0; i < n; i++) {
            T s = all[i];
            for (int k = 1; k < world_; k++) s += all[(size_t)k * n + i];
            x[i] = s;
        }
#else
        (void)x; (void)n;
#endif
    }
    template <class T>
    T allreduce_sum(T x) { allreduce_sum(&x, 1); return x; }

  private:
    int rank_ = 0, world_ = 1;
};
