/* text2shapes: a small, complete text-to-image training task on procedural shapes (core/data/shapes.c), the
 * default experiment until the GAN models land. A caption ("a small red circle at the top left on a blue
 * background") is encoded by a word-level tokenizer built from the data, learned word embeddings and an LSTM
 * read over the words (its last state, so word order binds "red" to the shape and "blue" to the background); a convolutional decoder upsamples a 4x4 code to the image, and after every
 * convolution the `conditioner` slot (any conditioner plugin: affine, cbn, cin, rat...) modulates the features
 * by the sentence vector, followed by LeakyReLU(0.2). Trained by Adam on the mean squared error to the rendered
 * image. Not a GAN: a regression decoder, deliberately simple, to show a conditioning slot learning text.
 *   (h_t, c_t) = LSTM(E[w_t], (h_{t-1}, c_{t-1})) over the real tokens;  s = LReLU(W_s h_T + b_s)   [B,E]
 *   h_0 = reshape(W_0 s + b_0) [B,C0,4,4];  h_{k+1} = LReLU(cond_k(conv_k(up2(h_k)), s))
 *   x = tanh(conv_rgb(h_K)) in [-1,1]                       [B,3,S,S] */
#include <ratfw/layers.h>
#include <ratfw/checkpoint.h>
#include <ratfw/ratfw.h>

#include <math.h>
#include <string.h>

#define MAX_BLOCKS 6
#define N_SAMPLES 8

typedef struct {
  gint64 steps, batch_size, image_size, channels, embed_dim, context, max_objects;
  gint64 sample_every, checkpoint_every, log_every;
  double lr;
  RatModuleSpec *conditioner;
} T2sOptions;

static const RatArgSpec t2s_args[] = {
    RAT_ARG_I(T2sOptions, steps, "3000", 1, 100000000, "training steps"),
    RAT_ARG_I(T2sOptions, batch_size, "16", 1, 4096, "images per step"),
    RAT_ARG_I(T2sOptions, image_size, "32", 8, 256, "output size S (a power of two times 4... or any multiple of 4)"),
    RAT_ARG_I(T2sOptions, channels, "128", 8, 4096, "channels of the 4x4 code; halved at every upsampling"),
    RAT_ARG_I(T2sOptions, embed_dim, "64", 4, 4096, "word-embedding and sentence width E (the condition width)"),
    RAT_ARG_I(T2sOptions, context, "24", 4, 256, "tokens per caption (sot + words + eot)"),
    RAT_ARG_I(T2sOptions, max_objects, "1", 1, 4, "shapes per image"),
    RAT_ARG_I(T2sOptions, sample_every, "250", 1, RAT_ARG_NO_LIMIT, "write a sample grid every N steps"),
    RAT_ARG_I(T2sOptions, checkpoint_every, "250", 1, RAT_ARG_NO_LIMIT, "write checkpoint.safetensors every N steps"),
    RAT_ARG_I(T2sOptions, log_every, "50", 1, RAT_ARG_NO_LIMIT, "a log line every N steps"),
    RAT_ARG_D(T2sOptions, lr, "2e-3", 0.0, 10.0, "Adam learning rate (betas 0.5, 0.999)"),
    RAT_ARG_M(T2sOptions, conditioner, RAT_KIND_CONDITIONER, "affine", "the conditioning scheme of every decoder block"),
};

typedef struct {
  RatParams *params;
  RatRng rng;
  RatTokenizer *tok;
  RatTensor *embed; /* [V, E] */
  RatLstmCell rnn;
  RatLinear sent, fc;
  RatConv conv[MAX_BLOCKS], rgb;
  RatModule *cond[MAX_BLOCKS];
  int n_blocks;
  gint64 c0;
} T2s;

static gboolean t2s_build(RatModule *m, const RatBuildContext *ctx, GError **error) { return TRUE; }

static RatShapesOptions shapes_options(const T2sOptions *o, guint64 seed) {
  RatShapesOptions so = rat_shapes_options_default(seed);
  so.max_objects = (int)o->max_objects;
  return so;
}

/* Caption and [3,S,S] target in [-1,1] of item @index. */
static char *item(const T2sOptions *o, guint64 seed, guint64 index, RatTensor **target) {
  RatShapesOptions so = shapes_options(o, seed);
  RatShapesItem it;
  rat_shapes_sample(&so, index, &it);
  if (target) *target = rat_add_scalar(rat_mul_scalar(rat_shapes_render(&it, (int)o->image_size), 2.0f), -1.0f);
  return rat_shapes_caption(&it, (guint)(index % rat_shapes_n_phrasings()));
}

static gboolean model_build(RatModule *m, const T2sOptions *o, T2s *t, GError **error) {
  RatBuildContext bctx = {.params = t->params, .rng = &t->rng, .cond_dim = o->embed_dim};
  gint64 V = rat_tokenizer_vocab_size(t->tok), E = o->embed_dim;
  t->embed = rat_module_param(m, &bctx, "embed.weight", RAT_SHAPE(V, E));
  rat_init_normal_(&t->rng, t->embed, 0.0f, 1.0f);
  rat_lstm_layer_init(&t->rnn, m, &bctx, "rnn", E, E);
  rat_linear_layer_init(&t->sent, m, &bctx, "sentence", E, E, TRUE);
  t->c0 = o->channels;
  rat_linear_layer_init(&t->fc, m, &bctx, "fc", E, t->c0 * 16, TRUE);
  t->n_blocks = 0;
  gint64 size = 4, c = t->c0;
  while (size < o->image_size) {
    if (t->n_blocks == MAX_BLOCKS) {
      g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "text2shapes: image_size %" G_GINT64_FORMAT " needs more than %d "
                  "upsampling blocks; use 256 or less", o->image_size, MAX_BLOCKS);
      return FALSE;
    }
    gint64 cout = MAX(c / 2, 8);
    int k = t->n_blocks;
    char *name = g_strdup_printf("conv%d", k);
    rat_conv_layer_init(&t->conv[k], m, &bctx, name, c, cout, 3, 1, 1, TRUE);
    g_free(name);
    bctx.channels = cout;
    name = g_strdup_printf("fuse%d", k);
    t->cond[k] = rat_module_build_child(m, o->conditioner, name, RAT_KIND_CONDITIONER, &bctx, error);
    g_free(name);
    if (!t->cond[k]) return FALSE;
    c = cout;
    size *= 2;
    t->n_blocks++;
  }
  if (size != o->image_size) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "text2shapes: image_size must be 4 times a power of two (8, 16, 32, "
                "64, 128, 256), got %" G_GINT64_FORMAT, o->image_size);
    return FALSE;
  }
  rat_conv_layer_init(&t->rgb, m, &bctx, "to_rgb", c, 3, 3, 1, 1, TRUE);
  return TRUE;
}

/* ids i32 [B,L] -> s [B,E]: an LSTM over the word embeddings; padding steps leave the state unchanged. */
static RatTensor *encode(T2s *t, RatTensor *ids) {
  gint64 B = ids->shape[0], L = ids->shape[1], E = t->embed->shape[1];
  RatTensor *mask = rat_empty(RAT_SHAPE(B, L));
  const gint32 *p = rat_tensor_data_i32(ids);
  float *mk = rat_tensor_data(mask);
  gint32 pad = rat_tokenizer_pad_id(t->tok);
  for (gint64 i = 0; i < B * L; i++) mk[i] = p[i] != pad ? 1.0f : 0.0f;
  RatTensor *e = rat_embedding(t->embed, ids); /* [B,L,E] */
  RatTensor *h = rat_zeros(RAT_SHAPE(B, E)), *c = rat_zeros(RAT_SHAPE(B, E));
  for (gint64 l = 0; l < L; l++) {
    RatTensor *hn, *cn, *m = rat_slice(mask, 1, l, l + 1); /* [B,1] */
    rat_lstm_layer_step(&t->rnn, rat_select(e, 1, l), h, c, &hn, &cn);
    h = rat_add(h, rat_mul(m, rat_sub(hn, h)));
    c = rat_add(c, rat_mul(m, rat_sub(cn, c)));
  }
  return rat_leaky_relu(rat_linear_layer(&t->sent, h), 0.2f);
}

static RatTensor *decode(T2s *t, RatTensor *s) {
  gint64 B = s->shape[0];
  RatTensor *h = rat_reshape(rat_linear_layer(&t->fc, s), RAT_SHAPE(B, t->c0, 4, 4));
  RatCondState *st = rat_cond_state_new();
  for (int k = 0; k < t->n_blocks; k++) {
    h = rat_upsample_nearest(h, (int)h->shape[2] * 2, (int)h->shape[3] * 2);
    h = rat_conv_layer(&t->conv[k], h);
    h = rat_leaky_relu(rat_conditioner_forward(t->cond[k], h, s, st), 0.2f);
  }
  rat_cond_state_free(st);
  return rat_tanh(rat_conv_layer(&t->rgb, h));
}

static RatTensor *batch_ids(T2s *t, char **caps, guint n) {
  return rat_tokenizer_encode_batch(t->tok, (const char *const *)caps, n, NULL);
}

/* Two rows of N_SAMPLES: the rendered targets, then the model's images for their captions. */
static gboolean write_samples(RatRunContext *ctx, const T2sOptions *o, T2s *t, gint64 step, GError **error) {
  RatScope s = rat_scope_push();
  char *caps[N_SAMPLES + 1] = {NULL};
  RatTensor *targets[N_SAMPLES];
  for (int i = 0; i < N_SAMPLES; i++) caps[i] = item(o, ctx->seed + 1, (guint64)i, &targets[i]);
  RatTensor *out, *grid;
  RAT_NO_GRAD_BEGIN
  for (int k = 0; k < t->n_blocks; k++) rat_module_set_training(t->cond[k], FALSE);
  out = decode(t, encode(t, batch_ids(t, caps, N_SAMPLES)));
  for (int k = 0; k < t->n_blocks; k++) rat_module_set_training(t->cond[k], TRUE);
  RatTensor *top[N_SAMPLES], *bottom[N_SAMPLES];
  for (int i = 0; i < N_SAMPLES; i++) {
    top[i] = targets[i];
    bottom[i] = rat_select(out, 0, i);
  }
  RatTensor *rows[2] = {rat_concat(top, N_SAMPLES, 2), rat_concat(bottom, N_SAMPLES, 2)};
  grid = rat_mul_scalar(rat_add_scalar(rat_concat(rows, 2, 1), 1.0f), 0.5f);
  RAT_NO_GRAD_END
  char *name = g_strdup_printf("samples/step_%07" G_GINT64_FORMAT ".png", step);
  char *path = rat_run_path(ctx, name), *latest = rat_run_path(ctx, "samples.png");
  char *dir = g_path_get_dirname(path);
  g_mkdir_with_parents(dir, 0755);
  gboolean ok = rat_png_write(path, grid, error) && rat_png_write(latest, grid, error);
  if (ok) {
    GString *txt = g_string_new("Columns, left to right (top row: target, bottom row: generated):\n");
    for (int i = 0; i < N_SAMPLES; i++) g_string_append_printf(txt, "%d. %s\n", i + 1, caps[i]);
    char *tp = rat_run_path(ctx, "samples.txt");
    ok = rat_file_write_atomic(tp, txt->str, txt->len, error);
    g_free(tp);
    g_string_free(txt, TRUE);
  }
  for (int i = 0; i < N_SAMPLES; i++) g_free(caps[i]);
  g_free(name);
  g_free(path);
  g_free(latest);
  g_free(dir);
  rat_scope_pop(s);
  return ok;
}

static gboolean save_checkpoint(RatRunContext *ctx, T2s *t, RatOptim *opt, gint64 step, GError **error) {
  char *path = rat_run_path(ctx, "checkpoint.safetensors");
  gboolean ok = rat_checkpoint_save(path, t->params, opt, step, &t->rng, NULL, error);
  g_free(path);
  return ok;
}

/* Returns the step to continue from (0 without a checkpoint), or -1 with @error. */
static gint64 load_checkpoint(RatRunContext *ctx, T2s *t, RatOptim *opt, GError **error) {
  char *path = rat_run_path(ctx, "checkpoint.safetensors");
  gint64 step = g_file_test(path, G_FILE_TEST_EXISTS) ? rat_checkpoint_load(path, t->params, opt, &t->rng, error) : 0;
  g_free(path);
  return step;
}

static gboolean t2s_run(RatModule *m, RatRunContext *ctx, GError **error) {
  const T2sOptions *o = RAT_MODULE_OPTIONS(m, T2sOptions);
  T2s t = {0};
  gboolean ok = FALSE;
  RatOptim *opt = NULL;
  RatScope outer = rat_scope_push();
  rat_rng_init(&t.rng, ctx->seed);
  t.params = rat_params_new();

  /* Vocabulary from the training captions (deterministic), saved with the run. */
  char *tok_path = rat_run_path(ctx, "tokenizer.json");
  guint n_caps = 4000;
  char **caps = g_new0(char *, n_caps + 1);
  for (guint i = 0; i < n_caps; i++) caps[i] = item(o, ctx->seed, i, NULL);
  t.tok = rat_tokenizer_new_words((const char *const *)caps, n_caps, 2000, (guint)o->context);
  g_strfreev(caps);
  if (!rat_tokenizer_save(t.tok, tok_path, error)) goto out;
  if (!model_build(m, o, &t, error)) goto out;
  rat_params_finalize(t.params);
  opt = rat_adam_new(t.params, (float)o->lr, 0.5f, 0.999f, 1e-8f, 0.0f);
  gint64 step = ctx->resume ? load_checkpoint(ctx, &t, opt, error) : 0;
  if (step < 0) goto out;
  rat_run_log(ctx, "text2shapes: %" G_GINT64_FORMAT " learnable parameters, vocabulary %u words, %d blocks, %s%s",
              rat_params_numel(t.params, RAT_PARAM_TRAINABLE), rat_tokenizer_vocab_size(t.tok), t.n_blocks,
              t.cond[0]->type->name, step ? " (resumed)" : "");
  if (step) rat_run_log(ctx, "resuming at step %" G_GINT64_FORMAT, step);
  rat_run_progress_start(ctx, "train", o->steps, step);
  ok = TRUE;
  while (step < o->steps) {
    if (rat_run_should_stop(ctx)) {
      ctx->interrupted = TRUE;
      break;
    }
    gint64 t0 = g_get_monotonic_time();
    RatScope s = rat_scope_push();
    guint B = (guint)o->batch_size;
    char **bc = g_new0(char *, B + 1);
    RatTensor **tg = g_new0(RatTensor *, B);
    for (guint b = 0; b < B; b++) bc[b] = item(o, ctx->seed, (guint64)step * B + b, &tg[b]);
    RatTensor *target = rat_concat(tg, B, 0);
    target = rat_reshape(target, RAT_SHAPE(B, 3, o->image_size, o->image_size));
    RatTensor *x = decode(&t, encode(&t, batch_ids(&t, bc, B)));
    RatTensor *loss = rat_mean_all(rat_square(rat_sub(x, target)));
    g_strfreev(bc);
    g_free(tg);
    float lv = rat_tensor_item(loss);
    if (!isfinite(lv)) {
      g_set_error(error, RAT_ERROR, RAT_ERROR_NUMERIC, "text2shapes: the loss (mean squared error) became %g at step %"
                  G_GINT64_FORMAT "; the last good checkpoint is kept. Lower lr.", (double)lv, step);
      rat_scope_pop(s);
      ok = FALSE;
      break;
    }
    rat_optim_zero_grad(opt);
    if (!rat_backward(loss, NULL, FALSE, error)) {
      rat_scope_pop(s);
      ok = FALSE;
      break;
    }
    double gn = rat_params_grad_norm(t.params);
    rat_optim_step(opt);
    rat_scope_pop(s);
    step++;
    double dt = (double)(g_get_monotonic_time() - t0) / 1e6;
    rat_run_metrics(ctx, step, "loss", (double)lv, "grad_norm", gn, "step_time", dt, NULL);
    if (step % o->log_every == 0) rat_run_log(ctx, "step %" G_GINT64_FORMAT " loss %.5f grad_norm %.3g %.0f ms/step", step,
                                              (double)lv, gn, dt * 1e3);
    if ((step % o->sample_every == 0 || step == o->steps) && !write_samples(ctx, o, &t, step, error)) {
      ok = FALSE;
      break;
    }
    if ((step % o->checkpoint_every == 0 || step == o->steps) && !save_checkpoint(ctx, &t, opt, step, error)) {
      ok = FALSE;
      break;
    }
    rat_run_progress_update(ctx, step);
  }
  rat_run_progress_end(ctx);
  if (ok && ctx->interrupted) ok = save_checkpoint(ctx, &t, opt, step, error);
out:
  if (opt) rat_optim_free(opt);
  if (t.tok) rat_tokenizer_free(t.tok);
  rat_scope_pop(outer);
  /* the conditioners are children of @m: freed with it */
  rat_params_free(t.params);
  g_free(tok_path);
  return ok;
}

static const RatTaskIface t2s_iface = {.run = t2s_run};

static const RatModuleType t2s_type = {
    .struct_size = sizeof(RatModuleType),
    .name = "text2shapes",
    .kind = RAT_KIND_TASK,
    .doc = "Trains a small text-conditioned convolutional decoder on procedural shapes by mean squared error; the "
           "conditioner slot takes any conditioner plugin. The default demo experiment.",
    .args = t2s_args,
    .n_args = G_N_ELEMENTS(t2s_args),
    .options_size = sizeof(T2sOptions),
    .build = t2s_build,
    .iface = &t2s_iface,
};

static gboolean t2s_plugin_init(RatRegistry *reg, GError **error) { return rat_registry_add_type(reg, &t2s_type, error); }

RAT_PLUGIN_DEFINE("text2shapes", "0.1.0", "MIT", "text-to-image demo task on procedural shapes", t2s_plugin_init)
