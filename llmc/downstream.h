// llmc/downstream.h — zero-shot multiple-choice evaluation (seed_spec §4.4), shared by every trainer.
//
// Task format (dev/data/tasks/README.md): JSONL, one example per line,
//     {"context": "The capital of France is", "choices": [" Paris", " a fish"], "gold": 0}
// Each choice is appended verbatim to the context (put the separating space in the choice, as lm-eval does).
//
// Scoring is model-agnostic: the caller supplies logp(inputs, targets, rows, out), which runs its model (causal for
// AR, bidirectional for MDM, dropout off) on `rows` sequences of S tokens and writes, for every position n with
// targets[n] >= 0, log softmax(logits[n][0 .. 50257))[targets[n]] into out[n] — the softmax restricted to the real
// GPT-2 classes, as the seed's _model_call slices the logits (restricted_logp below does it for host logits).
// Positions with targets[n] < 0 are not needed and may be left untouched.
//   AR:  score = sum of log p(continuation token | prefix); the row is (context+continuation)[-(S+1):][:-1],
//        right-padded with id 0; an empty context becomes [EOD].
//   MDM: the seed's "mc" mode: the row is (context+continuation)[-S:], right-padded to S with the mask id; K draws
//        with stratified t_k = (u0 + k/K) mod 1, p_k = t_k (sampling eps 0); each continuation token is masked
//        i.i.d. with probability p_k, context and padding never; NLL = (1/K) sum_k sum_masked CE / p_k; score = -NLL.
//        Key layout: request r of a task (examples in file order, choices in order) draws
//        u0 = rng_uniform(seed, RNG_EVAL_T, 0, r, DOWNSTREAM_SUB, 0) and masks of draw k at sequence position pos from
//        rng_uniform(seed, RNG_EVAL_MASK, k, r, DOWNSTREAM_SUB, pos): sub = 1 keeps them apart from the MC-ELBO's.
// acc = argmax of score (first maximum wins, like numpy); acc_norm = argmax of score / (number of Unicode characters
// of the choice string), lm-eval 0.3.0's convention (len() of the Python str).
#pragma once
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>
#include "config.h"
#include "json.h"
#include "mdm.h"
#include "tokenizer.h"

constexpr uint32_t DOWNSTREAM_SUB = 1;  // Philox `sub` of downstream draws (the validation MC-ELBO uses 0)

struct TaskExample {
    std::string context;
    std::vector<std::string> choices;
    int gold = 0;
};

struct Task {
    std::string path;
    std::vector<TaskExample> examples;
};

// Parses one JSONL line into ex. Unknown keys are ignored (converted files may keep an "id"). False + *err on a
// missing/mistyped field, fewer than 2 choices, or gold outside the choices.
inline bool parse_task_line(const char* s, size_t n, TaskExample& ex, std::string* err) {
    bool has_ctx = false, has_choices = false, has_gold = false;
    long long gold = -1;
    ex = TaskExample();
    bool ok = json_walk_object_(s, n, err, [&](size_t ka, size_t kb, bool kesc, size_t* vp) {
        if (json_key_equals_(s, ka, kb, kesc, "context", 7)) {
            if (*vp >= n || s[*vp] != '"') return json_fail_(err, *vp, "\"context\" must be a string");
            has_ctx = true;
            ex.context.clear();
            return json_parse_string(s, n, vp, ex.context, err);
        }
        if (json_key_equals_(s, ka, kb, kesc, "choices", 7)) {
            if (*vp >= n || s[*vp] != '[') return json_fail_(err, *vp, "\"choices\" must be an array of strings");
            has_choices = true;
            ex.choices.clear();
            size_t p = *vp + 1;
            json_skip_ws_(s, n, &p);
            if (p < n && s[p] == ']') { *vp = p + 1; return true; }
            for (;;) {
                json_skip_ws_(s, n, &p);
                if (p >= n || s[p] != '"') return json_fail_(err, p, "\"choices\" must be an array of strings");
                std::string c;
                if (!json_parse_string(s, n, &p, c, err)) return false;
                ex.choices.push_back(c);
                json_skip_ws_(s, n, &p);
                if (p < n && s[p] == ',') { p++; continue; }
                if (p < n && s[p] == ']') { *vp = p + 1; return true; }
                return json_fail_(err, p, "expected ',' or ']' in \"choices\"");
            }
        }
        if (json_key_equals_(s, ka, kb, kesc, "gold", 4)) {
            size_t p = *vp;
            if (p < n && s[p] == '-') p++;
            if (p >= n || s[p] < '0' || s[p] > '9') return json_fail_(err, *vp, "\"gold\" must be an integer");
            while (p < n && s[p] >= '0' && s[p] <= '9') p++;
            if (p < n && (s[p] == '.' || s[p] == 'e' || s[p] == 'E'))
                return json_fail_(err, *vp, "\"gold\" must be an integer");
            gold = p - *vp > 10 ? -1 : strtoll(std::string(s + *vp, p - *vp).c_str(), nullptr, 10);
            has_gold = true;
            *vp = p;
            return true;
        }
        return json_skip_value_(s, n, vp, err);
    });
    if (!ok) return false;
    const char* missing = !has_ctx ? "context" : !has_choices ? "choices" : !has_gold ? "gold" : nullptr;
    if (missing) { if (err) *err = std::string("missing field \"") + missing + "\""; return false; }
    if (ex.choices.size() < 2) { if (err) *err = "\"choices\" needs at least 2 entries"; return false; }
    for (const std::string& c : ex.choices)
        if (c.empty()) { if (err) *err = "empty choice (a continuation needs at least one token)"; return false; }
    if (gold < 0 || gold >= (long long)ex.choices.size()) {
        if (err) *err = "\"gold\" " + std::to_string(gold) + " is not an index into the " +
                        std::to_string(ex.choices.size()) + " choices";
        return false;
    }
    ex.gold = (int)gold;
    return true;
}

// Parses a whole task file from memory; errors read "path:line: what". Blank lines are skipped.
inline bool parse_task(const std::string& text, const char* path, Task& t, std::string* err) {
    t = Task();
    t.path = path;
    size_t a = 0;
    for (int line = 1; a < text.size(); line++) {
        size_t b = text.find('\n', a);
        if (b == std::string::npos) b = text.size();
        size_t e = b;
        if (e > a && text[e - 1] == '\r') e--;
        bool blank = true;
        for (size_t i = a; i < e; i++) blank = blank && (text[i] == ' ' || text[i] == '\t');
        if (!blank) {
            TaskExample ex;
            std::string what;
            if (!parse_task_line(text.data() + a, e - a, ex, &what)) {
                if (err) *err = std::string(path) + ":" + std::to_string(line) + ": " + what;
                return false;
            }
            t.examples.push_back(std::move(ex));
        }
        a = b + 1;
    }
    if (t.examples.empty()) { if (err) *err = std::string(path) + ": no examples"; return false; }
    return true;
}

inline bool load_task(const char* path, Task& t, std::string* err) {
    FILE* f = fopen(path, "rb");
    if (!f) { if (err) *err = std::string("cannot open task file '") + path + "' (" + strerror(errno) + ")"; return false; }
    std::string text;
    char buf[1 << 16];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, k);
    fclose(f);
    return parse_task(text, path, t, err);
}

// Number of Unicode characters of UTF-8 text (Python's len(str)); invalid bytes count one each.
inline int utf8_length(const std::string& s) {
    int n = 0;
    for (size_t i = 0; i < s.size(); n++) {
        uint32_t cp;
        int k = utf8_next((const unsigned char*)s.data(), s.size(), i, &cp);
        i += (size_t)(k > 0 ? k : -k);
    }
    return n;
}

// One multiple-choice example in tokens.
struct McExample {
    std::vector<int> context;                  // [EOD] when the text context is empty
    std::vector<std::vector<int>> choices;     // each non-empty
    std::vector<int> choice_chars;             // acc_norm denominators
    int gold = 0;
};

// Context and each choice are encoded separately (lm-eval 0.3.0), so a choice's tokens are exactly its own.
inline bool tokenize_task(const Task& t, const GPT2Tokenizer& tok, std::vector<McExample>& out, std::string* err) {
    out.assign(t.examples.size(), McExample());
    for (size_t i = 0; i < t.examples.size(); i++) {
        const TaskExample& ex = t.examples[i];
        McExample& m = out[i];
        std::string what;
        if (!tok.encode(ex.context.data(), ex.context.size(), m.context, &what)) {
            if (err) *err = t.path + ": example " + std::to_string(i + 1) + " context: " + what;
            return false;
        }
        if (m.context.empty()) m.context.push_back(EOD_ID);
        for (const std::string& c : ex.choices) {
            std::vector<int> ids;
            if (!tok.encode(c.data(), c.size(), ids, &what)) {
                if (err) *err = t.path + ": example " + std::to_string(i + 1) + " choice: " + what;
                return false;
            }
            m.choices.push_back(ids);
            m.choice_chars.push_back(utf8_length(c));
        }
        m.gold = ex.gold;
    }
    return true;
}

// log softmax over the first V classes of one logits row, at `target` (< V); accumulated in double.
inline float restricted_logp(const float* logits, int V, int target) {
    float mx = logits[0];
    for (int v = 1; v < V; v++) mx = logits[v] > mx ? logits[v] : mx;
    double sum = 0;
    for (int v = 0; v < V; v++) sum += exp((double)logits[v] - mx);
    return (float)((double)logits[target] - mx - log(sum));
}

struct ScoreOptions {
    int seq_len = 2048;   // S of the model
    int micro_batch = 8;  // rows per logp() call
    bool mdm = false;
    int mc_samples = 32;  // K (MDM)
    uint32_t seed = 1234; // Philox seed of the MDM draws
    int mask_id = MASK_ID;
};

struct TaskScore {
    std::vector<std::vector<double>> scores;  // [example][choice]
    int n = 0, correct = 0, correct_norm = 0;
    double acc() const { return n ? (double)correct / n : NAN; }
    double acc_norm() const { return n ? (double)correct_norm / n : NAN; }
    // Binomial standard error of an accuracy over n examples (lm-eval's acc_stderr).
    double stderr_of(double a) const { return n > 1 ? sqrt(a * (1 - a) / (n - 1)) : 0.0; }
};

// Scores every (example, choice) request and the accuracies. logp as described at the top of this file.
template <class LogP>
TaskScore score_task(const std::vector<McExample>& exs, const ScoreOptions& o, LogP&& logp) {
    const int S = o.seq_len, K = o.mdm ? o.mc_samples : 1;
    const int R = o.micro_batch > 0 ? o.micro_batch : 1;
    TaskScore ts;
    ts.scores.resize(exs.size());
    // Flatten requests; request r's rows are K consecutive rows (one for AR).
    struct Req { size_t ex, ch; };
    std::vector<Req> reqs;
    for (size_t i = 0; i < exs.size(); i++) {
        ts.scores[i].assign(exs[i].choices.size(), 0.0);
        for (size_t c = 0; c < exs[i].choices.size(); c++) reqs.push_back({i, c});
    }
    const int64_t total_rows = (int64_t)reqs.size() * K;
    std::vector<int> in((size_t)R * S), tgt((size_t)R * S);
    std::vector<float> lp((size_t)R * S), inv_p((size_t)R);
    std::vector<int> seq;
    for (int64_t row0 = 0; row0 < total_rows; row0 += R) {
        const int rows = (int)(total_rows - row0 < R ? total_rows - row0 : R);
        for (int b = 0; b < rows; b++) {
            const int64_t row = row0 + b;
            const uint32_t r = (uint32_t)(row / K);
            const int k = (int)(row % K);
            const McExample& ex = exs[reqs[r].ex];
            const std::vector<int>& cont = ex.choices[reqs[r].ch];
            seq.assign(ex.context.begin(), ex.context.end());
            seq.insert(seq.end(), cont.begin(), cont.end());
            int* x = in.data() + (size_t)b * S;
            int* y = tgt.data() + (size_t)b * S;
            for (int s = 0; s < S; s++) y[s] = -1;
            if (!o.mdm) {
                // Input = seq[-(S+1):][:-1]; input position j predicts seq token j+1 of the window.
                const int W = (int)seq.size() < S + 1 ? (int)seq.size() : S + 1;
                const int* w = seq.data() + seq.size() - W;
                const int nc = (int)cont.size() < W - 1 ? (int)cont.size() : W - 1;
                for (int s = 0; s < S; s++) x[s] = s < W - 1 ? w[s] : 0;
                for (int j = W - 1 - nc; j < W - 1; j++) y[j] = w[j + 1];
            } else {
                const int L = (int)seq.size() < S ? (int)seq.size() : S;
                const int* w = seq.data() + seq.size() - L;
                const int nc = (int)cont.size() < L ? (int)cont.size() : L;
                const float u0 = rng_uniform(o.seed, RNG_EVAL_T, 0, r, DOWNSTREAM_SUB, 0);
                const float p = mdm_time_stratified(u0, k, K);  // sampling eps 0: p_k = t_k
                inv_p[(size_t)b] = p > 0 ? 1.0f / p : 0.0f;
                for (int s = 0; s < S; s++) x[s] = s < L ? w[s] : o.mask_id;
                for (int s = L - nc; s < L; s++)
                    if (rng_uniform(o.seed, RNG_EVAL_MASK, (uint32_t)k, r, DOWNSTREAM_SUB, (uint32_t)s) < p) {
                        y[s] = w[s];
                        x[s] = o.mask_id;
                    }
            }
        }
        logp(in.data(), tgt.data(), rows, lp.data());
        for (int b = 0; b < rows; b++) {
            const int64_t row = row0 + b;
            const Req& q = reqs[(size_t)(row / K)];
            double v = 0;
            for (int s = 0; s < S; s++)
                if (tgt[(size_t)b * S + s] >= 0) v += lp[(size_t)b * S + s];
            // AR: the exact log-likelihood; MDM: minus draw k's sum of CE/p_k, averaged over the K draws.
            ts.scores[q.ex][q.ch] += o.mdm ? v * inv_p[(size_t)b] / K : v;
        }
    }
    for (size_t i = 0; i < exs.size(); i++) {
        const std::vector<double>& sc = ts.scores[i];
        size_t best = 0, best_norm = 0;
        for (size_t c = 1; c < sc.size(); c++) {
            if (sc[c] > sc[best]) best = c;
            if (sc[c] / exs[i].choice_chars[c] > sc[best_norm] / exs[i].choice_chars[best_norm]) best_norm = c;
        }
        ts.n++;
        ts.correct += best == (size_t)exs[i].gold;
        ts.correct_norm += best_norm == (size_t)exs[i].gold;
    }
    return ts;
}
