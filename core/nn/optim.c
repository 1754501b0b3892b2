/* Optimisers over a finalized RatParams, one flat loop each, following PyTorch 1.13's single-tensor code:
 * Adam (Kingma & Ba 2015; torch/optim/adam.py _single_tensor_adam: L2 weight decay g += wd*p, bias-corrected
 * step p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)) and SGD (torch/optim/sgd.py: momentum buffer
 * starts as the first gradient, dampening, nesterov). Element updates are independent: deterministic. */
#include "config.h"

#include "ratfw-private.h"
#include <ratfw/error.h>
#include <ratfw/nn.h>

#include <math.h>

typedef enum { OPT_ADAM, OPT_SGD } OptKind;

struct _RatOptim {
  OptKind kind;
  RatParams *params;
  float lr, beta1, beta2, eps, weight_decay, momentum, dampening;
  gboolean nesterov;
  gint64 step;
  gint64 n;
  RatStorage *s1, *s2; /* Adam: exp_avg, exp_avg_sq; SGD: momentum buffer (s2 unused) */
};

static RatOptim *optim_new(RatParams *params, OptKind kind, int nstate) {
  rat_check(rat_params_is_finalized(params), "ratfw: an optimiser needs a finalized RatParams");
  RatOptim *o = g_new0(RatOptim, 1);
  o->kind = kind;
  o->params = params;
  o->n = rat_tensor_numel(rat_params_flat(params));
  gsize bytes = (gsize)o->n * sizeof(float);
  o->s1 = rat_storage_new(bytes);
  memset(o->s1->data, 0, bytes);
  if (nstate > 1) {
    o->s2 = rat_storage_new(bytes);
    memset(o->s2->data, 0, bytes);
  }
  return o;
}

RatOptim *rat_adam_new(RatParams *params, float lr, float beta1, float beta2, float eps, float weight_decay) {
  rat_check(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1, "ratfw: Adam betas (%g, %g) outside [0, 1)", beta1,
            beta2);
  RatOptim *o = optim_new(params, OPT_ADAM, 2);
  o->lr = lr;
  o->beta1 = beta1;
  o->beta2 = beta2;
  o->eps = eps;
  o->weight_decay = weight_decay;
  return o;
}

RatOptim *rat_sgd_new(RatParams *params, float lr, float momentum, float dampening, float weight_decay,
                      gboolean nesterov) {
  rat_check(!nesterov || (momentum > 0 && dampening == 0), "ratfw: Nesterov SGD needs momentum > 0, dampening 0");
  RatOptim *o = optim_new(params, OPT_SGD, momentum != 0 ? 1 : 0);
  o->lr = lr;
  o->momentum = momentum;
  o->dampening = dampening;
  o->weight_decay = weight_decay;
  o->nesterov = nesterov;
  return o;
}

void rat_optim_free(RatOptim *o) {
  if (!o) return;
  rat_storage_unref(o->s1);
  if (o->s2) rat_storage_unref(o->s2);
  g_free(o);
}

void rat_optim_set_lr(RatOptim *o, float lr) { o->lr = lr; }
float rat_optim_get_lr(const RatOptim *o) { return o->lr; }
gint64 rat_optim_steps(const RatOptim *o) { return o->step; }
void rat_optim_zero_grad(RatOptim *o) { rat_params_zero_grad(o->params); }

static void adam_step(RatOptim *o, float *p, const float *g) {
  float *m = o->s1->data, *v = o->s2->data;
  const double b1 = o->beta1, b2 = o->beta2, wd = o->weight_decay, eps = o->eps;
  const double bc1 = 1.0 - pow(b1, (double)o->step), bc2 = 1.0 - pow(b2, (double)o->step);
  const double step_size = o->lr / bc1, bc2_sqrt = sqrt(bc2);
  const gint64 n = o->n;
  int nt = rat_get_num_threads();
#pragma omp parallel for schedule(static) num_threads(nt) if (n > 32768)
  for (gint64 i = 0; i < n; i++) {
    double gi = (double)g[i] + wd * p[i];
    double mi = b1 * m[i] + (1.0 - b1) * gi;
    double vi = b2 * v[i] + (1.0 - b2) * gi * gi;
    m[i] = (float)mi;
    v[i] = (float)vi;
    p[i] = (float)(p[i] - step_size * mi / (sqrt(vi) / bc2_sqrt + eps));
  }
}

static void sgd_step(RatOptim *o, float *p, const float *g) {
  const double mom = o->momentum, damp = o->dampening, wd = o->weight_decay, lr = o->lr;
  const gboolean first = o->step == 1, nesterov = o->nesterov;
  float *buf = o->s1->data;
  const gint64 n = o->n;
  int nt = rat_get_num_threads();
#pragma omp parallel for schedule(static) num_threads(nt) if (n > 32768)
  for (gint64 i = 0; i < n; i++) {
    double d = (double)g[i] + wd * p[i];
    if (mom != 0) {
      double b = first ? d : mom * buf[i] + (1.0 - damp) * d;
      buf[i] = (float)b;
      d = nesterov ? d + mom * b : b;
    }
    p[i] = (float)(p[i] - lr * d);
  }
}

void rat_optim_step(RatOptim *o) {
  rat_params_sync_grads(o->params);
  RatTensor *flat = rat_params_flat(o->params);
  float *p = rat_tensor_data(flat);
  const float *g = rat_tensor_data(rat_params_flat_grad(o->params));
  o->step++;
  if (o->kind == OPT_ADAM)
    adam_step(o, p, g);
  else
    sgd_step(o, p, g);
  rat_tensor_bump_version(flat);
}

/* ---- state for checkpoints ------------------------------------------------------------------------------- */

static const char *state_name(const RatOptim *o, int k) {
  if (o->kind == OPT_ADAM) return k == 0 ? "exp_avg." : "exp_avg_sq.";
  return "momentum_buffer.";
}

static RatStorage *state_storage(const RatOptim *o, int k) { return k == 0 ? o->s1 : o->s2; }

static int n_states(const RatOptim *o) { return o->kind == OPT_ADAM ? 2 : (o->momentum != 0 ? 1 : 0); }

GHashTable *rat_optim_state_to_map(RatOptim *o, const char *prefix) {
  GHashTable *m = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  const char *pre = prefix ? prefix : "";
  gint32 step = (gint32)o->step;
  g_hash_table_insert(m, g_strconcat(pre, "step", NULL), rat_from_i32(RAT_SHAPE0, &step));
  for (guint i = 0; i < rat_params_size(o->params); i++) {
    if (rat_params_kind(o->params, i) != RAT_PARAM_TRAINABLE) continue;
    RatTensor *t = rat_params_tensor(o->params, i);
    for (int k = 0; k < n_states(o); k++) {
      RatTensor *v = rat_tensor_new_view(state_storage(o, k), RAT_DTYPE_F32, t->ndim, t->shape, t->stride, t->offset);
      g_hash_table_insert(m, g_strconcat(pre, state_name(o, k), rat_params_name(o->params, i), NULL),
                          rat_scope_adopt(v));
    }
  }
  return m;
}

typedef struct {
  const RatSafetensors *st;
  GHashTable *map;
} Source;

static gboolean src_shape(const Source *s, const char *name, RatShape *shape) {
  if (s->st) return rat_safetensors_info(s->st, name, shape, NULL);
  RatTensor *t = g_hash_table_lookup(s->map, name);
  if (t) *shape = rat_tensor_shape(t);
  return t != NULL;
}

static RatTensor *src_get(const Source *s, const char *name, GError **error) {
  return s->st ? rat_safetensors_get(s->st, name, error) : g_hash_table_lookup(s->map, name);
}

static gboolean check_entry(const Source *s, const char *name, RatShape want, GError **error) {
  RatShape got;
  if (!src_shape(s, name, &got)) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_NOT_FOUND,
                "missing optimiser state '%s': the checkpoint was written with another optimiser or model", name);
    return FALSE;
  }
  if (!rat_shape_equal(want, got)) {
    char *ws = rat_shape_to_string(want), *gs = rat_shape_to_string(got);
    g_set_error(error, RAT_ERROR, RAT_ERROR_SHAPE, "optimiser state '%s': expected shape %s, found %s", name, ws, gs);
    g_free(ws);
    g_free(gs);
    return FALSE;
  }
  return TRUE;
}

static gboolean state_load(RatOptim *o, const Source *src, const char *prefix, GError **error) {
  const char *pre = prefix ? prefix : "";
  gboolean ok = TRUE;
  char *sn = g_strconcat(pre, "step", NULL);
  ok = check_entry(src, sn, RAT_SHAPE0, error);
  for (guint i = 0; ok && i < rat_params_size(o->params); i++) {
    if (rat_params_kind(o->params, i) != RAT_PARAM_TRAINABLE) continue;
    RatShape want = rat_tensor_shape(rat_params_tensor(o->params, i));
    for (int k = 0; ok && k < n_states(o); k++) {
      char *name = g_strconcat(pre, state_name(o, k), rat_params_name(o->params, i), NULL);
      ok = check_entry(src, name, want, error);
      g_free(name);
    }
  }
  if (!ok) {
    g_free(sn);
    return FALSE;
  }
  RatScope scope = rat_scope_push();
  RatTensor *st = src_get(src, sn, error);
  g_free(sn);
  if (!st) {
    rat_scope_pop(scope);
    return FALSE;
  }
  double stepf;
  if (st->dtype == RAT_DTYPE_I32) {
    stepf = *rat_tensor_data_i32(st);
  } else {
    float f;
    rat_tensor_read(st, &f);
    stepf = f;
  }
  if (stepf < 0 || stepf != floor(stepf)) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "optimiser state '%sstep' holds %g, not a step count", pre,
                stepf);
    rat_scope_pop(scope);
    return FALSE;
  }
  for (guint i = 0; ok && i < rat_params_size(o->params); i++) {
    if (rat_params_kind(o->params, i) != RAT_PARAM_TRAINABLE) continue;
    RatTensor *t = rat_params_tensor(o->params, i);
    for (int k = 0; ok && k < n_states(o); k++) {
      char *name = g_strconcat(pre, state_name(o, k), rat_params_name(o->params, i), NULL);
      RatTensor *v = src_get(src, name, error);
      g_free(name);
      if (!v) {
        ok = FALSE;
        break;
      }
      rat_tensor_read(v, (float *)state_storage(o, k)->data + t->offset);
    }
  }
  if (ok) o->step = (gint64)stepf;
  rat_scope_pop(scope);
  return ok;
}

gboolean rat_optim_state_load_map(RatOptim *o, GHashTable *map, const char *prefix, GError **error) {
  Source s = {.map = map};
  return state_load(o, &s, prefix, error);
}

gboolean rat_optim_state_load(RatOptim *o, const RatSafetensors *st, const char *prefix, GError **error) {
  Source s = {.st = st};
  return state_load(o, &s, prefix, error);
}
