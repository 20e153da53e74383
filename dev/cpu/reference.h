// dev/cpu/reference.h — the CPU reference of the seed transformer (namespace ref), the oracle for every GPU
// kernel: include this one header. Layers (forward + backward, AdamW pieces, round_to_bf16) live in
// dev/cpu/layers.h; the composed Model, optimizer_step and the AR / MDM objective helpers in dev/cpu/model.h.
#pragma once
#include "dev/cpu/layers.h"
#include "dev/cpu/model.h"
