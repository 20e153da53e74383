// Checkpoint round trip, every corruption rejected with its own message, and atomicity under kill -9.
#include <csignal>
#include <vector>
#include "dev/test/test.h"
#include "llmc/checkpoint.h"

static std::vector<float> ramp(size_t n, float scale) {
    std::vector<float> v(n);
    for (size_t i = 0; i < n; i++) v[i] = scale * (float)((i * 2654435761u) % 1000) / 1000.0f;
    return v;
}

static void corrupt(const char* src, const char* dst, long offset, long truncate_to) {
    std::string s = read_file_or_die(src);
    if (truncate_to >= 0) s.resize((size_t)truncate_to);
    if (offset >= 0) s[(size_t)offset] ^= 0x40;
    FILE* f = fopen_or_die(dst, "wb");
    fwrite_or_die(s.data(), 1, s.size(), f, dst);
    fclose(f);
}

static std::string load_error(const char* path) {
    CheckpointHeader h;
    std::vector<float> p;
    std::string err;
    return checkpoint_load(path, &h, &p, nullptr, nullptr, &err) ? "" : err;
}

int main() {
    char dir[] = "/tmp/ckpt_testXXXXXX";
    CHECK(mkdtemp(dir) != nullptr, "mkdtemp");
    std::string path = std::string(dir) + "/model.bin";
    ModelConfig c = model_preset("tiny", 64);
    size_t n = num_parameters(c);
    std::vector<float> p = ramp(n, 1), m = ramp(n, 2), v = ramp(n, 3);
    CheckpointHeader h = checkpoint_header(c, OBJ_MDM);
    h.step = 17; h.consumed_samples = 17 * 256; h.seed = 1234; h.sampler_fingerprint = 0xabcdef; h.has_optimizer = 1;
    h.best_val_loss = 4.5; h.best_val_step = 10;
    checkpoint_save(path.c_str(), h, p.data(), m.data(), v.data());

    CheckpointHeader r;
    std::vector<float> rp, rm, rv;
    std::string err;
    CHECK(checkpoint_load(path.c_str(), &r, &rp, &rm, &rv, &err), "load: %s", err.c_str());
    CHECK(rp == p && rm == m && rv == v, "payload round trip");
    CHECK(r.step == 17 && r.consumed_samples == 17 * 256 && r.seed == 1234 && r.sampler_fingerprint == 0xabcdef &&
              r.objective == OBJ_MDM && r.best_val_loss == 4.5 && r.best_val_step == 10, "header round trip");
    ModelConfig rc = checkpoint_config(r);
    CHECK(rc.d_model == c.d_model && rc.n_layer == c.n_layer && rc.ffn == c.ffn && rc.mask_id == c.mask_id, "config");

    // Each corruption has its own message.
    std::string bad = std::string(dir) + "/bad.bin";
    long size = (long)(sizeof(CheckpointHeader) + 3 * n * sizeof(float));
    corrupt(path.c_str(), bad.c_str(), 0, -1);
    CHECK(load_error(bad.c_str()).find("bad magic") != std::string::npos, "magic: %s", load_error(bad.c_str()).c_str());
    corrupt(path.c_str(), bad.c_str(), -1, 100);
    CHECK(load_error(bad.c_str()).find("truncated header") != std::string::npos, "short header");
    corrupt(path.c_str(), bad.c_str(), -1, size - 4);
    CHECK(load_error(bad.c_str()).find("truncated optimizer") != std::string::npos, "truncated: %s", load_error(bad.c_str()).c_str());
    corrupt(path.c_str(), bad.c_str(), (long)sizeof(CheckpointHeader) + 40, -1);
    CHECK(load_error(bad.c_str()).find("checksum") != std::string::npos, "flipped payload bit");
    corrupt(path.c_str(), bad.c_str(), 8, -1);
    CHECK(load_error(bad.c_str()).find("version") != std::string::npos, "version");
    corrupt(path.c_str(), bad.c_str(), offsetof(CheckpointHeader, d_model), -1);
    CHECK(load_error(bad.c_str()).find("corrupt header") != std::string::npos, "shape: %s", load_error(bad.c_str()).c_str());
    CHECK(load_error((std::string(dir) + "/missing.bin").c_str()).find("cannot open") != std::string::npos, "missing");

    // A checkpoint of another shape or objective is refused, naming the difference.
    ModelConfig other = c;
    other.n_layer = 3;
    CHECK_DIES([&] { checkpoint_require_match(r, other, OBJ_MDM, path.c_str()); }, "n_layer 2, the requested model has 3");
    CHECK_DIES([&] { checkpoint_require_match(r, c, OBJ_AR, path.c_str()); }, "is an mdm model");

    // kill -9 in the middle of writing a large checkpoint leaves the previous one intact.
    ModelConfig big = model_preset("mini", 64);  // ~14M parameters: 170 MB with moments, a write takes a while
    size_t nb = num_parameters(big);
    std::vector<float> bp = ramp(nb, 5);
    CheckpointHeader bh = checkpoint_header(big, OBJ_AR);
    bh.has_optimizer = 1;
    std::string bigpath = std::string(dir) + "/big.bin";
    checkpoint_save(bigpath.c_str(), bh, bp.data(), bp.data(), bp.data());
    for (int trial = 0; trial < 3; trial++) {
        pid_t pid = fork();
        if (pid == 0) {
            for (;;) checkpoint_save(bigpath.c_str(), bh, bp.data(), bp.data(), bp.data());
        }
        usleep(150000 + 70000 * trial);
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
        CheckpointHeader lh;
        std::vector<float> lp;
        std::string e;
        bool ok = checkpoint_load(bigpath.c_str(), &lh, &lp, nullptr, nullptr, &e);
        CHECK(ok && lp == bp, "previous checkpoint intact after kill -9 (trial %d): %s", trial, e.c_str());
    }
    std::string cmd = std::string("rm -rf ") + dir;
    CHECK(system(cmd.c_str()) == 0, "cleanup");
    return test_summary();
}
