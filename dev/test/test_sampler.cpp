// dev/test/test_sampler.cpp — GPTDataset semantics of llmc/sampler.h, checked against an independent model:
// the test's dataset stores token id = global token position, so every token names itself, and the expected
// samples are slices of a token stream the test builds on its own from doc_idx.
//
// `build/test_sampler --bench-mdm` instead times the build for the seed's MDM run shape (208,931 documents,
// 99,952,399 tokens, 500 epochs, S = 2048) from synthetic sizes.
#include <unistd.h>
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>
#include "dev/test/test.h"
#include "llmc/sampler.h"

static std::string g_dir;
static std::vector<int> g_sizes;  // item sizes of the test dataset
static int64_t g_total = 0;

// ~120 documents of 1..200 tokens; token id = global position (kept under the GPT-2 vocabulary).
static void write_dataset(const std::string& prefix) {
    uint32_t x = 12345;
    IndexedDatasetWriter w;
    w.open_or_die(prefix);
    std::vector<int> doc;
    while (true) {
        x = x * 1103515245u + 12345u;
        int len = 1 + (int)((x >> 16) % 200);
        if (g_total + len > 12000) break;
        doc.clear();
        for (int k = 0; k < len; k++) doc.push_back((int)(g_total + k));
        w.add_document_or_die(doc.data(), doc.size());
        g_sizes.push_back(len);
        g_total += len;
    }
    w.finalize_or_die();
}

static Sampler* build(const IndexedDataset& ds, int64_t U, SubsetMode mode, int S, double E, int64_t ns,
                      uint32_t seed) {
    SamplerConfig c;
    c.unique_tokens = U;
    c.subset = mode;
    c.seq_len = S;
    c.epochs = E;
    c.num_samples = ns;
    c.seed = seed;
    Sampler* s = new Sampler();
    std::string err;
    if (!s->build(ds, c, &err)) llmc_die("sampler build failed: %s", err.c_str());
    return s;
}

// The seed's numbers (seed_spec §2.3) and the E' / separate_last_epoch rules on hand-computed cases.
static void test_plan() {
    CHECK(samples_for_epochs(99952399, 500, 2048) == 24402441, "MDM TRAIN_SAMPLES");
    CHECK(samples_for_epochs(99952399, 50, 2048) == 2440244, "AR TRAIN_SAMPLES");
    SamplerPlan p;
    std::string err;
    CHECK(sampler_plan(99952399, 2048, 24402441, &p, &err) && p.num_epochs == 500 && !p.separate_last_epoch,
          "MDM plan: %ld epochs", (long)p.num_epochs);
    CHECK(sampler_plan(99952399, 2048, 2440244, &p, &err) && p.num_epochs == 50 && !p.separate_last_epoch,
          "AR plan: %ld epochs", (long)p.num_epochs);
    // E' is the smallest E' >= 1 with floor((E'T - 1)/S) >= N: brute force over small cases.
    bool ok = true;
    for (int64_t T = 2; T < 60; T += 7)
        for (int S = 1; S < 20; S += 3)
            for (int64_t N = 1; N < 40; N += 5) {
                int64_t E = 1;
                while ((E * T - 1) / S < N) E++;
                ok &= sampler_plan(T, S, N, &p, &err) && p.num_epochs == E && p.total_samples == (E * T - 1) / S;
            }
    CHECK(ok, "E' differs from its definition");
    // T = 1000, S = 100: 9 samples per epoch; 80% threshold int(7.2) = 7 samples of the last epoch.
    CHECK(sampler_plan(1000, 100, 12, &p, &err) && p.num_epochs == 2 && p.separate_last_epoch &&
          p.samples_before_last_epoch == 9, "12 samples: 3 from epoch 2 -> separate");
    CHECK(sampler_plan(1000, 100, 15, &p, &err) && p.separate_last_epoch, "15 samples: 6 < 7 -> separate");
    CHECK(sampler_plan(1000, 100, 16, &p, &err) && !p.separate_last_epoch, "16 samples: 7 -> together");
    CHECK(sampler_plan(1000, 100, 9, &p, &err) && p.num_epochs == 1 && !p.separate_last_epoch, "one epoch");
    CHECK(!sampler_plan(1, 100, 9, &p, &err), "one token cannot make a sample");
}

// The reference shuffle written from the spec with plain rng_u32 calls (no stream caching).
template <class T>
static void reference_shuffle(T* a, int64_t n, uint32_t seed, uint32_t purpose, uint64_t* counter) {
    for (int64_t i = n - 1; i > 0; i--) {
        auto next = [&]() {
            uint64_t c = (*counter)++;
            return rng_u32(seed, purpose, 0, 0, (uint32_t)(c >> 32), (uint32_t)c);
        };
        int64_t j = rng_bounded((uint32_t)(i + 1), next);
        std::swap(a[i], a[j]);
    }
}

// Full consistency of one sampler: subset, doc_idx multiplicities, shuffles equal to the reference, every
// sample equal to its slice of the independently concatenated stream, each token seen E' times.
static void check_sampler(const Sampler& s, int64_t T_expect, int64_t n_docs_expect, const char* what) {
    const int S = s.cfg.seq_len;
    const int64_t nd = s.num_docs(), E = s.num_epochs(), N = s.size();
    CHECK(s.tokens_per_epoch() == T_expect && nd == n_docs_expect, "%s: T %ld docs %ld, want %ld %ld", what,
          (long)s.tokens_per_epoch(), (long)nd, (long)T_expect, (long)n_docs_expect);
    // Subset documents in file order: doc d = global tokens [start_d, start_d + size), the last one cut at T.
    std::vector<int64_t> start(nd);
    for (int64_t d = 0, pos = 0; d < nd; pos += g_sizes[d], d++) start[d] = pos;
    auto doc_len = [&](int64_t d) { return std::min<int64_t>(g_sizes[d], T_expect - start[d]); };
    // doc_idx holds every document E' times; with a separate last epoch its tail is one whole epoch.
    std::vector<int> count(nd, 0);
    for (int32_t d : s.doc_idx) count[d]++;
    bool ok = (int64_t)s.doc_idx.size() == E * nd;
    for (int64_t d = 0; d < nd; d++) ok &= count[d] == E;
    CHECK(ok, "%s: doc_idx is not %ld copies of every document", what, (long)E);
    // Shuffles: identical to the reference Fisher-Yates over the Philox stream (two parts when separated).
    std::vector<int32_t> docs(E * nd);
    for (int64_t k = 0; k < E * nd; k++) docs[k] = (int32_t)(k % nd);
    uint64_t c = 0;
    int64_t first = s.plan.separate_last_epoch ? (E - 1) * nd : E * nd;
    reference_shuffle(docs.data(), first, s.cfg.seed, RNG_SHUFFLE_DOCS, &c);
    reference_shuffle(docs.data() + first, E * nd - first, s.cfg.seed, RNG_SHUFFLE_DOCS, &c);
    CHECK(docs == s.doc_idx, "%s: doc_idx differs from the reference shuffle", what);
    std::vector<uint32_t> perm(N);
    for (int64_t j = 0; j < N; j++) perm[j] = (uint32_t)j;
    c = 0;
    int64_t first_s = s.plan.separate_last_epoch ? s.plan.samples_before_last_epoch : N;
    reference_shuffle(perm.data(), first_s, s.cfg.seed, RNG_SHUFFLE_SAMPLES, &c);
    reference_shuffle(perm.data() + first_s, N - first_s, s.cfg.seed, RNG_SHUFFLE_SAMPLES, &c);
    CHECK(perm == s.shuffle_idx, "%s: shuffle_idx differs from the reference shuffle", what);
    // The stream: documents in doc_idx order; sample j must be stream[j*S .. j*S + S].
    std::vector<int> stream;
    for (int32_t d : s.doc_idx)
        for (int64_t k = 0; k < doc_len(d); k++) stream.push_back((int)(start[d] + k));
    CHECK((int64_t)stream.size() == E * T_expect, "%s: stream length", what);
    std::vector<int> tok(S + 1), seen(T_expect, 0);
    bool slices = true, inside = true;
    for (int64_t i = 0; i < N; i++) {
        s.get_sample(i, tok.data());
        int64_t j = s.shuffle_idx[i];
        slices &= std::equal(tok.begin(), tok.end(), stream.begin() + j * S);
        // Count each token once: a sample's last token is the next sample's first, except for the last sample.
        for (int k = 0; k < S + (j == N - 1 ? 1 : 0); k++) {
            inside &= tok[k] >= 0 && tok[k] < T_expect;
            if (tok[k] >= 0 && tok[k] < T_expect) seen[tok[k]]++;
        }
    }
    CHECK(slices, "%s: a sample is not its slice of the document stream", what);
    CHECK(inside, "%s: a token from outside the %ld-token subset was served", what, (long)T_expect);
    // N*S + 1 stream tokens are covered; the r = E'T - N*S - 1 left at the stream's end are seen once less.
    int64_t r = E * T_expect - N * S - 1, deficit = 0;
    bool counts = true;
    for (int64_t t = 0; t < T_expect; t++) counts &= seen[t] == E || seen[t] == E - 1, deficit += E - seen[t];
    CHECK(counts && deficit == r, "%s: token counts off (deficit %ld, want %ld)", what, (long)deficit, (long)r);
}

static void test_subsets(const IndexedDataset& ds) {
    // U = 10027 cuts a document in the middle; 3U - 1 = 470 * 64, so every token is seen exactly 3 times.
    const int64_t U = 10027;
    int64_t pos = 0, k = 0;
    while (pos + g_sizes[k] < U) pos += g_sizes[k++];
    CHECK(pos < U && U < pos + g_sizes[k], "the test needs U inside a document");
    Sampler* s = build(ds, U, SUBSET_EXACT, 64, 3, 0, 1234);
    CHECK(s->num_samples() == 470 && s->size() == 470 && s->num_epochs() == 3, "samples %ld", (long)s->size());
    check_sampler(*s, U, k + 1, "exact");
    CHECK(s->epoch_of(470) == 470.0 * 64 / U, "epoch_of");
    delete s;
    // Whole documents: the first documents reaching >= U, i.e. through document k, untruncated.
    s = build(ds, U, SUBSET_WHOLE_DOCS, 64, 3, 0, 1234);
    check_sampler(*s, pos + g_sizes[k], k + 1, "whole docs");
    CHECK(s->num_samples() == 3 * (pos + g_sizes[k]) / 64, "whole-docs TRAIN_SAMPLES uses the subset's T");
    delete s;
    // U = 0: the whole dataset; odd S and fractional epochs.
    s = build(ds, 0, SUBSET_EXACT, 37, 2.5, 0, 7);
    check_sampler(*s, g_total, (int64_t)g_sizes.size(), "all docs");
    CHECK(s->num_samples() == (int64_t)(2.5 * g_total) / 37, "fractional epochs");
    delete s;
    // num_samples just past one epoch: the last epoch is shuffled separately.
    int64_t per_epoch = (U - 1) / 64;
    s = build(ds, U, SUBSET_EXACT, 64, 0, per_epoch + 3, 99);
    CHECK(s->plan.separate_last_epoch && s->num_epochs() == 2, "expected a separate last epoch");
    check_sampler(*s, U, k + 1, "separate last epoch");
    bool whole = true;  // its last epoch's documents: a permutation of all of them
    std::vector<int32_t> tail(s->doc_idx.end() - (k + 1), s->doc_idx.end());
    std::sort(tail.begin(), tail.end());
    for (int64_t d = 0; d <= k; d++) whole &= tail[d] == d;
    CHECK(whole, "the separated last epoch must hold every document once");
    delete s;
    std::string err;
    Sampler bad;
    SamplerConfig c;
    c.unique_tokens = g_total + 1;
    CHECK(!bad.build(ds, c, &err) && err.find("exceed") != std::string::npos, "U > T: '%s'", err.c_str());
    c.unique_tokens = 0;
    c.epochs = 0;
    CHECK(!bad.build(ds, c, &err) && err.find("epochs") != std::string::npos, "epochs 0: '%s'", err.c_str());
}

static void test_seeds(const IndexedDataset& ds) {
    Sampler* a = build(ds, 0, SUBSET_EXACT, 64, 2, 0, 1234);
    Sampler* b = build(ds, 0, SUBSET_EXACT, 64, 2, 0, 1234);
    Sampler* c = build(ds, 0, SUBSET_EXACT, 64, 2, 0, 1235);
    CHECK(a->doc_idx == b->doc_idx && a->shuffle_idx == b->shuffle_idx, "same seed, different order");
    CHECK(a->doc_idx != c->doc_idx && a->shuffle_idx != c->shuffle_idx, "different seeds, same order");
    CHECK(a->fingerprint() == b->fingerprint() && a->fingerprint() != c->fingerprint(), "fingerprints");
    delete a;
    delete b;
    delete c;
}

// Every (rank, micro-step) slice of a global batch together is exactly that batch, for 1, 2 and 4 ranks.
static void test_ranks(const IndexedDataset& ds) {
    Sampler* s = build(ds, 0, SUBSET_EXACT, 32, 1, 0, 5);
    const int G = 8, S1 = 33;
    std::string err;
    for (int W : {1, 2, 4})
        for (int b : {1, 2}) {
            bool ok = true;
            for (int64_t step = 0; step < 4; step++) {
                std::vector<int64_t> got;
                for (int r = 0; r < W; r++)
                    for (int m = 0; m < G / (b * W); m++) {
                        std::vector<int64_t> pos(b);
                        std::vector<int> tok(b * S1), want(S1);
                        ok &= s->micro_batch(step * G, G, b, W, r, m, pos.data(), tok.data(), &err);
                        for (int k = 0; k < b; k++) {
                            s->get_sample(pos[k], want.data());
                            ok &= std::equal(want.begin(), want.end(), tok.begin() + k * S1);
                            got.push_back(pos[k]);
                        }
                    }
                std::sort(got.begin(), got.end());
                for (int k = 0; k < G; k++) ok &= (int64_t)got.size() == G && got[k] == step * G + k;
            }
            CHECK(ok, "W=%d b=%d: rank slices do not partition the global batches (%s)", W, b, err.c_str());
        }
    // Rank r's slice of micro-step m is contiguous at m*b*W + r*b (the seed's MegatronPretrainingSampler).
    int64_t pos[2];
    std::vector<int> tok(2 * S1);
    CHECK(s->micro_batch(16, G, 2, 2, 1, 1, pos, tok.data(), &err) && pos[0] == 16 + 4 + 2 && pos[1] == 23,
          "positions %ld %ld", (long)pos[0], (long)pos[1]);
    CHECK(!s->micro_batch(0, 6, 4, 1, 0, 0, pos, tok.data(), &err) && err.find("multiple") != std::string::npos,
          "G %% b*W: '%s'", err.c_str());
    CHECK(!s->micro_batch(s->size() - 1, 2, 2, 1, 0, 0, pos, tok.data(), &err) &&
          err.find("only") != std::string::npos, "past the end: '%s'", err.c_str());
    delete s;
}

// Save the cursor mid-run, rebuild everything, restore, continue: the same batches as the uninterrupted run.
static void test_cursor(const IndexedDataset& ds) {
    const int G = 4, b = 2;
    Sampler* a = build(ds, 9000, SUBSET_EXACT, 48, 2, 0, 77);
    std::vector<std::vector<int>> run;
    for (int64_t step = 0; step < 6; step++)
        for (int m = 0; m < 2; m++) {
            int64_t pos[b];
            std::vector<int> tok(b * 49);
            a->micro_batch_or_die(step * G, G, b, 1, 0, m, pos, tok.data());
            run.push_back(tok);
        }
    std::string path = g_dir + "/cursor.bin";
    DataCursor saved = a->cursor(3 * G);
    FILE* f = fopen_or_die(path.c_str(), "wb");
    fwrite_or_die(&saved, sizeof saved, 1, f, "cursor");
    fclose(f);
    delete a;

    Sampler* r = build(ds, 9000, SUBSET_EXACT, 48, 2, 0, 77);
    DataCursor loaded;
    f = fopen_or_die(path.c_str(), "rb");
    fread_or_die(&loaded, sizeof loaded, 1, f, "cursor");
    fclose(f);
    int64_t consumed = -1;
    std::string err;
    CHECK(r->restore(loaded, &consumed, &err) && consumed == 12, "restore: %s", err.c_str());
    bool same = true;
    for (int64_t step = 3; step < 6; step++, consumed += G)
        for (int m = 0; m < 2; m++) {
            int64_t pos[b];
            std::vector<int> tok(b * 49);
            r->micro_batch_or_die(consumed, G, b, 1, 0, m, pos, tok.data());
            same &= tok == run[step * 2 + m];
        }
    CHECK(same, "resumed batches differ from the uninterrupted run");
    delete r;
    // Any change of data configuration is caught.
    Sampler* other[3] = {build(ds, 9000, SUBSET_EXACT, 48, 2, 0, 78), build(ds, 9001, SUBSET_EXACT, 48, 2, 0, 77),
                         build(ds, 9000, SUBSET_EXACT, 64, 2, 0, 77)};
    for (Sampler* o : other) {
        CHECK(!o->restore(loaded, &consumed, &err) && err.find("differs") != std::string::npos, "'%s'", err.c_str());
        delete o;
    }
}

// Validation: the first N shuffled samples of a sampler built for exactly N samples over the whole set.
static void test_validation(const IndexedDataset& ds) {
    Sampler v, v2, v3;
    std::string err;
    CHECK(build_validation_sampler(v, ds, 64, 20, 1234, &err), "%s", err.c_str());
    CHECK(build_validation_sampler(v2, ds, 64, 20, 1234, &err), "%s", err.c_str());
    CHECK(build_validation_sampler(v3, ds, 64, 20, 4321, &err), "%s", err.c_str());
    CHECK(v.num_samples() == 20 && v.num_epochs() == 1 && v.tokens_per_epoch() == g_total, "validation plan");
    // One epoch, all samples shuffled: the first 20 positions are 20 distinct samples of the one-epoch stream.
    std::vector<uint32_t> first(v.shuffle_idx.begin(), v.shuffle_idx.begin() + 20);
    std::sort(first.begin(), first.end());
    CHECK(std::unique(first.begin(), first.end()) == first.end(), "validation samples repeat");
    check_sampler(v, g_total, (int64_t)g_sizes.size(), "validation");
    std::vector<int> x(65), y(65), z(65);
    bool same = true, differ = false;
    for (int i = 0; i < 20; i++) {
        v.get_sample(i, x.data());
        v2.get_sample(i, y.data());
        v3.get_sample(i, z.data());
        same &= x == y;
        differ |= x != z;
    }
    CHECK(same && differ, "validation set must be fixed per seed and differ across seeds");
}

static void bench_mdm() {
    const int64_t n = 208931, T = 99952399;
    std::vector<int32_t> sizes(n);
    int64_t sum = 0;
    uint32_t x = 1;
    for (int64_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        sizes[i] = 100 + (int32_t)((x >> 8) % 757);  // mean ~478, like C4 documents
        sum += sizes[i];
    }
    for (int64_t i = 0; sum != T; i = (i + 1) % n) {  // spread the difference so the total is exactly T
        int32_t d = sum < T ? 1 : -1;
        sizes[i] += d;
        sum += d;
    }
    SamplerConfig c;
    c.epochs = 500;
    Sampler s;
    std::string err;
    auto t0 = std::chrono::steady_clock::now();
    if (!s.build_from_sizes(sizes.data(), n, c, &err)) llmc_die("%s", err.c_str());
    double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    double mb = (s.doc_idx.size() * 4.0 + s.sample_idx.size() * 8.0 + s.shuffle_idx.size() * 4.0) / 1e6;
    printf("MDM shape: %ld docs, T=%ld, %ld epochs, %ld samples (%ld requested): build %.2f s, index arrays %.0f MB\n",
           (long)n, (long)T, (long)s.num_epochs(), (long)s.size(), (long)s.num_samples(), sec, mb);
}

int main(int argc, char** argv) {
    if (argc > 1 && std::string(argv[1]) == "--bench-mdm") return bench_mdm(), 0;
    char tmpl[] = "/tmp/llmc_test_sampler_XXXXXX";
    if (!mkdtemp(tmpl)) llmc_die("mkdtemp failed");
    g_dir = tmpl;
    write_dataset(g_dir + "/ds");
    IndexedDataset ds;
    ds.open_or_die(g_dir + "/ds");
    test_plan();
    test_subsets(ds);
    test_seeds(ds);
    test_ranks(ds);
    test_cursor(ds);
    test_validation(ds);
    std::string rm = "rm -rf '" + g_dir + "'";
    if (system(rm.c_str()) != 0) printf("warning: could not remove %s\n", g_dir.c_str());
    return test_summary();
}
