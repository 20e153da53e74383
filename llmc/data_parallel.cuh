// llmc/data_parallel.cuh — data parallelism across GPUs: this process's place in the run (llmc/bootstrap.h), its
// device, and the collectives ZeRO stage 1 needs, over NCCL. NCCL is loaded at run time (dlopen of libnccl.so.2)
// and only when the run has more than one rank or --nccl asks for it, so a one-GPU run never needs libnccl, and
// no build needs MPI (mpirun only starts the processes; the NCCL id travels by file or TCP unless built with MPI).
//
// Every collective is in place on a buffer of W equal shards (llmc/dist.h ShardLayout): reduce-scatter leaves
// rank r's summed shard at offset r * shard, all-gather fills every shard from its owner. With one rank and no
// communicator they are no-ops, which is exactly the one-GPU math. NCCL's sum order is fixed for a given
// communicator (same ranks, same algorithm), so runs repeat bit for bit; a different rank count may differ in
// the last bits of the gradient sum.
#pragma once
#include <dlfcn.h>          // dlopen / dlsym: NCCL resolved at run time
#include "bootstrap.h"      // ProcessPlace, resolve_rendezvous, rendezvous: the id exchange before NCCL exists
#include "cuda_common.cuh"  // cudaCheck, floatX

// NCCL's types: from nccl.h where its development files are installed, else (a stock CUDA toolkit has none, and a
// one-GPU build must not need them) the few used here, with NCCL 2.x's values (bf16 = 9 since 2.10). Where nccl.h
// is present the values are asserted and the prototypes below must match its own, so the fallback cannot drift
// (`make cudacheck` also compiles train_gpt.cu with -DLLMC_NO_NCCL_H).
#if __has_include(<nccl.h>) && !defined(LLMC_NO_NCCL_H)
#include <nccl.h>
static_assert(ncclSuccess == 0 && ncclSum == 0 && ncclFloat32 == 7 && ncclFloat64 == 8 && ncclBfloat16 == 9 &&
                  sizeof(ncclUniqueId) == 128, "NCCL's ABI differs from the fallback declarations below");
#else
typedef struct ncclComm* ncclComm_t;
typedef struct { char internal[128]; } ncclUniqueId;
typedef enum { ncclSuccess = 0, ncclNumResults = 8 } ncclResult_t;  // others only go to ncclGetErrorString
typedef enum { ncclSum = 0 } ncclRedOp_t;
typedef enum { ncclFloat32 = 7, ncclFloat64 = 8, ncclBfloat16 = 9 } ncclDataType_t;
#endif
// Prototypes only (for the function-pointer types; the symbols come from dlsym), identical to nccl.h's.
extern "C" {
ncclResult_t ncclGetVersion(int* version);
ncclResult_t ncclGetUniqueId(ncclUniqueId* uniqueId);
ncclResult_t ncclCommInitRank(ncclComm_t* comm, int nranks, ncclUniqueId commId, int rank);
ncclResult_t ncclCommDestroy(ncclComm_t comm);
const char* ncclGetErrorString(ncclResult_t result);
ncclResult_t ncclReduceScatter(const void* sendbuff, void* recvbuff, size_t recvcount, ncclDataType_t datatype,
                               ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream);
ncclResult_t ncclAllGather(const void* sendbuff, void* recvbuff, size_t sendcount, ncclDataType_t datatype,
                           ncclComm_t comm, cudaStream_t stream);
ncclResult_t ncclAllReduce(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype,
                           ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream);
}

// The NCCL entry points used here, looked up in libnccl.so.2 (the prototypes of nccl.h give their types).
struct NcclApi {
    decltype(&ncclGetVersion) GetVersion = nullptr;
    decltype(&ncclGetUniqueId) GetUniqueId = nullptr;
    decltype(&ncclCommInitRank) CommInitRank = nullptr;
    decltype(&ncclCommDestroy) CommDestroy = nullptr;
    decltype(&ncclGetErrorString) GetErrorString = nullptr;
    decltype(&ncclReduceScatter) ReduceScatter = nullptr;
    decltype(&ncclAllGather) AllGather = nullptr;
    decltype(&ncclAllReduce) AllReduce = nullptr;

    void load_or_die() {
        const char* names[] = {"libnccl.so.2", "libnccl.so"};
        void* lib = nullptr;
        for (const char* n : names)
            if ((lib = dlopen(n, RTLD_NOW | RTLD_GLOBAL)) != nullptr) break;
        if (!lib) llmc_die("a multi-GPU run needs NCCL, but libnccl.so.2 cannot be loaded (%s)", dlerror());
        auto sym = [&](const char* name) {
            void* f = dlsym(lib, name);
            if (!f) llmc_die("libnccl.so.2 has no symbol %s (NCCL too old?)", name);
            return f;
        };
        GetVersion = (decltype(GetVersion))sym("ncclGetVersion");
        GetUniqueId = (decltype(GetUniqueId))sym("ncclGetUniqueId");
        CommInitRank = (decltype(CommInitRank))sym("ncclCommInitRank");
        CommDestroy = (decltype(CommDestroy))sym("ncclCommDestroy");
        GetErrorString = (decltype(GetErrorString))sym("ncclGetErrorString");
        ReduceScatter = (decltype(ReduceScatter))sym("ncclReduceScatter");
        AllGather = (decltype(AllGather))sym("ncclAllGather");
        AllReduce = (decltype(AllReduce))sym("ncclAllReduce");
    }
};

struct GpuDist {
    ProcessPlace place;
    int device = 0;
    std::string method;            // how the NCCL id travelled ("" without NCCL)
    bool nccl = false;             // a communicator exists (world > 1, or forced for testing with one rank)
    ncclComm_t comm = nullptr;
    NcclApi api;

    int rank() const { return place.rank; }
    int world() const { return place.world; }
    bool root() const { return place.rank == 0; }

    // Reads the place from the launcher's environment, selects device local_rank (mod the device count) and, for
    // more than one rank or with force_nccl, builds the NCCL communicator: rank 0 makes the id, rendezvous_spec
    // (auto | mpi | file:PATH | tcp:HOST:PORT) carries it to the others. Dies with one line on any failure.
    void init(const std::string& rendezvous_spec, bool force_nccl, double timeout_s = 600) {
        std::string err;
        if (!process_place_from_env(&place, &err)) llmc_die("%s", err.c_str());
        const bool want_nccl = world() > 1 || force_nccl;
        // The id's route first: a launch that cannot work is reported before any device is touched.
        if (want_nccl && !resolve_rendezvous(rendezvous_spec, place, &method, &err)) llmc_die("%s", err.c_str());
        device = use_device_or_die(place.local_rank, "build/train_cpu runs the same training on the CPU");
        int count = 0;
        cudaCheck(cudaGetDeviceCount(&count));
        if (place.local_world > count && root())
            fprintf(stderr, "warning: %d ranks on this node share %d GPU(s)\n", place.local_world, count);
        if (!want_nccl) return;
        api.load_or_die();
        ncclUniqueId id{};
        if (root()) nccl_check(api.GetUniqueId(&id), __FILE__, __LINE__);
        if (!rendezvous(method, place, &id, sizeof id, timeout_s, &err)) llmc_die("rank %d: %s", rank(), err.c_str());
        nccl_check(api.CommInitRank(&comm, world(), id, rank()), __FILE__, __LINE__);
        rendezvous_done(method, place);
        nccl = true;
    }

    void destroy() {
        if (nccl) nccl_check(api.CommDestroy(comm), __FILE__, __LINE__);
        nccl = false;
        comm = nullptr;
    }

    // NCCL's version as "2.27.3", or "" without a communicator.
    std::string nccl_version() {
        int v = 0;
        if (!nccl || api.GetVersion(&v) != ncclSuccess) return "";
        return std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." + std::to_string(v % 100);
    }

    // buf[world * shard] holds this rank's contribution to every shard; afterwards buf[rank*shard, +shard) is the
    // sum over ranks of that shard (the rest is left as it was).
    void reduce_scatter(float* buf, size_t shard, cudaStream_t stream) {
        if (!nccl) return;
        nccl_check(api.ReduceScatter(buf, buf + (size_t)rank() * shard, shard, ncclFloat32, ncclSum, comm, stream),
                   __FILE__, __LINE__);
    }
    // buf[world * shard]: every rank's shard r (at r * shard) is copied into everyone's buffer.
    void allgather(floatX* buf, size_t shard, cudaStream_t stream) { allgather_bytes(buf, shard, ncclBfloat16, stream); }
    void allgather(float* buf, size_t shard, cudaStream_t stream) { allgather_bytes(buf, shard, ncclFloat32, stream); }
    // d[n] (device) = the sum over ranks of d[n].
    void allreduce_sum(double* d, size_t n, cudaStream_t stream) {
        if (!nccl || n == 0) return;
        nccl_check(api.AllReduce(d, d, n, ncclFloat64, ncclSum, comm, stream), __FILE__, __LINE__);
    }
    // The same for a host array, through a temporary device copy; waits for the result.
    void allreduce_sum_host(double* h, size_t n, cudaStream_t stream) {
        if (!nccl || n == 0) return;
        double* d = nullptr;
        cudaCheck(cudaMallocAsync(&d, n * sizeof(double), stream));
        cudaCheck(cudaMemcpyAsync(d, h, n * sizeof(double), cudaMemcpyHostToDevice, stream));
        allreduce_sum(d, n, stream);
        cudaCheck(cudaMemcpyAsync(h, d, n * sizeof(double), cudaMemcpyDeviceToHost, stream));
        cudaCheck(cudaFreeAsync(d, stream));
        cudaCheck(cudaStreamSynchronize(stream));
    }

  private:
    void nccl_check(ncclResult_t r, const char* file, int line) {
        if (r != ncclSuccess)
            llmc_die("NCCL error at %s:%d on rank %d: %s", file, line, rank(),
                     api.GetErrorString ? api.GetErrorString(r) : "(NCCL not loaded)");
    }
    template <class T>
    void allgather_bytes(T* buf, size_t shard, ncclDataType_t type, cudaStream_t stream) {
        if (!nccl) return;
        nccl_check(api.AllGather(buf + (size_t)rank() * shard, buf, shard, type, comm, stream), __FILE__, __LINE__);
    }
};
