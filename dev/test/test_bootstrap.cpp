// dev/test/test_bootstrap.cpp — the multi-GPU bootstrap without GPUs (llmc/bootstrap.h): the rank / world /
// local rank read from each launcher's environment, and rank 0's id reaching every other rank through a file
// and over TCP, with real processes on this machine (fork), late starters, stale files and stray connections.
#include <netinet/in.h>
#include <sys/stat.h>
#include <random>
#include "dev/test/test.h"
#include "llmc/bootstrap.h"

static const char* kLaunchVars[] = {
    "LLMC_RANK", "LLMC_WORLD_SIZE", "LLMC_LOCAL_RANK", "LLMC_LOCAL_WORLD_SIZE", "LLMC_JOB_ID",
    "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE",
    "PMIX_NAMESPACE", "OMPI_MCA_ess_base_jobid", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_STEP_NUM_TASKS", "SLURM_LOCALID",
    "SLURM_JOB_NUM_NODES", "SLURM_STEP_NUM_NODES", "SLURM_JOB_ID", "SLURM_STEP_ID", "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID",
    "MPI_LOCALNRANKS", "PMI_ID", "MASTER_ADDR", "MASTER_PORT"};

static void clear_env() {
    for (const char* v : kLaunchVars) unsetenv(v);
}

static bool place_of(std::initializer_list<std::pair<const char*, const char*>> vars, ProcessPlace* p, std::string* err) {
    clear_env();
    for (auto& kv : vars) setenv(kv.first, kv.second, 1);
    return process_place_from_env(p, err);
}

static void test_places() {
    ProcessPlace p;
    std::string err;
    CHECK(place_of({}, &p, &err) && p.world == 1 && p.rank == 0 && p.launcher == "none", "plain process: %s", err.c_str());
    CHECK(place_of({{"OMPI_COMM_WORLD_RANK", "5"}, {"OMPI_COMM_WORLD_SIZE", "16"}, {"OMPI_COMM_WORLD_LOCAL_RANK", "1"},
                    {"OMPI_COMM_WORLD_LOCAL_SIZE", "4"}, {"PMIX_NAMESPACE", "prterun-x-123@1"}}, &p, &err) &&
              p.launcher == "mpirun" && p.rank == 5 && p.world == 16 && p.local_rank == 1 && p.local_world == 4 &&
              p.job == "prterun-x-123@1",
          "mpirun: %s rank %d/%d local %d/%d job '%s'", err.c_str(), p.rank, p.world, p.local_rank, p.local_world,
          p.job.c_str());
    CHECK(place_of({{"SLURM_PROCID", "3"}, {"SLURM_STEP_NUM_TASKS", "8"}, {"SLURM_LOCALID", "3"}, {"SLURM_STEP_NUM_NODES", "1"},
                    {"SLURM_JOB_ID", "77"}, {"SLURM_STEP_ID", "0"}}, &p, &err) &&
              p.launcher == "slurm" && p.rank == 3 && p.world == 8 && p.local_rank == 3 && p.local_world == 8 &&
              p.job == "77.0",
          "srun, one node: %s local world %d job '%s'", err.c_str(), p.local_world, p.job.c_str());
    CHECK(place_of({{"SLURM_PROCID", "9"}, {"SLURM_STEP_NUM_TASKS", "16"}, {"SLURM_LOCALID", "1"}, {"SLURM_STEP_NUM_NODES", "2"}},
                   &p, &err) && p.local_world == -1 && p.local_rank == 1 && p.job.empty(),
          "srun, two nodes, no job id: local world %d, job '%s'", p.local_world, p.job.c_str());
    // An sbatch script's own shell (the batch step) has SLURM_PROCID and SLURM_NTASKS but no SLURM_STEP_*: one process.
    CHECK(place_of({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "8"}, {"SLURM_JOB_NUM_NODES", "2"}, {"SLURM_JOB_ID", "77"}}, &p,
                   &err) && p.launcher == "none" && p.world == 1,
          "sbatch shell: launcher %s world %d %s", p.launcher.c_str(), p.world, err.c_str());
    // hydra's PMI_ID (port mode) differs between the processes of one run: never a job id; the ranks of a node
    // share their parent, hydra's proxy, whose pid names the launch. LLMC_JOB_ID overrides any launcher's id.
    const std::string proxy = "pmi-proxy-" + std::to_string(getppid());
    CHECK(place_of({{"PMI_RANK", "1"}, {"PMI_SIZE", "2"}, {"PMI_ID", "1"}}, &p, &err) && p.launcher == "pmi" &&
              p.local_rank == 1 && p.job == proxy,
          "hydra: %s job '%s'", err.c_str(), p.job.c_str());
    CHECK(place_of({{"PMI_RANK", "1"}, {"PMI_SIZE", "2"}, {"LLMC_JOB_ID", "run1"}}, &p, &err) && p.job == "run1",
          "hydra with LLMC_JOB_ID: %s job '%s'", err.c_str(), p.job.c_str());
    // The explicit LLMC_* variables win over a launcher's.
    CHECK(place_of({{"LLMC_RANK", "0"}, {"LLMC_WORLD_SIZE", "2"}, {"OMPI_COMM_WORLD_RANK", "1"}, {"OMPI_COMM_WORLD_SIZE", "2"}},
                   &p, &err) && p.launcher == "llmc" && p.rank == 0,
          "LLMC_* precedence: launcher %s rank %d", p.launcher.c_str(), p.rank);
    // Bad environments name the variable.
    CHECK(!place_of({{"LLMC_RANK", "4"}, {"LLMC_WORLD_SIZE", "4"}}, &p, &err) && err.find("rank 4 of a world of 4") != std::string::npos,
          "rank >= world: '%s'", err.c_str());
    CHECK(!place_of({{"LLMC_RANK", "x"}, {"LLMC_WORLD_SIZE", "4"}}, &p, &err) && err.find("LLMC_RANK='x'") != std::string::npos,
          "malformed rank: '%s'", err.c_str());
    CHECK(!place_of({{"OMPI_COMM_WORLD_RANK", "1"}}, &p, &err) && err.find("OMPI_COMM_WORLD_SIZE is not") != std::string::npos,
          "rank without size: '%s'", err.c_str());
    CHECK(!place_of({{"LLMC_RANK", "0"}, {"LLMC_WORLD_SIZE", "0"}}, &p, &err), "world 0 accepted");
    CHECK(!place_of({{"LLMC_RANK", "0"}, {"LLMC_WORLD_SIZE", "2"}, {"LLMC_LOCAL_WORLD_SIZE", "3"}}, &p, &err) &&
              err.find("local") != std::string::npos,
          "local size > world: '%s'", err.c_str());

    // auto: MASTER_ADDR -> tcp; all ranks on one node -> a per-job file; otherwise a clear request for a method.
    std::string spec;
    ProcessPlace two;
    two.world = 2;
    two.local_world = 2;
    two.job = "j1";
    clear_env();
    CHECK(resolve_rendezvous("auto", two, &spec, &err) && spec.rfind("file:/tmp/llmc-nccl-id-", 0) == 0 &&
              spec.find("-j1") != std::string::npos,
          "one node: '%s'", spec.c_str());
    ProcessPlace one;  // a plain process (--nccl with one rank): no exchange, so no job id needed
    CHECK(resolve_rendezvous("auto", one, &spec, &err) && spec == "none (one rank)", "one rank: '%s' %s", spec.c_str(),
          err.c_str());
    two.job = "";  // no run name (LLMC_* without LLMC_JOB_ID): a shared /tmp file could be a stale one
    two.launcher = "llmc";
    CHECK(!resolve_rendezvous("auto", two, &spec, &err) && err.find("no job id in the llmc environment") != std::string::npos &&
              err.find("LLMC_JOB_ID") != std::string::npos,
          "no job id: '%s'", err.c_str());
    setenv("MASTER_ADDR", "node7", 1);
    CHECK(resolve_rendezvous("auto", two, &spec, &err) && spec == "tcp:node7:29500", "MASTER_ADDR: '%s'", spec.c_str());
    setenv("MASTER_PORT", "1234", 1);
    CHECK(resolve_rendezvous("auto", two, &spec, &err) && spec == "tcp:node7:1234", "MASTER_PORT: '%s'", spec.c_str());
    clear_env();
    two.local_world = -1;
    CHECK(!resolve_rendezvous("auto", two, &spec, &err) && err.find("--dist-init tcp:HOST:PORT") != std::string::npos,
          "several nodes: '%s'", err.c_str());
    CHECK(resolve_rendezvous("tcp:h:1", two, &spec, &err) && spec == "tcp:h:1", "explicit spec kept");
}

// Runs `world` processes; rank r calls rendezvous(spec) after start_delay_ms[r]; rank 0 holds `id`. Returns the
// number of ranks that ended with rank 0's bytes (rank 0 counts if its call succeeded).
static int run_world(const std::string& spec, int world, const std::vector<unsigned char>& id, const std::string& job,
                     const std::vector<int>& start_delay_ms, double timeout_s) {
    std::vector<pid_t> pids;
    for (int r = 0; r < world; r++) {
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            usleep(1000 * (start_delay_ms.empty() ? 0 : start_delay_ms[(size_t)r]));
            ProcessPlace p;
            p.rank = r;
            p.world = world;
            p.job = job;
            std::vector<unsigned char> got(id.size(), 0);
            if (r == 0) got = id;
            std::string err;
            const bool ok = rendezvous(spec, p, got.data(), got.size(), timeout_s, &err);
            if (!ok) fprintf(stderr, "rank %d: %s\n", r, err.c_str());
            _exit(ok && got == id ? 0 : 1);
        }
        pids.push_back(pid);
    }
    int good = 0;
    for (pid_t pid : pids) {
        int st = 0;
        waitpid(pid, &st, 0);
        good += WIFEXITED(st) && WEXITSTATUS(st) == 0;
    }
    return good;
}

static int free_port() {
    const int s = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    bind(s, (sockaddr*)&a, sizeof a);
    getsockname(s, (sockaddr*)&a, &len);
    close(s);
    return ntohs(a.sin_port);
}

static void test_exchange() {
    std::mt19937 gen(12345);
    std::vector<unsigned char> id(128);
    for (auto& c : id) c = (unsigned char)gen();
    char dir[] = "/tmp/llmc_boot_XXXXXX";
    CHECK(mkdtemp(dir) != nullptr, "mkdtemp");
    const std::string file = std::string(dir) + "/id";

    // File: rank 0 first, then rank 0 last (the others poll), then a stale file of another job is ignored.
    CHECK(run_world("file:" + file, 4, id, "jobA", {}, 10) == 4, "file exchange, all start together");
    CHECK(remove(file.c_str()) == 0, "rank 0 wrote the file");
    CHECK(run_world("file:" + file, 4, id, "jobB", {300, 0, 0, 0}, 10) == 4, "file exchange, rank 0 starts last");
    std::vector<unsigned char> other(id.size(), 7);
    CHECK(run_world("file:" + file, 3, other, "jobC", {400, 0, 0}, 10) == 3,
          "a stale file of job B is not read as job C's id");
    ProcessPlace p;
    p.world = 3;
    p.rank = 0;
    rendezvous_done("file:" + file, p);
    struct stat st;
    CHECK(stat(file.c_str(), &st) != 0, "rendezvous_done removes the file");
    // No rank 0: a timeout error that names the file.
    {
        p.rank = 1;
        p.job = "jobD";
        std::string err;
        std::vector<unsigned char> got(id.size());
        CHECK(!rendezvous("file:" + file, p, got.data(), got.size(), 0.3, &err) && err.find("timed out") != std::string::npos &&
                  err.find(file) != std::string::npos,
              "missing rank 0: '%s'", err.c_str());
        p.rank = 0;
        CHECK(!rendezvous("file:/nonexistent_dir_llmc/id", p, got.data(), got.size(), 1, &err) &&
                  err.find("cannot write the rendezvous file") != std::string::npos,
              "unwritable path: '%s'", err.c_str());
    }

    // TCP on the loopback: the others start first and retry until rank 0 listens; then rank 0 first.
    int port = free_port();
    CHECK(run_world("tcp:127.0.0.1:" + std::to_string(port), 4, id, "", {300, 0, 0, 0}, 10) == 4,
          "tcp exchange, rank 0 starts last (port %d)", port);
    port = free_port();
    CHECK(run_world("tcp:localhost:" + std::to_string(port), 3, id, "", {0, 100, 200}, 10) == 3,
          "tcp exchange via a host name (port %d)", port);
    // A stray connection (wrong greeting) before the real ranks is dropped, not counted as a rank.
    port = free_port();
    {
        fflush(stdout);
        pid_t server = fork();
        if (server == 0) {
            ProcessPlace q;
            q.world = 2;
            std::string err;
            std::vector<unsigned char> mine = id;
            _exit(rendezvous("tcp:127.0.0.1:" + std::to_string(port), q, mine.data(), mine.size(), 10, &err) ? 0 : 1);
        }
        usleep(200 * 1000);
        const int c = socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons((uint16_t)port);
        const bool connected = connect(c, (sockaddr*)&a, sizeof a) == 0;
        const char junk[12] = "GET / HTTP";
        if (connected) (void)!write(c, junk, sizeof junk);
        close(c);
        ProcessPlace q;
        q.world = 2;
        q.rank = 1;
        std::string err;
        std::vector<unsigned char> got(id.size(), 0);
        const bool ok = rendezvous("tcp:127.0.0.1:" + std::to_string(port), q, got.data(), got.size(), 10, &err);
        int stv = 0;
        waitpid(server, &stv, 0);
        CHECK(connected && ok && got == id && WIFEXITED(stv) && WEXITSTATUS(stv) == 0,
              "stray connection then rank 1: connected %d ok %d err '%s'", connected, ok, err.c_str());
    }
    // Nobody listening: a timeout naming host and port.
    {
        ProcessPlace q;
        q.world = 2;
        q.rank = 1;
        std::string err;
        std::vector<unsigned char> got(id.size());
        port = free_port();
        CHECK(!rendezvous("tcp:127.0.0.1:" + std::to_string(port), q, got.data(), got.size(), 0.3, &err) &&
                  err.find("127.0.0.1:" + std::to_string(port)) != std::string::npos,
              "no rank 0: '%s'", err.c_str());
    }
    rmdir(dir);
}

static void test_bad_specs() {
    ProcessPlace p;
    p.world = 2;
    p.rank = 1;
    std::string err;
    unsigned char id[16] = {};
    for (const char* bad : {"tcp:host", "tcp::80", "tcp:h:0", "tcp:h:70000", "tcp:h:8x", "file:", "nccl", ""}) {
        CHECK(!rendezvous(bad, p, id, sizeof id, 0.2, &err) && err.find("--dist-init") != std::string::npos,
              "spec '%s' accepted or unclear error '%s'", bad, err.c_str());
    }
#ifndef LLMC_MPI
    CHECK(!rendezvous("mpi", p, id, sizeof id, 0.2, &err) && err.find("USE_MPI=1") != std::string::npos,
          "mpi without MPI: '%s'", err.c_str());
#endif
    ProcessPlace one;  // a one-rank world never waits for anybody
    CHECK(rendezvous("tcp:unresolvable.invalid:1", one, id, sizeof id, 0.1, &err), "world 1 needs no rendezvous");
}

#ifdef LLMC_MPI
// Built with MPI (build/test_bootstrap_mpi): under `mpirun -np 2` the id travels by MPI_Bcast; alone (a singleton
// MPI process) auto picks mpi for an mpirun place, and a place that disagrees with MPI's is refused.
static bool test_mpi() {
    ProcessPlace p;
    std::string err, spec;
    const bool under_mpirun = getenv("OMPI_COMM_WORLD_SIZE") != nullptr;
    if (under_mpirun) {
        CHECK(process_place_from_env(&p, &err) && p.world == 2, "mpirun place: %s world %d", err.c_str(), p.world);
        CHECK(resolve_rendezvous("auto", p, &spec, &err) && spec == "mpi", "auto under mpirun: '%s'", spec.c_str());
        std::vector<unsigned char> id(128, 0);
        if (p.rank == 0)
            for (size_t i = 0; i < id.size(); i++) id[i] = (unsigned char)(i * 37 + 11);
        CHECK(rendezvous("mpi", p, id.data(), id.size(), 30, &err), "mpi rendezvous: %s", err.c_str());
        bool same = true;
        for (size_t i = 0; i < id.size(); i++) same &= id[i] == (unsigned char)(i * 37 + 11);
        CHECK(same, "rank %d did not receive rank 0's id over MPI", p.rank);
        return true;
    }
    p.launcher = "mpirun";
    p.world = 2;
    p.local_world = 2;
    CHECK(resolve_rendezvous("auto", p, &spec, &err) && spec == "mpi", "auto with an mpirun place: '%s'", spec.c_str());
    unsigned char id[8] = {};
    CHECK(!rendezvous("mpi", p, id, sizeof id, 1, &err) && err.find("MPI says rank 0 of 1") != std::string::npos,
          "place disagreeing with MPI: '%s'", err.c_str());
    return false;
}
#endif

#ifndef LLMC_MPI
// The plain build under `mpirun -np 2` (what a GPU trainer without USE_MPI meets): auto picks a per-job file, both
// ranks name the same one from mpirun's own environment, and rank 0's id reaches rank 1 through it.
static bool test_plain_under_mpirun() {
    if (!getenv("OMPI_COMM_WORLD_SIZE")) return false;
    ProcessPlace p;
    std::string err, spec;
    CHECK(process_place_from_env(&p, &err) && p.world == 2 && p.launcher == "mpirun" && !p.job.empty(),
          "mpirun place: %s world %d job '%s'", err.c_str(), p.world, p.job.c_str());
    CHECK(resolve_rendezvous("auto", p, &spec, &err) && spec.rfind("file:/tmp/llmc-nccl-id-", 0) == 0 &&
              spec.find(p.job) != std::string::npos,
          "auto under mpirun without MPI: '%s' %s", spec.c_str(), err.c_str());
    std::vector<unsigned char> id(128, 0);
    if (p.rank == 0)
        for (size_t i = 0; i < id.size(); i++) id[i] = (unsigned char)(i * 29 + 3);
    CHECK(rendezvous(spec, p, id.data(), id.size(), 30, &err), "file rendezvous: %s", err.c_str());
    bool same = true;
    for (size_t i = 0; i < id.size(); i++) same &= id[i] == (unsigned char)(i * 29 + 3);
    CHECK(same, "rank %d did not receive rank 0's id through the file", p.rank);
    // The trainers call rendezvous_done after NCCL's collective init, when every rank has read the file; without
    // that barrier here, the reader removes it.
    if (p.rank == 1) remove(spec.substr(5).c_str());
    return true;
}
#endif

int main() {
#ifdef LLMC_MPI
    if (test_mpi()) return test_summary();  // under mpirun: only the MPI exchange (the others fork processes)
#else
    if (test_plain_under_mpirun()) return test_summary();
#endif
    test_places();
    test_bad_specs();
    test_exchange();
    return test_summary();
}
