// dev/data/inspect.cpp — look inside a Megatron indexed dataset: statistics, one document decoded, or one
// training sample exactly as the sampler (llmc/sampler.h) serves it for a given configuration.
//
//   inspect dev/data/foo                          statistics
//   inspect dev/data/foo --doc 3                  item 3 decoded
//   inspect dev/data/foo --sample 0 --seq-len 2048 --unique-tokens 100000 --epochs 4 --seed 1234
//   inspect dev/data/foo --validate               also check every token id and that items end with EOD
#include <algorithm>
#include <string>
#include <vector>
#include "llmc/args.h"        // ArgParser
#include "llmc/dataset.h"     // IndexedDataset
#include "llmc/sampler.h"     // Sampler, SamplerConfig
#include "llmc/tokenizer.h"   // GPT2Tokenizer

static void print_tokens(const GPT2Tokenizer& tok, const std::vector<int>& ids, bool show_ids) {
    if (show_ids) {
        for (size_t k = 0; k < ids.size(); k++) printf("%s%d", k ? " " : "", ids[k]);
        printf("\n---\n");
    }
    printf("%s\n", tok.decode_utf8(ids.data(), ids.size()).c_str());
}

int main(int argc, char** argv) {
    std::string prefix;
    if (argc > 1 && argv[1][0] != '-') {  // the dataset prefix comes first; the rest are flags
        prefix = argv[1];
        argv[1] = argv[0];
        argv++;
        argc--;
    }
    int64_t doc = -1, sample = -1, unique = 0, num_samples = 0, seed = 1234;
    int seq_len = 2048;
    double epochs = 1;
    bool validate = false, show_ids = false;
    std::string subset = "exact", vocab = "dev/data/gpt2-vocab.json", merges = "dev/data/gpt2-merges.txt";
    ArgParser args("inspect PREFIX", "Prints statistics of PREFIX.bin/.idx (Megatron mmap indexed dataset) and "
                                     "decodes a document or a training sample.");
    args.add_int("doc", &doc, "decode this item (document)", -1);
    args.add_int("sample", &sample, "decode this shuffled training sample (sampler flags below)", -1);
    args.add_int("seq-len", &seq_len, "sampler: sequence length S (samples hold S+1 tokens)", 1, 1 << 24);
    args.add_int("unique-tokens", &unique, "sampler: unique tokens U (0 = all)", 0);
    args.add_choice("subset", &subset, "exact|docs", "sampler: first U tokens exactly, or whole documents");
    args.add_float("epochs", &epochs, "sampler: epochs over the U tokens", 1e-9, 1e9);
    args.add_int("num-samples", &num_samples, "sampler: number of samples (0 = from --epochs)", 0);
    args.add_int("seed", &seed, "sampler: shuffle seed", 0, UINT32_MAX);
    args.add_flag("validate", &validate, "check every token id < 50257 and report items not ending in EOD");
    args.add_flag("ids", &show_ids, "also print the token ids");
    args.add_string("vocab", &vocab, "GPT-2 vocabulary, for decoding");
    args.add_string("merges", &merges, "GPT-2 merges, for decoding");
    args.parse(argc, argv);
    if (prefix.empty()) llmc_die("no dataset given (usage: inspect PREFIX [flags]; see --help)");

    IndexedDataset ds;
    ds.open_or_die(prefix, validate ? GPT2_VOCAB : 0);
    int64_t mn = INT64_MAX, mx = 0, eod = 0, no_eod = 0, max_id = -1;
    for (int64_t i = 0; i < ds.num_items; i++) {
        int64_t s = ds.item_size(i);
        mn = std::min(mn, s);
        mx = std::max(mx, s);
        if (s == 0 || ds.token(ds.item_start(i) + s - 1) != EOD_ID) no_eod++;
    }
    for (int64_t k = 0; k < ds.num_tokens; k++) {
        int t = ds.token(k);
        eod += t == EOD_ID;
        max_id = std::max<int64_t>(max_id, t);
    }
    printf("dataset %s: dtype %s, %lld items, %lld documents (doc_idx entries - 1), %lld tokens\n", prefix.c_str(),
           idx_dtype_name(ds.dtype), (long long)ds.num_items, (long long)(ds.num_doc_idx - 1),
           (long long)ds.num_tokens);
    if (ds.num_items > 0)
        printf("item length: min %lld, mean %.1f, max %lld; EOD tokens %lld; largest token id %lld\n",
               (long long)mn, (double)ds.num_tokens / ds.num_items, (long long)mx, (long long)eod,
               (long long)max_id);
    if (validate)
        printf("validate: all token ids are in [0, %d); %lld item(s) do not end with EOD %d\n", GPT2_VOCAB,
               (long long)no_eod, EOD_ID);

    if (doc < 0 && sample < 0) return 0;
    GPT2Tokenizer tok;
    std::string err;
    if (!tok.try_load(vocab.c_str(), merges.c_str(), &err)) llmc_die("%s", err.c_str());
    if (doc >= 0) {
        if (doc >= ds.num_items)
            llmc_die("--doc %lld is out of range: the dataset has %lld items", (long long)doc,
                     (long long)ds.num_items);
        std::vector<int> ids(ds.item_size(doc));
        ds.read_tokens(ds.item_start(doc), (int64_t)ids.size(), ids.data());
        printf("=== item %lld: %zu tokens ===\n", (long long)doc, ids.size());
        print_tokens(tok, ids, show_ids);
    }
    if (sample >= 0) {
        SamplerConfig c;
        c.unique_tokens = unique;
        c.subset = subset == "exact" ? SUBSET_EXACT : SUBSET_WHOLE_DOCS;
        c.seq_len = seq_len;
        c.num_samples = num_samples;
        c.epochs = epochs;
        c.seed = (uint32_t)seed;
        Sampler s;
        if (!s.build(ds, c, &err)) llmc_die("%s", err.c_str());
        if (sample >= s.size())
            llmc_die("--sample %lld is out of range: this configuration builds %lld samples", (long long)sample,
                     (long long)s.size());
        std::vector<int> ids(seq_len + 1);
        s.get_sample(sample, ids.data());
        printf("sampler: T = %lld tokens/epoch in %lld documents, %lld samples requested, %lld built over %lld "
               "epoch(s)%s\n", (long long)s.tokens_per_epoch(), (long long)s.num_docs(),
               (long long)s.num_samples(), (long long)s.size(), (long long)s.num_epochs(),
               s.plan.separate_last_epoch ? " (last epoch shuffled separately)" : "");
        printf("=== sample %lld (unshuffled %u): %d tokens ===\n", (long long)sample, s.shuffle_idx[sample],
               seq_len + 1);
        print_tokens(tok, ids, show_ids);
    }
    return 0;
}
