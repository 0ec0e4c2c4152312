// accept_compact_rows core: row b of a batch at op offset o accepts when
// log u < log_ratio[b] - log_M, the compaction core's accept test
// (accept_compact/compaction.h, u read exactly as accept_compact reads it),
// so with probability min(1, exp(log_ratio - log_M)). The comparison runs in
// the dtype T of log_ratio (log_M rounded to T). NaN log_ratio (or
// log_ratio - log_M NaN: inf - inf) rejects; +inf accepts. The chunking, the
// scratch layout (compact_scratch) and the gathers are the core's too; the
// CPU and CUDA drivers only add the two-call split (decide, then gather into
// outputs sized in between) and the zeroed tail.
#pragma once
#include "ops/accept_compact/compaction.h"
