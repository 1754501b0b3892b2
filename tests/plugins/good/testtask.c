/* Test plugin (not installed): a task that fits y = a*x + b by gradient descent with the core ops and logs the
 * loss to metrics.jsonl, a toy conditioner y = x * (1 + W cond) + bias, and a block that holds a conditioner
 * child. They exercise the registry, argument tables, run directories and `ratfw inspect`. */
#include <ratfw/ratfw.h>

#include <gmodule.h>
#include <stdio.h>

/* ---- fit_line task ---------------------------------------------------------------------------------------- */

typedef struct {
  gint64 steps, n_points;
  double lr, a, b;
  gboolean fail;
  gint64 stop_after; /* simulate SIGINT after this many steps (0: never) */
} FitLineOptions;

static const RatArgSpec fit_line_args[] = {
    RAT_ARG_I(FitLineOptions, steps, "200", 1, 1000000, "gradient-descent steps"),
    RAT_ARG_I(FitLineOptions, n_points, "16", 2, 4096, "points x_i = i / n_points"),
    RAT_ARG_D(FitLineOptions, lr, "0.5", 0, 10, "learning rate"),
    RAT_ARG_D(FitLineOptions, a, "2.0", RAT_ARG_NO_LIMIT, RAT_ARG_NO_LIMIT, "true slope"),
    RAT_ARG_D(FitLineOptions, b, "-1.0", RAT_ARG_NO_LIMIT, RAT_ARG_NO_LIMIT, "true intercept"),
    RAT_ARG_B(FitLineOptions, fail, "false", "fail on purpose (tests the exit status)"),
    RAT_ARG_I(FitLineOptions, stop_after, "0", 0, RAT_ARG_NO_LIMIT, "act as if interrupted after N steps"),
};

static gboolean fit_line_build(RatModule *m, const RatBuildContext *ctx, GError **error) { return TRUE; }

static gboolean fit_line_run(RatModule *m, RatRunContext *ctx, GError **error) {
  const FitLineOptions *o = RAT_MODULE_OPTIONS(m, FitLineOptions);
  if (o->fail) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_NUMERIC, "fit_line failed on purpose (fail: true)");
    return FALSE;
  }
  double w0 = 0, c0 = 0;
  gint64 start = 0;
  char *state = rat_run_path(ctx, "state.txt");
  char *text = NULL;
  if (ctx->resume && g_file_get_contents(state, &text, NULL, NULL)) {
    if (sscanf(text, "%" G_GINT64_FORMAT " %lf %lf", &start, &w0, &c0) != 3) start = 0;
    rat_run_log(ctx, "resuming at step %" G_GINT64_FORMAT, start);
  }
  g_free(text);
  RatScope outer = rat_scope_push();
  RatTensor *x = rat_mul_scalar(rat_arange(o->n_points), (float)(1.0 / (double)o->n_points));
  RatTensor *y = rat_add_scalar(rat_mul_scalar(x, (float)o->a), (float)o->b);
  RatTensor *w = rat_tensor_ref(rat_full(RAT_SHAPE(1), (float)w0));
  RatTensor *c = rat_tensor_ref(rat_full(RAT_SHAPE(1), (float)c0));
  rat_tensor_set_requires_grad(w, TRUE);
  rat_tensor_set_requires_grad(c, TRUE);
  rat_run_progress_start(ctx, "fit_line", o->steps, start);
  gboolean ok = TRUE;
  gint64 step = start;
  float loss_v = 0;
  while (step < o->steps) {
    if (rat_run_should_stop(ctx) || (o->stop_after && step - start >= o->stop_after)) {
      ctx->interrupted = TRUE;
      break;
    }
    RatScope s = rat_scope_push();
    RatTensor *d = rat_sub(rat_add(rat_mul(x, w), c), y);
    RatTensor *loss = rat_mean_all(rat_square(d));
    rat_tensor_zero_grad(w);
    rat_tensor_zero_grad(c);
    if (!rat_backward(loss, NULL, FALSE, error)) {
      rat_scope_pop(s);
      ok = FALSE;
      break;
    }
    loss_v = rat_tensor_item(loss);
    rat_tensor_add_(w, w->grad, (float)-o->lr);
    rat_tensor_add_(c, c->grad, (float)-o->lr);
    rat_scope_pop(s);
    step++;
    rat_run_metrics(ctx, step, "loss", (double)loss_v, NULL);
    rat_run_progress_update(ctx, step);
  }
  rat_run_progress_end(ctx);
  char *st = g_strdup_printf("%" G_GINT64_FORMAT " %.9g %.9g\n", step, (double)rat_tensor_item(w),
                             (double)rat_tensor_item(c));
  g_file_set_contents(state, st, -1, NULL);
  g_free(st);
  if (ok)
    rat_run_log(ctx, "fit_line: step %" G_GINT64_FORMAT " loss %.6g w %.6f c %.6f%s", step, (double)loss_v,
                (double)rat_tensor_item(w), (double)rat_tensor_item(c), ctx->interrupted ? " (interrupted)" : "");
  rat_tensor_unref(w);
  rat_tensor_unref(c);
  rat_scope_pop(outer);
  g_free(state);
  return ok;
}

static const RatTaskIface fit_line_iface = {.run = fit_line_run};

static const RatModuleType fit_line_type = {
    .struct_size = sizeof(RatModuleType),
    .name = "fit_line",
    .kind = RAT_KIND_TASK,
    .doc = "Fits y = a*x + b by full-batch gradient descent on the mean squared error (a test task).",
    .args = fit_line_args,
    .n_args = G_N_ELEMENTS(fit_line_args),
    .options_size = sizeof(FitLineOptions),
    .build = fit_line_build,
    .iface = &fit_line_iface,
};

/* ---- toy conditioner ------------------------------------------------------------------------------------------ */

typedef struct {
  double scale;
  char *mode;
  gboolean bias;
} ToyCondOptions;
static const char *const toy_modes[] = {"add", "mul", NULL};
static const RatArgSpec toy_cond_args[] = {
    RAT_ARG_D(ToyCondOptions, scale, "1.0", 0, 10, "multiplies the modulation"),
    RAT_ARG_C(ToyCondOptions, mode, "mul", toy_modes, "mul: x * (1 + g); add: x + g"),
    RAT_ARG_B(ToyCondOptions, bias, "true", "learn a per-channel bias"),
};
typedef struct {
  RatTensor *w, *b;
  gint64 channels, cond_dim;
} ToyCondPriv;

static gboolean toy_cond_build(RatModule *m, const RatBuildContext *ctx, GError **error) {
  ToyCondPriv *p = RAT_MODULE_PRIV(m, ToyCondPriv);
  if (ctx->channels <= 0 || ctx->cond_dim <= 0) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "needs channels and cond_dim from its parent (got %" G_GINT64_FORMAT
                ", %" G_GINT64_FORMAT ")", ctx->channels, ctx->cond_dim);
    return FALSE;
  }
  p->channels = ctx->channels;
  p->cond_dim = ctx->cond_dim;
  p->w = rat_module_param(m, ctx, "weight", RAT_SHAPE(1, ctx->channels, ctx->cond_dim));
  rat_init_uniform_(ctx->rng, p->w, -0.1f, 0.1f);
  if (RAT_MODULE_OPTIONS(m, ToyCondOptions)->bias) p->b = rat_module_param(m, ctx, "bias", RAT_SHAPE(1, ctx->channels, 1, 1));
  return TRUE;
}

static RatTensor *toy_cond_forward(RatModule *m, RatTensor *x, RatTensor *cond, RatCondState *state) {
  const ToyCondOptions *o = RAT_MODULE_OPTIONS(m, ToyCondOptions);
  ToyCondPriv *p = RAT_MODULE_PRIV(m, ToyCondPriv);
  gint64 B = rat_tensor_dim(cond, 0);
  RatTensor *g = rat_sum(rat_mul(p->w, rat_reshape(cond, RAT_SHAPE(B, 1, p->cond_dim))), RAT_AXIS(2), FALSE);
  g = rat_mul_scalar(rat_reshape(g, RAT_SHAPE(B, p->channels, 1, 1)), (float)o->scale);
  RatTensor *y = g_str_equal(o->mode, "mul") ? rat_mul(x, rat_add_scalar(g, 1.0f)) : rat_add(x, g);
  rat_flops_add((guint64)(2 * B * p->channels * p->cond_dim + 2 * rat_tensor_numel(x)));
  return p->b ? rat_add(y, p->b) : y;
}

static gboolean toy_cond_batch_dependent(RatModule *m) { return FALSE; }

static const RatConditionerIface toy_cond_iface = {.forward = toy_cond_forward,
                                                   .batch_dependent = toy_cond_batch_dependent};

static const RatModuleType toy_cond_type = {
    .struct_size = sizeof(RatModuleType),
    .name = "toy_cond",
    .kind = RAT_KIND_CONDITIONER,
    .doc = "y = x * (1 + scale * W cond) + bias (a test conditioner).",
    .args = toy_cond_args,
    .n_args = G_N_ELEMENTS(toy_cond_args),
    .options_size = sizeof(ToyCondOptions),
    .priv_size = sizeof(ToyCondPriv),
    .build = toy_cond_build,
    .iface = &toy_cond_iface,
};

/* ---- toy block: two conditioners in sequence (children), with a channel check ------------------------------- */

typedef struct {
  RatModuleSpec *cond;
  gint64 depth;
  RatIntList dims;
} ToyBlockOptions;
static const RatArgSpec toy_block_args[] = {
    RAT_ARG_M(ToyBlockOptions, cond, RAT_KIND_CONDITIONER, "toy_cond", "the conditioner of each stage"),
    RAT_ARG_I(ToyBlockOptions, depth, "2", 1, 8, "number of stages"),
    RAT_ARG_L(ToyBlockOptions, dims, "[1, 2]", 1, 64, "unused list (tests INT_LIST)"),
};
typedef struct {
  RatModule *stage[8];
  gint64 depth, cond_dim;
} ToyBlockPriv;

static gboolean toy_block_check(const RatModuleType *t, const void *options, const RatBuildContext *ctx,
                                GError **error) {
  const ToyBlockOptions *o = options;
  if (ctx && ctx->channels % o->depth != 0) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "channels %" G_GINT64_FORMAT " not divisible by depth %" G_GINT64_FORMAT,
                ctx->channels, o->depth);
    return FALSE;
  }
  return TRUE;
}

static gboolean toy_block_build(RatModule *m, const RatBuildContext *ctx, GError **error) {
  const ToyBlockOptions *o = RAT_MODULE_OPTIONS(m, ToyBlockOptions);
  ToyBlockPriv *p = RAT_MODULE_PRIV(m, ToyBlockPriv);
  p->depth = o->depth;
  p->cond_dim = ctx->cond_dim;
  for (gint64 i = 0; i < o->depth; i++) {
    char name[32];
    g_snprintf(name, sizeof name, "stage%" G_GINT64_FORMAT, i);
    p->stage[i] = rat_module_build_child(m, o->cond, name, RAT_KIND_CONDITIONER, ctx, error);
    if (!p->stage[i]) return FALSE;
  }
  return TRUE;
}

static RatTensor *toy_block_forward(RatModule *m, RatTensor *x) {
  ToyBlockPriv *p = RAT_MODULE_PRIV(m, ToyBlockPriv);
  RatTensor *cond = rat_ones(RAT_SHAPE(rat_tensor_dim(x, 0), p->cond_dim));
  for (gint64 i = 0; i < p->depth; i++) x = rat_conditioner_forward(p->stage[i], x, cond, NULL);
  return rat_leaky_relu(x, 0.2f);
}

static const RatBlockIface toy_block_iface = {.forward = toy_block_forward};

static const RatModuleType toy_block_type = {
    .struct_size = sizeof(RatModuleType),
    .name = "toy_block",
    .kind = RAT_KIND_BLOCK,
    .doc = "depth conditioners in sequence with a constant condition, then leaky ReLU (a test block).",
    .args = toy_block_args,
    .n_args = G_N_ELEMENTS(toy_block_args),
    .options_size = sizeof(ToyBlockOptions),
    .priv_size = sizeof(ToyBlockPriv),
    .build = toy_block_build,
    .iface = &toy_block_iface,
    .check = toy_block_check,
};

static gboolean testtask_init(RatRegistry *reg, GError **error) {
  return rat_registry_add_type(reg, &fit_line_type, error) && rat_registry_add_type(reg, &toy_cond_type, error) &&
         rat_registry_add_type(reg, &toy_block_type, error);
}

RAT_PLUGIN_DEFINE("testtask", "1.2.3", "MIT", "test task, conditioner and block", testtask_init)
