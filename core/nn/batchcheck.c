/* Batch-invariance check for conditioners and blocks: does sample 0's output change when the other samples of
 * its batch change? (`ratfw plugins --check NAME`.) Batch norm in training mode and the released RATLIP
 * batch-as-sequence LSTM are batch-dependent; per-sample schemes are not. */
#include "config.h"

#include "ratfw-private.h"
#include <ratfw/batchcheck.h>
#include <ratfw/error.h>

#include <math.h>

static RatModule *build_root(RatRegistry *reg, const char *type_name, const char *const *overrides,
                             const RatBuildContext *ctx, GError **error) {
  const RatModuleType *t = rat_registry_lookup(reg, type_name);
  if (!t) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_NOT_FOUND, "no module type named '%s' is installed", type_name);
    return NULL;
  }
  if (t->kind != RAT_KIND_CONDITIONER && t->kind != RAT_KIND_BLOCK) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_UNSUPPORTED,
                "the batch-invariance check takes conditioners and blocks; '%s' is a %s", type_name,
                rat_module_kind_name(t->kind));
    return NULL;
  }
  return rat_module_build_named(reg, type_name, "check", t->kind, overrides, ctx, error);
}

static RatTensor *run(RatModule *m, RatTensor *x, RatTensor *cond, RatTensor *z) {
  if (m->type->kind == RAT_KIND_BLOCK) return rat_block_forward(m, x);
  RatCondState *st = rat_cond_state_new();
  rat_cond_state_set_noise(st, z);
  /* two steps, so a recurrent scheme's carried state is exercised too */
  RatTensor *y = rat_conditioner_forward(m, x, cond, st);
  y = rat_conditioner_forward(m, y, cond, st);
  rat_cond_state_free(st);
  return y;
}

gboolean rat_check_batch_dependence(RatRegistry *reg, const char *type_name, const char *const *overrides,
                                    gboolean training, gboolean *dependent, double *max_change, GError **error) {
  RatScope scope = rat_scope_push();
  RatRng rng;
  rat_rng_init(&rng, 1234);
  RatParams *params = rat_params_new();
  RatBuildContext ctx = {.params = params, .rng = &rng, .channels = 16, .out_channels = 16, .cond_dim = 12,
                         .z_dim = 8, .image_size = 8};
  gboolean ok = FALSE;
  RatModule *m = build_root(reg, type_name, overrides, &ctx, error);
  if (!m) goto out;
  rat_params_finalize(params);
  /* Perturb every parameter a little so zero-initialised gates (gamma weight 0, SA weights 0) do not hide a
   * dependence that training would reveal. */
  for (guint i = 0; i < rat_params_size(params); i++) {
    RatTensor *p = rat_params_tensor(params, i);
    if (rat_params_kind(params, i) == RAT_PARAM_BUFFER) continue;
    RatTensor *noise = rat_randn(&rng, rat_tensor_shape(p));
    rat_tensor_add_(p, noise, 0.3f);
  }
  rat_module_set_training(m, training);
  const int B = 4, H = 5, W = 6;
  RatTensor *x = rat_randn(&rng, RAT_SHAPE(B, 16, H, W));
  RatTensor *cond = rat_randn(&rng, RAT_SHAPE(B, 12));
  RatTensor *z = rat_randn(&rng, RAT_SHAPE(B, 8));
  RatTensor *y1, *y2;
  RAT_NO_GRAD_BEGIN
  y1 = rat_contiguous(run(m, x, cond, z));
  /* same sample 0, different samples 1..B-1 */
  RatTensor *x2 = rat_copy(x), *c2 = rat_copy(cond), *z2 = rat_copy(z);
  rat_tensor_copy_(rat_slice(x2, 0, 1, B), rat_randn(&rng, RAT_SHAPE(B - 1, 16, H, W)));
  rat_tensor_copy_(rat_slice(c2, 0, 1, B), rat_randn(&rng, RAT_SHAPE(B - 1, 12)));
  rat_tensor_copy_(rat_slice(z2, 0, 1, B), rat_randn(&rng, RAT_SHAPE(B - 1, 8)));
  y2 = rat_contiguous(run(m, x2, c2, z2));
  RAT_NO_GRAD_END
  gint64 n = rat_tensor_numel(y1) / B;
  const float *a = rat_tensor_data(y1), *b = rat_tensor_data(y2);
  double worst = 0;
  for (gint64 i = 0; i < n; i++) worst = MAX(worst, fabs((double)a[i] - b[i]));
  *dependent = worst > 1e-5;
  if (max_change) *max_change = worst;
  ok = TRUE;
  rat_module_free(m);
out:
  rat_params_free(params);
  rat_scope_pop(scope);
  return ok;
}
