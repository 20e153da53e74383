// dev/test/test_downstream.cpp — multiple-choice scoring (llmc/downstream.h) against fake models whose answers are
// known in closed form: the task parser and its file:line errors, AR log-likelihood scoring (rows, truncation,
// restricted softmax), and the MDM "mc" estimator (what is masked, what is scored, unbiasedness).
#include <cmath>
#include "dev/test/test.h"
#include "llmc/downstream.h"

static const int V = GPT2_VOCAB, VP = PADDED_VOCAB;

// A logp callback built from a fake model that writes the Vp logits of position n of row b: the restriction to
// the first 50257 classes is done by restricted_logp, as eval_cpu does with real logits.
template <class Fill>
static auto from_logits(int S, Fill fill) {
    return [=](const int* in, const int* tgt, int rows, float* out) {
        std::vector<float> row(VP);
        for (int n = 0; n < rows * S; n++) {
            if (tgt[n] < 0) continue;
            fill(in + (n / S) * S, n % S, row.data());
            out[n] = restricted_logp(row.data(), V, tgt[n]);
        }
    };
}

static McExample example(std::vector<int> ctx, std::vector<std::vector<int>> choices, int gold) {
    McExample m;
    m.context = ctx;
    m.choices = choices;
    for (auto& c : choices) m.choice_chars.push_back((int)c.size() * 4);  // 4 characters per token
    m.gold = gold;
    return m;
}

static void test_parser() {
    TaskExample ex;
    std::string err;
    const char* good = R"({"id": 7, "context": "a \"b\"", "choices": [" x", " \u00e9"], "gold": 1})";
    CHECK(parse_task_line(good, strlen(good), ex, &err), "good line rejected: %s", err.c_str());
    CHECK(ex.context == "a \"b\"" && ex.choices.size() == 2 && ex.choices[1] == " \xc3\xa9" && ex.gold == 1,
          "parsed wrong: '%s' gold %d", ex.context.c_str(), ex.gold);
    CHECK(utf8_length(ex.choices[1]) == 2, "utf8_length(' e-acute') = %d", utf8_length(ex.choices[1]));
    struct { const char* line; const char* needle; } bad[] = {
        {R"({"context": "a", "choices": [" x", " y"]})", "missing field \"gold\""},
        {R"({"context": "a", "gold": 0})", "missing field \"choices\""},
        {R"({"choices": [" x", " y"], "gold": 0})", "missing field \"context\""},
        {R"({"context": "a", "choices": [" x", " y"], "gold": 2})", "\"gold\" 2 is not an index"},
        {R"({"context": "a", "choices": [" x", " y"], "gold": -1})", "is not an index"},
        {R"({"context": "a", "choices": [" x", " y"], "gold": 0.5})", "must be an integer"},
        {R"({"context": "a", "choices": [" x", 3], "gold": 0})", "array of strings"},
        {R"({"context": "a", "choices": [" x"], "gold": 0})", "at least 2"},
        {R"({"context": "a", "choices": [" x", ""], "gold": 0})", "empty choice"},
        {R"({"context": 5, "choices": [" x", " y"], "gold": 0})", "must be a string"},
        {R"({"context": "a", "choices": [" x", " y"], "gold": 0)", "expected ',' or '}'"},
        {R"(["context"])", "not a JSON object"},
    };
    for (auto& b : bad) {
        err.clear();
        bool ok = parse_task_line(b.line, strlen(b.line), ex, &err);
        CHECK(!ok && err.find(b.needle) != std::string::npos, "'%s': got '%s', want '%s'", b.line, err.c_str(), b.needle);
    }
    Task t;
    std::string text = std::string(good) + "\n\n" + good + "\r\n" + R"({"context": "a", "choices": [" x", " y"]})" + "\n";
    CHECK(!parse_task(text, "t.jsonl", t, &err) && err.rfind("t.jsonl:4: missing field", 0) == 0,
          "file:line error: '%s'", err.c_str());
    CHECK(parse_task(std::string(good) + "\n\n" + good + "\r\n", "t.jsonl", t, &err) && t.examples.size() == 2,
          "blank and CRLF lines: %s", err.c_str());
    CHECK(!parse_task("\n\n", "e.jsonl", t, &err) && err == "e.jsonl: no examples", "empty file: '%s'", err.c_str());
    CHECK(!load_task("/nonexistent/x.jsonl", t, &err) && err.find("cannot open task file") != std::string::npos,
          "missing file: '%s'", err.c_str());
}

static void test_ar() {
    const int S = 8;
    ScoreOptions o;
    o.seq_len = S;
    o.micro_batch = 3;
    // A model that puts logit 10 on token 100 everywhere: the continuation made of 100s wins wherever it is.
    auto prefers = from_logits(S, [](const int*, int, float* row) {
        for (int v = 0; v < VP; v++) row[v] = 0;
        row[100] = 10;
    });
    std::vector<McExample> exs = {example({1, 2, 3}, {{100, 100}, {101, 102}}, 0),
                                  example({1, 2, 3}, {{101, 102}, {100, 100}, {7, 100}}, 1),
                                  example({5}, {{9}, {8}, {100}}, 2)};
    TaskScore ts = score_task(exs, o, prefers);
    CHECK(ts.correct == 3 && ts.correct_norm == 3, "preferring model: acc %d/3, acc_norm %d/3", ts.correct, ts.correct_norm);
    const double lp_hi = 10 - log(exp(10.0) + (V - 1)), lp_lo = -log(exp(10.0) + (V - 1));
    CHECK(fabs(ts.scores[0][0] - 2 * lp_hi) < 1e-4 && fabs(ts.scores[1][2] - (lp_lo + lp_hi)) < 1e-4,
          "scores %f %f, want %f %f", ts.scores[0][0], ts.scores[1][2], 2 * lp_hi, lp_lo + lp_hi);

    // Huge logits on the mask and padding classes (>= 50257) must not change anything.
    auto polluted = from_logits(S, [](const int*, int, float* row) {
        for (int v = 0; v < VP; v++) row[v] = v >= V ? 1e4f : 0;
        row[100] = 10;
    });
    TaskScore tp = score_task(exs, o, polluted);
    bool same = true;
    for (size_t i = 0; i < exs.size(); i++)
        for (size_t c = 0; c < exs[i].choices.size(); c++) same = same && fabs(tp.scores[i][c] - ts.scores[i][c]) < 1e-6;
    CHECK(same, "logits of classes >= 50257 changed the AR scores");

    // Uniform model: score = -(tokens) log 50257; ties go to the first choice.
    auto uniform = from_logits(S, [](const int*, int, float* row) { for (int v = 0; v < VP; v++) row[v] = 0; });
    std::vector<McExample> tie = {example({1}, {{4, 5}, {6, 7}}, 0), example({2}, {{4, 5}, {6, 7}}, 0),
                                  example({1}, {{4, 5, 6}, {7}}, 1)};
    TaskScore tu = score_task(tie, o, uniform);
    CHECK(fabs(tu.scores[2][0] + 3 * log((double)V)) < 1e-3 && fabs(tu.scores[2][1] + log((double)V)) < 1e-3,
          "uniform scores %f %f", tu.scores[2][0], tu.scores[2][1]);
    CHECK(tu.correct == 3, "uniform: first of tied choices should win, acc %d/3", tu.correct);
    // acc_norm divides by characters (4 per token here), so 3 tokens vs 1 token tie again -> first wins.
    CHECK(tu.correct_norm == 2, "uniform acc_norm %d/3, want 2", tu.correct_norm);

    // Rows: input = (ctx+cont)[-(S+1):][:-1] right-padded with 0, targets exactly at the continuation's predictions.
    std::vector<McExample> longc = {example({1, 2, 3, 4, 5, 6, 7, 8, 9}, {{20, 21, 22}, {30}}, 0)};
    bool rows_ok = true;
    int calls = 0;
    score_task(longc, o, [&](const int* in, const int* tgt, int rows, float* out) {
        calls++;
        rows_ok = rows_ok && rows == 2;
        // choice 0: seq 1..9,20,21,22 (12) -> window = last 9 = 4..9,20,21,22; input = 4..9,20,21
        const int want_in0[S] = {4, 5, 6, 7, 8, 9, 20, 21}, want_t0[S] = {-1, -1, -1, -1, -1, 20, 21, 22};
        // choice 1: seq 1..9,30 (10) -> window 2..9,30; input = 2..9
        const int want_in1[S] = {2, 3, 4, 5, 6, 7, 8, 9}, want_t1[S] = {-1, -1, -1, -1, -1, -1, -1, 30};
        for (int s = 0; s < S; s++) {
            rows_ok = rows_ok && in[s] == want_in0[s] && tgt[s] == want_t0[s];
            rows_ok = rows_ok && in[S + s] == want_in1[s] && tgt[S + s] == want_t1[s];
        }
        for (int n = 0; n < rows * S; n++) out[n] = -1;
    });
    CHECK(rows_ok && calls == 1, "AR rows/targets wrong for a context longer than S (calls %d)", calls);
    std::vector<McExample> shortc = {example({1, 2}, {{3}, {4, 5}}, 0)};
    score_task(shortc, o, [&](const int* in, const int* tgt, int, float* out) {
        const int want_in[S] = {1, 2, 4, 0, 0, 0, 0, 0}, want_t[S] = {-1, 4, 5, -1, -1, -1, -1, -1};
        bool ok = true;
        for (int s = 0; s < S; s++) ok = ok && in[S + s] == want_in[s] && tgt[S + s] == want_t[s];
        CHECK(ok, "AR short row not right-padded with 0 / targets misplaced");
        for (int n = 0; n < 2 * S; n++) out[n] = 0;
    });
}

static void test_mdm() {
    const int S = 12, K = 32;
    ScoreOptions o;
    o.seq_len = S;
    o.micro_batch = 7;  // not a divisor of K: requests straddle calls
    o.mdm = true;
    o.mc_samples = K;
    o.seed = 99;
    // Many requests of 3 context + 4 continuation tokens (padded to 12 with the mask id).
    std::vector<McExample> exs;
    for (int i = 0; i < 300; i++) exs.push_back(example({10 + i % 7, 11, 12}, {{20, 21, 22, 23}, {30, 31, 32, 33}}, 0));
    const double c = 2.5;
    bool layout_ok = true;
    int64_t masked = 0, rows_seen = 0;
    auto constant = [&](const int* in, const int* tgt, int rows, float* out) {
        for (int b = 0; b < rows; b++, rows_seen++)
            for (int s = 0; s < S; s++) {
                const int n = b * S + s;
                if (s < 3) layout_ok = layout_ok && in[n] != MASK_ID && tgt[n] < 0;          // context: never masked
                else if (s < 7) layout_ok = layout_ok && (tgt[n] < 0 ? in[n] != MASK_ID : in[n] == MASK_ID);
                else layout_ok = layout_ok && in[n] == MASK_ID && tgt[n] < 0;                 // padding: never scored
                if (tgt[n] >= 0) { masked++; out[n] = (float)-c; }
            }
    };
    TaskScore ts = score_task(exs, o, constant);
    CHECK(layout_ok, "MDM rows: context masked, padding scored, or a scored position not masked");
    CHECK(rows_seen == 600 * K, "MDM rows %lld, want %d", (long long)rows_seen, 600 * K);
    // Stratified t spread over [0,1): the average masking fraction is 1/2.
    const double frac = (double)masked / (rows_seen * 4.0);
    CHECK(fabs(frac - 0.5) < 0.01, "mean masked fraction %f, want 0.5", frac);
    // Unbiased: E[sum_masked CE/p] = c * 4 per request.
    double mean = 0;
    for (auto& s : ts.scores) mean += -(s[0] + s[1]) / 2;
    mean /= exs.size();
    CHECK(fabs(mean - c * 4) < 0.05 * c * 4, "mean MDM NLL estimate %f, want %f", mean, c * 4);
    // Deterministic in the seed, different with another seed.
    TaskScore again = score_task(exs, o, constant);
    CHECK(again.scores[5][1] == ts.scores[5][1], "MDM scores not reproducible");
    o.seed = 100;
    TaskScore other = score_task(exs, o, constant);
    CHECK(other.scores[5][1] != ts.scores[5][1], "MDM scores ignore the seed");

    // A fake bidirectional model that predicts token 20+j at continuation slot j strongly: choice 0 wins.
    o.seed = 99;
    o.mc_samples = 8;
    std::vector<McExample> small(exs.begin(), exs.begin() + 4);
    small[1].gold = 1;
    std::swap(small[1].choices[0], small[1].choices[1]);
    auto fill = [](bool pollute) {
        return [=](const int*, int pos, float* row) {
            for (int v = 0; v < VP; v++) row[v] = pollute && v >= V ? 1e4f : 0;
            if (pos >= 3 && pos < 7) row[20 + pos - 3] = 12;
        };
    };
    TaskScore tk = score_task(small, o, from_logits(S, fill(false)));
    CHECK(tk.correct == 4, "MDM preferring model: acc %d/4", tk.correct);
    TaskScore tq = score_task(small, o, from_logits(S, fill(true)));
    bool same = true;
    for (size_t i = 0; i < small.size(); i++)
        for (int ch = 0; ch < 2; ch++) same = same && fabs(tq.scores[i][ch] - tk.scores[i][ch]) < 1e-5;
    CHECK(same, "logits of the mask class changed the MDM scores");

    // K = 1 and stratification: t_0 = u0, so one draw per request still averages to the unbiased value.
    o.mc_samples = 1;
    masked = rows_seen = 0;
    score_task(exs, o, constant);
    CHECK(rows_seen == 600, "K=1 rows %lld", (long long)rows_seen);
}

int main() {
    test_parser();
    test_ar();
    test_mdm();
    return test_summary();
}
