/* rat: recurrent affine transformation (RAT). An LSTM's hidden state h_t sets the affine:
 *   (h_t, c_t) = LSTM(in_t, (h_{t-1}, c_{t-1})),   y = gamma(h_t) * x + beta(h_t)
 * with gamma/beta two-layer ReLU MLPs (Linear(h -> C), ReLU, Linear(C -> C); last layer 0/1 and 0/0).
 * Two recurrences (reference §3):
 *   batch_sequence  the released RATLIP Affine_rnn (RATLIP.py:413-425, §3.2): each affine owns an LSTM(cond_dim,
 *                   h) started from zero; the batch is read as ONE sequence of length B and the last hidden state
 *                   sets gamma/beta for every sample, so a sample's output depends on the rest of its batch.
 *   chained         the paper's figure and RAT-GAN (§3.1, §3.3): one state per sample, carried in order through
 *                   all RAT affines of one generator forward (RatCondState), the condition as input at every
 *                   step; initial state zero or Linear(z); cell weights shared across steps or one per step.
 * hidden = 0 is the plain affine of `affine` (no LSTM; the paper's h = 0 row). */
#include <ratfw/layers.h>
#include <ratfw/ratfw.h>

#include <string.h>

static const char *const recurrences[] = {"batch_sequence", "chained", NULL};
static const char *const init_states[] = {"zero", "noise", NULL};

typedef struct {
  gint64 hidden;
  char *recurrence;
  char *init_state;
  gboolean shared_cell;
} RatOptions;

typedef struct {
  gboolean chained;
  gboolean noise_init;
  RatLstmCell cell; /* own cell (batch_sequence, or chained without sharing), or the shared one */
  RatLinear noise2h, noise2c;
  RatAffinePair pair;
} RatPriv;

static const RatArgSpec rat_args[] = {
    RAT_ARG_I(RatOptions, hidden, "64", 0, 1 << 16,
              "LSTM hidden size h (released RATLIP: 64; the paper sweeps 0..128); 0 = plain affine, no LSTM"),
    RAT_ARG_C(RatOptions, recurrence, "batch_sequence", recurrences,
              "batch_sequence = released RATLIP (batch read as one sequence); chained = per-sample state carried "
              "across the generator's RAT affines (paper / RAT-GAN)"),
    RAT_ARG_C(RatOptions, init_state, "zero", init_states,
              "chained only: initial (h, c) zero, or Linear(z) of the noise (RAT-GAN)"),
    RAT_ARG_B(RatOptions, shared_cell, "true", "chained only: one LSTM cell shared by every step (RAT-GAN), or one per affine"),
};

static RatModule *root_of(RatModule *m) {
  while (m->parent) m = m->parent;
  return m;
}

/* A parameter shared by every chained RAT of one model, named "<root>.rat_cell.<name>": created by the first
 * module that asks, looked up by the others. */
static RatTensor *shared_param(RatModule *m, const RatBuildContext *ctx, const char *name, RatShape shape,
                               gboolean *created, GError **error) {
  char *full = g_strdup_printf("%s.rat_cell.%s", root_of(m)->path, name);
  RatTensor *t = rat_params_lookup(ctx->params, full);
  *created = t == NULL;
  if (!t) {
    t = rat_params_add(ctx->params, full, shape, RAT_PARAM_TRAINABLE);
    g_ptr_array_add(m->params, t);
  } else if (!rat_shape_equal(rat_tensor_shape(t), shape)) {
    char *a = rat_shape_to_string(rat_tensor_shape(t)), *b = rat_shape_to_string(shape);
    g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG,
                "%s: the shared RAT cell %s has shape %s but this affine needs %s: every chained RAT with "
                "shared_cell must use the same hidden size and condition width",
                m->path, full, a, b);
    g_free(a);
    g_free(b);
    t = NULL;
  }
  g_free(full);
  return t;
}

static gboolean build_shared(RatModule *m, const RatBuildContext *ctx, RatPriv *p, gint64 h, GError **error) {
  static const char *const parts[4] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"};
  RatShape shapes[4] = {RAT_SHAPE(4 * h, ctx->cond_dim), RAT_SHAPE(4 * h, h), RAT_SHAPE(4 * h), RAT_SHAPE(4 * h)};
  RatTensor **dst[4] = {&p->cell.weight_ih, &p->cell.weight_hh, &p->cell.bias_ih, &p->cell.bias_hh};
  for (int i = 0; i < 4; i++) {
    gboolean created;
    *dst[i] = shared_param(m, ctx, parts[i], shapes[i], &created, error);
    if (!*dst[i]) return FALSE;
    if (created) rat_init_lstm_(ctx->rng, *dst[i], h);
  }
  p->cell.hidden = h;
  return TRUE;
}

static gboolean build_noise_init(RatModule *m, const RatBuildContext *ctx, RatPriv *p, gint64 h, GError **error) {
  if (ctx->z_dim <= 0) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG,
                "%s: init_state: noise needs the noise width (z_dim) from the generator; this slot provides none", m->path);
    return FALSE;
  }
  RatLinear *dst[2] = {&p->noise2h, &p->noise2c};
  const char *names[2] = {"noise2h", "noise2c"};
  for (int k = 0; k < 2; k++) {
    char *wn = g_strdup_printf("%s.weight", names[k]), *bn = g_strdup_printf("%s.bias", names[k]);
    gboolean cw, cb;
    dst[k]->weight = shared_param(m, ctx, wn, RAT_SHAPE(h, ctx->z_dim), &cw, error);
    dst[k]->bias = dst[k]->weight ? shared_param(m, ctx, bn, RAT_SHAPE(h), &cb, error) : NULL;
    g_free(wn);
    g_free(bn);
    if (!dst[k]->weight || !dst[k]->bias) return FALSE;
    if (cw) rat_init_torch_default_(ctx->rng, dst[k]->weight, dst[k]->bias);
  }
  return TRUE;
}

static gboolean rat_build(RatModule *m, const RatBuildContext *ctx, GError **error) {
  const RatOptions *o = RAT_MODULE_OPTIONS(m, RatOptions);
  RatPriv *p = RAT_MODULE_PRIV(m, RatPriv);
  if (ctx->channels <= 0 || ctx->cond_dim <= 0) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "%s: rat needs the feature channels and condition width from its slot",
                m->path);
    return FALSE;
  }
  gint64 h = o->hidden, C = ctx->channels;
  p->chained = !strcmp(o->recurrence, "chained");
  p->noise_init = !strcmp(o->init_state, "noise");
  if (h == 0) { /* the plain affine */
    rat_affine_pair_init(&p->pair, m, ctx, ctx->cond_dim, C, C);
    return TRUE;
  }
  if (p->chained && o->shared_cell) {
    if (!build_shared(m, ctx, p, h, error)) return FALSE;
  } else {
    rat_lstm_layer_init(&p->cell, m, ctx, "lstm", ctx->cond_dim, h);
  }
  if (p->chained && p->noise_init && !build_noise_init(m, ctx, p, h, error)) return FALSE;
  rat_affine_pair_init(&p->pair, m, ctx, h, C, C);
  return TRUE;
}

/* Released semantics: the B conditions are one sequence; returns the last hidden state [1, h]. */
static RatTensor *batch_sequence_state(RatPriv *p, RatTensor *cond) {
  gint64 B = cond->shape[0], h = p->cell.hidden;
  RatTensor *hs = rat_zeros(RAT_SHAPE(1, h)), *cs = rat_zeros(RAT_SHAPE(1, h));
  for (gint64 t = 0; t < B; t++) {
    RatTensor *hn, *cn;
    rat_lstm_layer_step(&p->cell, rat_slice(cond, 0, t, t + 1), hs, cs, &hn, &cn);
    hs = hn;
    cs = cn;
  }
  return hs;
}

/* Chained semantics: one step from the state carried in @state (or the initial state). Returns h_t [B, h]. */
static RatTensor *chained_state(RatModule *m, RatPriv *p, RatTensor *cond, RatCondState *state) {
  gint64 B = cond->shape[0], h = p->cell.hidden;
  RatTensor *hs = state ? rat_cond_state_get(state, "rat.h") : NULL;
  RatTensor *cs = state ? rat_cond_state_get(state, "rat.c") : NULL;
  if (!hs) {
    RatTensor *z = state ? rat_cond_state_noise(state) : NULL;
    if (p->noise_init) {
      rat_check(z != NULL, "ratfw: %s: init_state noise but the generator passed no noise", m->path);
      hs = rat_linear_layer(&p->noise2h, z);
      cs = rat_linear_layer(&p->noise2c, z);
    } else {
      hs = rat_zeros(RAT_SHAPE(B, h));
      cs = rat_zeros(RAT_SHAPE(B, h));
    }
  }
  rat_check(hs->shape[1] == h, "ratfw: %s: carried RAT state has width %" G_GINT64_FORMAT " but this cell has %" G_GINT64_FORMAT,
            m->path, hs->shape[1], h);
  RatTensor *hn, *cn;
  rat_lstm_layer_step(&p->cell, cond, hs, cs, &hn, &cn);
  if (state) {
    rat_cond_state_set(state, "rat.h", hn);
    rat_cond_state_set(state, "rat.c", cn);
  }
  return hn;
}

static RatTensor *rat_forward(RatModule *m, RatTensor *x, RatTensor *cond, RatCondState *state) {
  RatPriv *p = RAT_MODULE_PRIV(m, RatPriv);
  const RatOptions *o = RAT_MODULE_OPTIONS(m, RatOptions);
  if (o->hidden == 0) return rat_affine_pair_apply(&p->pair, x, cond);
  RatTensor *u = p->chained ? chained_state(m, p, cond, state) : batch_sequence_state(p, cond);
  return rat_affine_pair_apply(&p->pair, x, u);
}

static gboolean rat_batch_dependent(RatModule *m) {
  const RatOptions *o = RAT_MODULE_OPTIONS(m, RatOptions);
  return o->hidden > 0 && !strcmp(o->recurrence, "batch_sequence");
}

static const RatConditionerIface rat_iface = {.forward = rat_forward, .batch_dependent = rat_batch_dependent};

static const RatModuleType rat_type = {
    .struct_size = sizeof(RatModuleType),
    .name = "rat",
    .kind = RAT_KIND_CONDITIONER,
    .doc = "Recurrent affine transformation: an LSTM hidden state sets gamma/beta. recurrence batch_sequence "
           "reproduces released RATLIP (batch read as one sequence); chained carries a per-sample state across the "
           "generator's RAT affines (reference §3).",
    .args = rat_args,
    .n_args = G_N_ELEMENTS(rat_args),
    .options_size = sizeof(RatOptions),
    .priv_size = sizeof(RatPriv),
    .build = rat_build,
    .iface = &rat_iface,
};

static gboolean rat_plugin_init(RatRegistry *reg, GError **error) { return rat_registry_add_type(reg, &rat_type, error); }

RAT_PLUGIN_DEFINE("rat", "0.1.0", "MIT", "recurrent affine transformation (RATLIP released and chained)", rat_plugin_init)
