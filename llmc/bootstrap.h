// llmc/bootstrap.h — how the processes of a multi-GPU run find out who they are and agree on one NCCL unique id
// before NCCL exists between them. Host-only (no CUDA, no NCCL), so CI tests it with processes on one machine.
//
//   where:  rank / world size / local rank come from the launcher's environment: mpirun (OMPI_COMM_WORLD_*),
//           srun (SLURM_PROCID / SLURM_STEP_NUM_TASKS / SLURM_LOCALID), MPICH's hydra (PMI_RANK / PMI_SIZE), or LLMC_RANK /
//           LLMC_WORLD_SIZE / LLMC_LOCAL_RANK set by hand. So `mpirun -np 8 ./train_mdm` needs no MPI library.
//   id:     rank 0's 128 opaque bytes reach the other ranks by one of
//             mpi          MPI_Bcast (only in builds with -DLLMC_MPI, e.g. `make gpu USE_MPI=1`)
//             file:PATH    rank 0 writes PATH atomically; the others poll it (PATH on a filesystem all ranks share)
//             tcp:HOST:PORT rank 0 listens on PORT; the others connect to HOST:PORT and read the id
//             auto         mpi if built with MPI and started by mpirun; else tcp:$MASTER_ADDR:$MASTER_PORT if
//                          MASTER_ADDR is set; else, when every rank is on this node, a file under /tmp named after
//                          the launcher's job id, or LLMC_JOB_ID (none known, e.g. LLMC_* by hand without it: an error)
#pragma once
#include <arpa/inet.h>   // htonl / ntohl
#include <netdb.h>       // getaddrinfo: HOST of tcp:HOST:PORT
#include <poll.h>        // poll: timeouts on accept / connect / read
#include <sys/socket.h>  // socket, bind, listen, accept, connect
#include <unistd.h>      // close, getpid, getuid
#include <cctype>        // isxdigit
#include <cerrno>
#include <chrono>        // steady_clock: the rendezvous deadline
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>        // sleep_for between polls
#include <vector>
#ifdef LLMC_MPI
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#endif

// Where this process sits in the run. local_world = ranks on this node, or -1 when the launcher does not say.
struct ProcessPlace {
    int rank = 0, world = 1, local_rank = 0, local_world = 1;
    std::string launcher = "none";  // "llmc", "mpirun", "slurm", "pmi" or "none" (a plain one-process run)
    std::string job;                // the launcher's id of this run ("" if none): keeps file rendezvous apart
};

// Parses environment variable `name` as an int >= 0; false if it is unset. A malformed value is an error.
inline bool env_int(const char* name, int* out, std::string* err) {
    const char* s = getenv(name);
    if (!s || !*s) return false;
    char* end = nullptr;
    long v = strtol(s, &end, 10);
    if (*end != '\0' || v < 0 || v > (1 << 24)) {
        *err = std::string("environment variable ") + name + "='" + s + "' is not a non-negative integer";
        return false;
    }
    *out = (int)v;
    return true;
}

inline std::string env_str(const char* name) {
    const char* s = getenv(name);
    return s ? s : "";
}

// Reads the place from the first launcher whose variables are set. False with *err on inconsistent values.
inline bool process_place_from_env(ProcessPlace* p, std::string* err) {
    struct Launcher { const char *name, *rank, *world, *local_rank, *local_world; };
    static const Launcher launchers[] = {
        {"llmc", "LLMC_RANK", "LLMC_WORLD_SIZE", "LLMC_LOCAL_RANK", "LLMC_LOCAL_WORLD_SIZE"},
        {"mpirun", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE"},
        // SLURM_STEP_*, set by srun only: an sbatch script's own shell also has SLURM_PROCID=0 and SLURM_NTASKS,
        // and a plain run there is one process, not rank 0 of the allocation's tasks.
        {"slurm", "SLURM_PROCID", "SLURM_STEP_NUM_TASKS", "SLURM_LOCALID", nullptr},
        {"pmi", "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID", "MPI_LOCALNRANKS"},
    };
    *p = ProcessPlace{};
    err->clear();
    for (const Launcher& l : launchers) {
        int rank = 0, world = 0;
        const bool has_rank = env_int(l.rank, &rank, err);
        if (!err->empty()) return false;
        if (!has_rank) continue;
        if (!strcmp(l.name, "slurm") && env_str(l.world).empty()) continue;  // the batch step, not an srun task
        if (!env_int(l.world, &world, err)) {
            if (err->empty()) *err = std::string(l.rank) + " is set but " + l.world + " is not";
            return false;
        }
        p->launcher = l.name;
        p->rank = rank;
        p->world = world;
        p->local_rank = rank;  // without a local rank: every rank on its own device numbering from 0
        p->local_world = -1;
        if (l.local_rank && !env_int(l.local_rank, &p->local_rank, err) && !err->empty()) return false;
        if (l.local_world && !env_int(l.local_world, &p->local_world, err) && !err->empty()) return false;
        if (!strcmp(l.name, "slurm")) {
            int nodes = 0;
            if (env_int("SLURM_STEP_NUM_NODES", &nodes, err) && nodes == 1) p->local_world = world;
            if (!err->empty()) return false;
            if (!env_str("SLURM_JOB_ID").empty()) p->job = env_str("SLURM_JOB_ID") + "." + env_str("SLURM_STEP_ID");
        } else if (!strcmp(l.name, "mpirun")) {
            p->job = env_str("PMIX_NAMESPACE");
            if (p->job.empty()) p->job = env_str("OMPI_MCA_ess_base_jobid");
        } else if (!strcmp(l.name, "pmi")) {
            // hydra exports no job id (PMI_ID, where set, differs between the processes of one run); the ranks
            // of one node are the children of one hydra proxy, so its pid names this launch on this node.
            p->job = "pmi-proxy-" + std::to_string(getppid());
        }
        break;
    }
    if (p->launcher != "none") {  // any launcher: the user's name for this run wins (LLMC_* launches need it)
        const std::string forced = env_str("LLMC_JOB_ID");
        if (!forced.empty()) p->job = forced;
    }
    if (p->world < 1 || p->rank >= p->world) {
        *err = "rank " + std::to_string(p->rank) + " of a world of " + std::to_string(p->world) + " (from the " +
               p->launcher + " environment) is not a valid place";
        return false;
    }
    if (p->local_world > p->world || p->local_rank >= p->world) {
        *err = "local rank " + std::to_string(p->local_rank) + " / local size " + std::to_string(p->local_world) +
               " do not fit a world of " + std::to_string(p->world);
        return false;
    }
    return true;
}

// ---- rendezvous -------------------------------------------------------------------------------------------------

namespace boot_detail {
using Clock = std::chrono::steady_clock;
inline Clock::time_point deadline_in(double seconds) {
    return Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}
inline double left(Clock::time_point deadline) {
    return std::chrono::duration<double>(deadline - Clock::now()).count();
}
inline std::string sys_err(const char* what) { return std::string(what) + ": " + strerror(errno); }

// Magic line + job + hex bytes: a file from another run, or a half-written one, never parses as ours.
inline std::string encode(const void* id, size_t n, const std::string& job) {
    static const char* hex = "0123456789abcdef";
    std::string s = "llmc-nccl-id 1\n" + job + "\n";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = ((const unsigned char*)id)[i];
        s += hex[c >> 4];
        s += hex[c & 15];
    }
    return s + "\nend\n";
}
inline bool decode(const std::string& s, void* id, size_t n, const std::string& job) {
    const std::string head = "llmc-nccl-id 1\n" + job + "\n";
    if (s.size() != head.size() + 2 * n + 5 || s.compare(0, head.size(), head) != 0 ||
        s.compare(head.size() + 2 * n, 5, "\nend\n") != 0)
        return false;
    auto nib = [](char c) { return c >= 'a' ? c - 'a' + 10 : c - '0'; };
    for (size_t i = 0; i < n; i++) {
        const char a = s[head.size() + 2 * i], b = s[head.size() + 2 * i + 1];
        if (!isxdigit((unsigned char)a) || !isxdigit((unsigned char)b)) return false;
        ((unsigned char*)id)[i] = (unsigned char)(nib(a) << 4 | nib(b));
    }
    return true;
}

inline bool read_file(const std::string& path, std::string* out) {
    FILE* f = fopen(path.c_str(), "rb");
    if (!f) return false;
    char buf[4096];
    size_t k;
    out->clear();
    while ((k = fread(buf, 1, sizeof buf, f)) > 0) out->append(buf, k);
    fclose(f);
    return true;
}

inline bool file_exchange(const std::string& path, const ProcessPlace& p, void* id, size_t n, double timeout_s,
                          std::string* err) {
    const auto deadline = deadline_in(timeout_s);
    if (p.rank == 0) {
        // Written to a temporary name and renamed, so a reader never sees half a file.
        const std::string tmp = path + ".tmp." + std::to_string(getpid());
        FILE* f = fopen(tmp.c_str(), "wb");
        if (!f) { *err = sys_err(("cannot write the rendezvous file " + tmp).c_str()); return false; }
        const std::string s = encode(id, n, p.job);
        const bool ok = fwrite(s.data(), 1, s.size(), f) == s.size();
        if (fclose(f) != 0 || !ok || rename(tmp.c_str(), path.c_str()) != 0) {
            *err = sys_err(("cannot write the rendezvous file " + path).c_str());
            remove(tmp.c_str());
            return false;
        }
        return true;
    }
    std::string s;
    while (!(read_file(path, &s) && decode(s, id, n, p.job))) {
        if (left(deadline) <= 0) {
            *err = "timed out after " + std::to_string((int)timeout_s) + " s waiting for rank 0's id in " + path +
                   " (is rank 0 running, and is the file on a filesystem every rank shares?)";
            return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return true;
}

// Waits until fd is readable (events = POLLIN) or writable (POLLOUT) or the deadline passes.
inline bool wait_fd(int fd, short events, Clock::time_point deadline) {
    for (;;) {
        const double s = left(deadline);
        if (s <= 0) return false;
        pollfd pfd{fd, events, 0};
        const int r = poll(&pfd, 1, (int)(s * 1000) + 1);
        if (r > 0) return true;
        if (r < 0 && errno != EINTR) return false;
    }
}

inline bool io_all(int fd, void* buf, size_t n, bool write_it, Clock::time_point deadline) {
    char* p = (char*)buf;
    while (n > 0) {
        if (!wait_fd(fd, write_it ? POLLOUT : POLLIN, deadline)) return false;
        ssize_t k = write_it ? send(fd, p, n, MSG_NOSIGNAL) : recv(fd, p, n, 0);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return false;
        p += k;
        n -= (size_t)k;
    }
    return true;
}

// A socket listening on `port` of every address: IPv6 dual-stack (IPv4 clients too), else IPv4 alone (a kernel
// without IPv6). -1 with errno set when neither works.
inline int listen_any(int port) {
    const int one = 1, zero = 0;
    int s = socket(AF_INET6, SOCK_STREAM, 0);
    if (s >= 0) {
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
        sockaddr_in6 a{};
        a.sin6_family = AF_INET6;
        a.sin6_addr = in6addr_any;
        a.sin6_port = htons((uint16_t)port);
        if (bind(s, (sockaddr*)&a, sizeof a) == 0 && listen(s, 128) == 0) return s;
        close(s);
    }
    s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0) return -1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    a.sin_port = htons((uint16_t)port);
    if (bind(s, (sockaddr*)&a, sizeof a) == 0 && listen(s, 128) == 0) return s;
    const int e = errno;
    close(s);
    errno = e;
    return -1;
}

constexpr char kHello[8] = {'l', 'l', 'm', 'c', 'b', 'o', 'o', 't'};

// Rank 0 serves the id to world - 1 connections that say hello with their rank; a stray connection (wrong
// magic, a rank already served) is dropped rather than counted.
inline bool tcp_serve(int port, const ProcessPlace& p, const void* id, size_t n, Clock::time_point deadline,
                      std::string* err) {
    const int s = listen_any(port);
    if (s < 0) {
        *err = sys_err(("rank 0 cannot listen on port " + std::to_string(port)).c_str());
        return false;
    }
    std::vector<char> served((size_t)p.world, 0);
    int remaining = p.world - 1;
    while (remaining > 0) {
        if (!wait_fd(s, POLLIN, deadline)) {
            *err = "timed out waiting for " + std::to_string(remaining) + " of " + std::to_string(p.world - 1) +
                   " ranks to connect to port " + std::to_string(port);
            close(s);
            return false;
        }
        const int c = accept(s, nullptr, nullptr);
        if (c < 0) continue;
        char hello[sizeof kHello];
        uint32_t rank_be = 0;
        if (io_all(c, hello, sizeof hello, false, deadline) && !memcmp(hello, kHello, sizeof hello) &&
            io_all(c, &rank_be, sizeof rank_be, false, deadline)) {
            const uint32_t r = ntohl(rank_be);
            if (r > 0 && r < (uint32_t)p.world && !served[r] && io_all(c, (void*)id, n, true, deadline)) {
                served[r] = 1;
                remaining--;
            }
        }
        close(c);
    }
    close(s);
    return true;
}

// Ranks > 0 retry the connection until rank 0 listens (it may start later) or the deadline passes.
inline bool tcp_fetch(const std::string& host, int port, const ProcessPlace& p, void* id, size_t n,
                      Clock::time_point deadline, std::string* err) {
    addrinfo hints{}, *res = nullptr;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    const int g = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res);
    if (g != 0) { *err = "cannot resolve rendezvous host '" + host + "': " + gai_strerror(g); return false; }
    bool ok = false;
    while (!ok && left(deadline) > 0) {
        for (addrinfo* ai = res; ai && !ok; ai = ai->ai_next) {
            const int c = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
            if (c < 0) continue;
            if (connect(c, ai->ai_addr, ai->ai_addrlen) == 0) {
                const uint32_t rank_be = htonl((uint32_t)p.rank);
                ok = io_all(c, (void*)kHello, sizeof kHello, true, deadline) &&
                     io_all(c, (void*)&rank_be, sizeof rank_be, true, deadline) && io_all(c, id, n, false, deadline);
            }
            close(c);
        }
        if (!ok) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    freeaddrinfo(res);
    if (!ok) *err = "timed out connecting to rank 0 at " + host + ":" + std::to_string(port) + " for the NCCL id";
    return ok;
}
}  // namespace boot_detail

// Resolves "auto" to a concrete method for this place (see the top of the file). False with *err when no
// method can work (ranks on several nodes with neither MPI nor MASTER_ADDR).
inline bool resolve_rendezvous(const std::string& spec, const ProcessPlace& p, std::string* out, std::string* err) {
    if (spec != "auto") { *out = spec; return true; }
    if (p.world == 1) { *out = "none (one rank)"; return true; }  // --nccl on one process: nothing to exchange
#ifdef LLMC_MPI
    if (p.launcher == "mpirun") { *out = "mpi"; return true; }
#endif
    const std::string addr = env_str("MASTER_ADDR");
    if (!addr.empty()) {
        const std::string port = env_str("MASTER_PORT");
        *out = "tcp:" + addr + ":" + (port.empty() ? "29500" : port);
        return true;
    }
    if (p.local_world == p.world) {
        if (p.job.empty()) {  // a file without a run's name could be one a crashed earlier run left behind
            *err = "no job id in the " + p.launcher + " environment to name a rendezvous file after: set LLMC_JOB_ID "
                   "(unique per run, same on every rank) or MASTER_ADDR, or pass --dist-init tcp:HOST:PORT or file:PATH";
            return false;
        }
        *out = "file:/tmp/llmc-nccl-id-" + std::to_string(getuid()) + "-" + p.job;
        return true;
    }
    *err = "cannot tell how to reach rank 0 (the " + std::to_string(p.world) +
           " ranks may span several nodes): pass --dist-init tcp:HOST:PORT with rank 0's host, or file:PATH on a "
           "shared filesystem, or set MASTER_ADDR";
    return false;
}

// Copies rank 0's n bytes at id to every rank, by `spec` (mpi | file:PATH | tcp:HOST:PORT; resolve "auto" first).
// Every rank calls it; a one-rank world returns at once. False with *err naming the problem.
inline bool rendezvous(const std::string& spec, const ProcessPlace& p, void* id, size_t n, double timeout_s,
                       std::string* err) {
    using namespace boot_detail;
    if (p.world == 1) return true;
    const auto deadline = deadline_in(timeout_s);
    if (spec == "mpi") {
#ifdef LLMC_MPI
        int init = 0;
        MPI_Initialized(&init);
        if (!init) {
            MPI_Init(nullptr, nullptr);
            atexit([] { int done = 0; MPI_Finalized(&done); if (!done) MPI_Finalize(); });
        }
        int r = -1, w = -1;
        MPI_Comm_rank(MPI_COMM_WORLD, &r);
        MPI_Comm_size(MPI_COMM_WORLD, &w);
        if (r != p.rank || w != p.world) {
            *err = "MPI says rank " + std::to_string(r) + " of " + std::to_string(w) + ", the environment rank " +
                   std::to_string(p.rank) + " of " + std::to_string(p.world);
            return false;
        }
        MPI_Bcast(id, (int)n, MPI_BYTE, 0, MPI_COMM_WORLD);
        return true;
#else
        *err = "--dist-init mpi: this binary was built without MPI (make gpu USE_MPI=1), use tcp:HOST:PORT or file:PATH";
        return false;
#endif
    }
    if (spec.rfind("file:", 0) == 0 && spec.size() > 5) return file_exchange(spec.substr(5), p, id, n, timeout_s, err);
    if (spec.rfind("tcp:", 0) == 0) {
        const size_t colon = spec.rfind(':');
        const std::string host = spec.substr(4, colon > 4 ? colon - 4 : 0);
        char* end = nullptr;
        const long port = colon > 4 ? strtol(spec.c_str() + colon + 1, &end, 10) : -1;
        if (host.empty() || !end || *end || port < 1 || port > 65535) {
            *err = "--dist-init '" + spec + "': expected tcp:HOST:PORT with a port in 1..65535";
            return false;
        }
        return p.rank == 0 ? tcp_serve((int)port, p, id, n, deadline, err)
                           : tcp_fetch(host, (int)port, p, id, n, deadline, err);
    }
    *err = "--dist-init '" + spec + "': expected auto, mpi, file:PATH or tcp:HOST:PORT";
    return false;
}

// After every rank has joined (e.g. NCCL's init returned on rank 0), the rendezvous file is no longer needed;
// removing it keeps a later run from ever reading a stale id.
inline void rendezvous_done(const std::string& spec, const ProcessPlace& p) {
    if (p.rank == 0 && p.world > 1 && spec.rfind("file:", 0) == 0) remove(spec.substr(5).c_str());
}
