// llmc/sampler.h — which S+1 tokens every training / validation sequence holds: Megatron's GPTDataset
// (seed_spec §5.4) plus its MegatronPretrainingSampler (§5.5), with Philox shuffles instead of numpy's.
//
//   1. Subset: the first U tokens of the dataset in file order ("exact", the last document truncated) or the
//      first whole documents reaching >= U tokens ("whole documents", like the seed's `head -n K`).
//      T = tokens per epoch = the subset's token count.
//   2. Epochs: E' = smallest E' >= 1 with floor((E'T - 1)/S) >= num_samples; doc_idx = all documents E' times,
//      shuffled as one array (epochs mix), or, with separate_last_epoch, the first E'-1 epochs and the last
//      epoch shuffled apart.
//   3. sample_idx: walk the doc_idx token stream; sample j covers stream tokens [j*S, j*S + S] — S+1 tokens,
//      so consecutive samples share one boundary token (AR inputs/targets are tokens[0:S] / tokens[1:S+1]).
//   4. shuffle_idx: the N = floor((E'T - 1)/S) samples shuffled (the last epoch's apart when separated).
//   5. Global batch G of optimizer step k = shuffled positions kG .. kG+G-1; micro-step m of data-parallel
//      rank r (micro-batch b, W ranks) takes positions kG + m*b*W + r*b + [0, b).
//
// Shuffles: Fisher–Yates from the end, j = rng_bounded(i+1) over the Philox stream
// rng_u32(seed, purpose, 0, 0, hi, lo) with counter = (hi << 32 | lo) = 0, 1, 2, ... and purpose
// RNG_SHUFFLE_DOCS for doc_idx, RNG_SHUFFLE_SAMPLES for shuffle_idx; the second shuffle of a separated last
// epoch continues the same stream, as the seed's RandomState does. This deliberately replaces numpy's
// RandomState(seed): orders differ from the seed's, the statistics are the same.
#pragma once
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>
#include "dataset.h"
#include "philox.h"
#include "utils.h"

enum SubsetMode { SUBSET_EXACT = 0, SUBSET_WHOLE_DOCS = 1 };

struct SamplerConfig {
    int64_t unique_tokens = 0;        // U; 0 = the whole dataset
    SubsetMode subset = SUBSET_EXACT;
    int seq_len = 2048;               // S (each sample holds S+1 tokens)
    int64_t num_samples = 0;          // samples to serve; 0 = floor(T*epochs/S)
    double epochs = 1.0;              // used only when num_samples == 0
    uint32_t seed = 1234;
};

// The counts GPTDataset derives from T, S and num_samples (no arrays; cheap to compute and to test).
struct SamplerPlan {
    int64_t tokens_per_epoch = 0;          // T
    int64_t num_samples = 0;               // samples requested
    int64_t num_epochs = 0;                // E'
    int64_t total_samples = 0;             // N = floor((E'T - 1)/S) samples built (>= num_samples)
    bool separate_last_epoch = false;
    int64_t samples_before_last_epoch = 0; // floor(((E'-1)T - 1)/S): size of the first shuffle when separated
};

// The seed's TRAIN_SAMPLES = (U * EPOCHS) // S; integral epochs use exact integer arithmetic.
inline int64_t samples_for_epochs(int64_t T, double epochs, int S) {
    if (epochs == std::floor(epochs) && epochs < 9e15 / (double)(T > 0 ? T : 1))
        return (int64_t)epochs * T / S;
    return (int64_t)std::floor((long double)T * epochs / S);
}

inline bool sampler_plan(int64_t T, int S, int64_t num_samples, SamplerPlan* p, std::string* err) {
    if (S < 1) return *err = strfmt("sequence length %d must be >= 1", S), false;
    if (T < 2) return *err = strfmt("the data has %" PRId64 " tokens; a sample needs at least 2", T), false;
    if (num_samples < 1) return *err = strfmt("number of samples %" PRId64 " must be >= 1", num_samples), false;
    p->tokens_per_epoch = T;
    p->num_samples = num_samples;
    // floor((E'T - 1)/S) >= N  <=>  E'T >= N*S + 1, so E' = ceil((N*S + 1)/T), at least 1.
    int64_t need = num_samples * (int64_t)S + 1;
    p->num_epochs = (need + T - 1) / T;
    if (p->num_epochs < 1) p->num_epochs = 1;
    p->total_samples = (p->num_epochs * T - 1) / S;
    p->separate_last_epoch = false;
    p->samples_before_last_epoch = 0;
    if (p->num_epochs > 1) {
        // Megatron: separate the last epoch when less than 80% of it is needed, so the partial epoch's
        // samples are not smeared over the whole run.
        int64_t before = ((p->num_epochs - 1) * T - 1) / S;
        int64_t last_needed = num_samples - before;
        int64_t per_epoch = (T - 1) / S;
        p->separate_last_epoch = last_needed < (int64_t)(0.80 * (double)per_epoch);
        p->samples_before_last_epoch = before;
    }
    return true;
}

// Sequential u32 draws equal to rng_u32(seed, purpose, 0, 0, counter >> 32, counter & 0xffffffff) for
// counter = 0, 1, 2, ...; one Philox call serves four consecutive draws.
struct PhiloxStream {
    uint32_t seed, purpose;
    uint64_t counter = 0;
    Philox4 block = {{0, 0, 0, 0}};
    PhiloxStream(uint32_t s, uint32_t p) : seed(s), purpose(p) {}
    uint32_t operator()() {
        uint32_t lo = (uint32_t)counter, hi = (uint32_t)(counter >> 32);
        if ((lo & 3) == 0) block = philox4x32_10(Philox4{{lo >> 2, hi, 0, 0}}, seed, purpose);
        counter++;
        return block.v[lo & 3];
    }
};

// Fisher–Yates from the end (n < 2^32). The swap partners do not depend on the array's contents, so they are
// drawn a block ahead and prefetched: on a large array each swap is otherwise a serial cache miss.
template <class T>
inline void philox_shuffle(T* a, int64_t n, PhiloxStream& rng) {
    const int64_t BLOCK = 256;
    uint32_t js[BLOCK];
    for (int64_t top = n - 1; top > 0; top -= BLOCK) {
        int64_t count = top < BLOCK ? top : BLOCK;  // handles i = top, top-1, ..., top-count+1 (>= 1)
        for (int64_t k = 0; k < count; k++) {
            js[k] = rng_bounded((uint32_t)(top - k + 1), rng);
            __builtin_prefetch(&a[js[k]], 1);
        }
        for (int64_t k = 0; k < count; k++) {
            int64_t i = top - k, j = js[k];
            T t = a[i];
            a[i] = a[j];
            a[j] = t;
        }
    }
}

// What a checkpoint stores to resume the data stream: samples consumed so far, and the sampler's
// fingerprint so that resuming with other data or another configuration is caught.
struct DataCursor {
    int64_t consumed_samples = 0;
    uint64_t fingerprint = 0;
};

struct Sampler {
    const IndexedDataset* ds = nullptr;
    SamplerConfig cfg;
    SamplerPlan plan;
    std::vector<int32_t> doc_sizes;   // subset documents' sizes (dataset items 0..n-1; exact mode truncates the last)
    std::vector<int32_t> doc_idx;     // E' * n document ids in stream order
    std::vector<int64_t> sample_idx;  // (N+1) pairs: (position in doc_idx, token offset in that document)
    std::vector<uint32_t> shuffle_idx;// N: shuffled position -> sample

    int64_t size() const { return plan.total_samples; }
    int64_t num_samples() const { return plan.num_samples; }
    int64_t tokens_per_epoch() const { return plan.tokens_per_epoch; }
    int64_t num_epochs() const { return plan.num_epochs; }
    int64_t num_docs() const { return (int64_t)doc_sizes.size(); }

    // Builds the index arrays over the dataset's items.
    bool build(const IndexedDataset& dataset, const SamplerConfig& config, std::string* err) {
        std::vector<int32_t> sizes(dataset.num_items);
        for (int64_t i = 0; i < dataset.num_items; i++) sizes[i] = dataset.item_size(i);
        ds = &dataset;
        return build_from_sizes(sizes.data(), dataset.num_items, config, err);
    }
    void build_or_die(const IndexedDataset& dataset, const SamplerConfig& config) {
        std::string err;
        if (!build(dataset, config, &err)) llmc_die("%s", err.c_str());
    }

    // The arrays only depend on the item sizes (used directly by benchmarks; get_sample needs ds).
    bool build_from_sizes(const int32_t* sizes, int64_t n, const SamplerConfig& config, std::string* err) {
        cfg = config;
        int64_t total = 0;
        for (int64_t i = 0; i < n; i++) total += sizes[i];
        int64_t U = cfg.unique_tokens;
        if (U < 0) return *err = strfmt("unique tokens %" PRId64 " must be >= 0", U), false;
        if (U > total)
            return *err = strfmt("unique tokens %" PRId64 " exceed the dataset's %" PRId64 " tokens", U, total),
                   false;
        // 1. subset
        doc_sizes.clear();
        int64_t T = 0;
        for (int64_t i = 0; i < n && (U == 0 || T < U); i++) {
            int64_t s = sizes[i];
            if (U > 0 && cfg.subset == SUBSET_EXACT && T + s > U) s = U - T;
            doc_sizes.push_back((int32_t)s);
            T += s;
        }
        if (cfg.seq_len < 1) return *err = strfmt("sequence length %d must be >= 1", cfg.seq_len), false;
        int64_t want = cfg.num_samples > 0 ? cfg.num_samples : samples_for_epochs(T, cfg.epochs, cfg.seq_len);
        if (cfg.num_samples <= 0 && !(cfg.epochs > 0))
            return *err = strfmt("epochs %g must be > 0", cfg.epochs), false;
        if (!sampler_plan(T, cfg.seq_len, want, &plan, err)) return false;
        int64_t nd = (int64_t)doc_sizes.size(), E = plan.num_epochs, N = plan.total_samples;
        if (E * nd >= (int64_t)UINT32_MAX || N >= (int64_t)UINT32_MAX)
            return *err = strfmt("%" PRId64 " epochs of %" PRId64 " documents (%" PRId64 " samples) is too many "
                                 "for the 32-bit index arrays", E, nd, N), false;
        // 2. doc_idx: epoch-major copies, one shuffle (or two when the last epoch is separate).
        doc_idx.resize(E * nd);
        for (int64_t e = 0; e < E; e++)
            for (int64_t d = 0; d < nd; d++) doc_idx[e * nd + d] = (int32_t)d;
        PhiloxStream doc_rng(cfg.seed, RNG_SHUFFLE_DOCS);
        int64_t first = plan.separate_last_epoch ? (E - 1) * nd : E * nd;
        philox_shuffle(doc_idx.data(), first, doc_rng);
        philox_shuffle(doc_idx.data() + first, E * nd - first, doc_rng);
        // 3. sample_idx: Megatron's walk; remaining counts the S+1 tokens still needed by the current sample.
        sample_idx.resize(2 * (N + 1));
        int64_t pos = 0, offset = 0;
        sample_idx[0] = 0;
        sample_idx[1] = 0;
        for (int64_t j = 1; j <= N; j++) {
            int64_t remaining = cfg.seq_len + 1;
            while (remaining != 0) {
                int64_t left = doc_sizes[doc_idx[pos]] - offset;
                remaining -= left;
                if (remaining <= 0) {
                    offset += remaining + left - 1;  // the sample's last token starts the next sample
                    remaining = 0;
                } else {
                    pos++;
                    offset = 0;
                }
            }
            sample_idx[2 * j] = pos;
            sample_idx[2 * j + 1] = offset;
        }
        // 4. shuffle_idx
        shuffle_idx.resize(N);
        for (int64_t j = 0; j < N; j++) shuffle_idx[j] = (uint32_t)j;
        PhiloxStream sample_rng(cfg.seed, RNG_SHUFFLE_SAMPLES);
        int64_t first_s = plan.separate_last_epoch ? plan.samples_before_last_epoch : N;
        philox_shuffle(shuffle_idx.data(), first_s, sample_rng);
        philox_shuffle(shuffle_idx.data() + first_s, N - first_s, sample_rng);
        return true;
    }

    // The S+1 tokens of unshuffled sample j (stream tokens [j*S, j*S + S]).
    void get_unshuffled_sample(int64_t j, int* out) const {
        int64_t p0 = sample_idx[2 * j], o0 = sample_idx[2 * j + 1];
        int64_t p1 = sample_idx[2 * j + 2], o1 = sample_idx[2 * j + 3];
        for (int64_t p = p0; p <= p1; p++) {
            int64_t doc = doc_idx[p];
            int64_t from = p == p0 ? o0 : 0, to = p == p1 ? o1 + 1 : doc_sizes[doc];
            ds->read_tokens(ds->item_start(doc) + from, to - from, out);
            out += to - from;
        }
    }
    // The S+1 tokens at shuffled position i (what training step i / G sees), i < size().
    void get_sample(int64_t i, int* out) const { get_unshuffled_sample(shuffle_idx[i], out); }

    // Micro-batch m of rank r in the optimizer step that starts after `consumed` samples: fills positions[b]
    // (the shuffled positions, which also key the step's random draws) and tokens[b * (S+1)].
    bool micro_batch(int64_t consumed, int G, int b, int W, int r, int m, int64_t* positions, int* tokens,
                     std::string* err) const {
        if (b < 1 || W < 1 || G < 1 || G % (b * W) != 0)
            return *err = strfmt("global batch %d is not a multiple of micro-batch %d x %d ranks", G, b, W), false;
        if (r < 0 || r >= W || m < 0 || m >= G / (b * W))
            return *err = strfmt("rank %d / micro-step %d out of range", r, m), false;
        int64_t base = consumed + (int64_t)m * b * W + (int64_t)r * b;
        if (consumed < 0 || base + b > size())
            return *err = strfmt("samples %" PRId64 "..%" PRId64 " requested but only %" PRId64 " were built "
                                 "(%" PRId64 " epochs)", base, base + b - 1, size(), num_epochs()), false;
        for (int k = 0; k < b; k++) {
            positions[k] = base + k;
            get_sample(base + k, tokens + (int64_t)k * (cfg.seq_len + 1));
        }
        return true;
    }
    void micro_batch_or_die(int64_t consumed, int G, int b, int W, int r, int m, int64_t* positions,
                            int* tokens) const {
        std::string err;
        if (!micro_batch(consumed, G, b, W, r, m, positions, tokens, &err)) llmc_die("%s", err.c_str());
    }

    // Epochs of unique data seen after `consumed` samples (for the progress line).
    double epoch_of(int64_t consumed) const {
        return (double)consumed * cfg.seq_len / (double)plan.tokens_per_epoch;
    }

    // 64-bit FNV-1a over everything that determines the sample stream.
    uint64_t fingerprint() const {
        uint64_t h = 1469598103934665603ull;
        auto mix = [&](uint64_t v) {
            for (int k = 0; k < 8; k++) h = (h ^ ((v >> (8 * k)) & 0xff)) * 1099511628211ull;
        };
        mix(0x6c6c6d6373616d31ull);  // format tag: bump if the shuffle or walk ever changes
        mix((uint64_t)cfg.unique_tokens);
        mix((uint64_t)cfg.subset);
        mix((uint64_t)cfg.seq_len);
        mix((uint64_t)plan.num_samples);
        mix((uint64_t)cfg.seed);
        mix((uint64_t)plan.tokens_per_epoch);
        mix((uint64_t)(ds ? ds->num_items : (int64_t)doc_sizes.size()));
        mix((uint64_t)(ds ? ds->num_tokens : plan.tokens_per_epoch));
        return h;
    }
    DataCursor cursor(int64_t consumed) const { return DataCursor{consumed, fingerprint()}; }

    // Validates a cursor loaded from a checkpoint; returns its consumed-sample count through *consumed.
    bool restore(const DataCursor& c, int64_t* consumed, std::string* err) const {
        if (c.fingerprint != fingerprint())
            return *err = strfmt("the checkpoint's data stream (fingerprint %016" PRIx64 ") differs from this "
                                 "run's (%016" PRIx64 "): dataset, unique tokens, subset mode, sequence length, "
                                 "sample count or seed changed", c.fingerprint, fingerprint()), false;
        if (c.consumed_samples < 0 || c.consumed_samples > size())
            return *err = strfmt("the checkpoint consumed %" PRId64 " samples but only %" PRId64 " exist",
                                 c.consumed_samples, size()), false;
        *consumed = c.consumed_samples;
        return true;
    }
};

// The validation set: the first N shuffled samples of a sampler over the whole validation dataset built
// for exactly N samples (seed_spec §4.1), i.e. get_sample(0 .. N-1) of the returned sampler.
inline bool build_validation_sampler(Sampler& s, const IndexedDataset& ds, int seq_len, int64_t n_samples,
                                     uint32_t seed, std::string* err) {
    SamplerConfig c;
    c.unique_tokens = 0;
    c.seq_len = seq_len;
    c.num_samples = n_samples;
    c.seed = seed;
    return s.build(ds, c, err);
}
