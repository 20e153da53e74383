// Model shapes, parameter counts and FLOPs against the numbers written in seed_spec §1.1 and §1.11.
#include "dev/test/test.h"
#include "llmc/config.h"
#include "llmc/train_config.h"

int main() {
    // FFN rule floor((4h*2/3)/64)*64, checked against the float formula the seed's scripts evaluate.
    for (int h = 64; h <= 4096; h += 32) {
        int expect = (int)((4.0 * h * 2 / 3) / 64) * 64;
        CHECK(swiglu_ffn_size(h) == expect, "ffn(%d) = %d, expected %d", h, swiglu_ffn_size(h), expect);
    }
    ModelConfig ar = model_preset("140m", 2048), mdm = model_preset("425m", 2048);
    CHECK(ar.d_model == 768 && ar.n_layer == 15 && ar.n_head == 12 && ar.head_dim == 64 && ar.ffn == 2048, "140m shape");
    CHECK(mdm.d_model == 1280 && mdm.n_layer == 18 && mdm.n_head == 10 && mdm.head_dim == 128 && mdm.ffn == 3392,
          "425m shape");
    // seed_spec §1.1 table.
    CHECK(num_parameters(ar) == 144825600, "140m params %zu", num_parameters(ar));
    CHECK(num_parameters(mdm) == 416856320, "425m params %zu", num_parameters(mdm));
    CHECK(non_embedding_parameters(ar) == 106192128, "140m non-embedding %zu", non_embedding_parameters(ar));
    CHECK(non_embedding_parameters(mdm) == 352467200, "425m non-embedding %zu", non_embedding_parameters(mdm));
    CHECK(seed_param_count(ar) == 144834816, "140m seed formula %.0f", seed_param_count(ar));
    CHECK(seed_param_count(mdm) == 416887040, "425m seed formula %.0f", seed_param_count(mdm));
    // seed_spec §1.11 examples of the seed's formula.
    CHECK(seed_param_count(model_preset("117m", 2048)) == 123587328, "117m");
    CHECK(seed_param_count(model_preset("217m", 2048)) == 217503104, "217m");
    CHECK(seed_param_count(model_preset("724m", 2048)) == 700251648, "724m");
    // Compute of the two best 100M runs (seed_spec §7): 6*N*D ~ 4.34e18 and ~1.25e20.
    double ar_c = flops_per_token_seed(ar) * 99952399.0 * 50, mdm_c = flops_per_token_seed(mdm) * 99952399.0 * 500;
    CHECK(fabs(ar_c / 4.34e18 - 1) < 0.005, "AR best compute %.3g", ar_c);
    CHECK(fabs(mdm_c / 1.25e20 - 1) < 0.005, "MDM best compute %.3g", mdm_c);
    // Attention-counting FLOPs (the PyTorch peer's MFU formula): 6*N + 12*L*S*n*d.
    CHECK(flops_per_token_with_attention(ar) == 6.0 * 144825600 + 12.0 * 15 * 2048 * 768, "flops with attention");
    // Layout: offsets are contiguous and decay only on the 2-D tensors.
    size_t off[NUM_PARAM_TENSORS], sizes[NUM_PARAM_TENSORS];
    size_t total = param_offsets(ar, off);
    param_sizes(ar, sizes);
    CHECK(off[0] == 0 && total == off[P_LNF] + sizes[P_LNF], "layout is contiguous");
    CHECK(!param_has_decay(P_LN1) && !param_has_decay(P_LN2) && !param_has_decay(P_LNF) && param_has_decay(P_WTE) &&
              param_has_decay(P_QKV) && param_has_decay(P_FCPROJ), "decay groups");
    CHECK(fabs(param_init_std(ar, P_ATTPROJ) - 0.0036515) < 1e-7, "residual init std L=15: %g", param_init_std(ar, P_ATTPROJ));
    CHECK(fabs(param_init_std(mdm, P_FCPROJ) - 0.0033333) < 1e-7, "residual init std L=18");
    CHECK(param_init_std(ar, P_WTE) == 0.02 && param_init_std(ar, P_LNF) == 0.0, "init stds");
    // Bad presets and shapes are one clear error.
    CHECK_DIES([] { model_preset("141m", 2048); }, "unknown model preset '141m'");
    CHECK_DIES([] { ModelConfig c = model_preset("tiny", 64); c.head_dim = 7; validate_config(c); }, "head_dim 7");

    // Micro-batches per data-parallel rank: global batch 8 = micro-batch 2 x 4 accumulations, split over ranks.
    // Asking before resolve() derives grad_accum is an error (the GPU trainer once read the default of 1 there).
    auto plan = [] {
        TrainConfig tc;
        tc.model = "tiny"; tc.seq_len = 64; tc.batch = 8; tc.micro_batch = 2; tc.steps = 10;
        return tc;
    };
    CHECK_DIES([&] { plan().accum_per_rank(1); }, "before resolve()");
    TrainConfig tc = plan();
    tc.resolve(1000000, OBJ_AR);
    CHECK(tc.grad_accum == 4 && tc.accum_per_rank(1) == 4 && tc.accum_per_rank(2) == 2 && tc.accum_per_rank(4) == 1,
          "accum per rank: grad_accum %d, 1/2/4 ranks -> %d/%d/%d", tc.grad_accum, tc.accum_per_rank(1),
          tc.accum_per_rank(2), tc.accum_per_rank(4));
    CHECK_DIES([&] { tc.accum_per_rank(3); }, "--batch 8 is not a multiple of --micro-batch 2 x 3 ranks");
    CHECK_DIES([&] { tc.accum_per_rank(8); }, "--micro-batch 2 x 8 ranks (try --micro-batch 1)");
    TrainConfig big = plan();
    big.micro_batch = 8;  // one micro-batch of 8: two ranks need micro-batches of 4
    big.resolve(1000000, OBJ_AR);
    CHECK_DIES([&] { big.accum_per_rank(2); }, "--batch 8 is not a multiple of --micro-batch 8 x 2 ranks (try --micro-batch 4)");
    return test_summary();
}
