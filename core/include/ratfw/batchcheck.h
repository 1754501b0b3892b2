/* Batch-invariance check (`ratfw plugins --check NAME`): builds a conditioner or block with default arguments
 * (plus "key=value" overrides) at 16 channels, runs a batch of 4 twice with sample 0 fixed and samples 1..3
 * changed, and reports whether sample 0's output moved (and by how much). */
#pragma once

#include <ratfw/module.h>

G_BEGIN_DECLS
gboolean rat_check_batch_dependence(RatRegistry *reg, const char *type_name, const char *const *overrides,
                                    gboolean training, gboolean *dependent, double *max_change, GError **error);
G_END_DECLS
