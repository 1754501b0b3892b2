/* pretrain_clip: trains a small CLIP contrastively (Radford et al. 2021; reference §10) on the captioned images of
 * the experiment's dataset plugin (`data:`), e.g. the Noto emoji of npm emoji-datasource-google
 * (`ratfw dataset fetch emoji`), Fashion-MNIST or procedural shapes. Symmetric cross-entropy over the batch's cosine similarities with a learned temperature
 * (core/clip/clip.c), a word-level tokenizer built from the training captions, images through the GALIP
 * input transform the GAN will use. Logs the loss and held-out image->text / text->image top-1 and top-5
 * retrieval; writes RUN/model.safetensors (OpenAI names) + config.json + tokenizer.json, loadable by
 * `ratfw clip encode --weights RUN --vocab RUN/tokenizer.json` and by the GAN experiments as their frozen CLIP. */
#include <ratfw/checkpoint.h>
#include <ratfw/ratfw.h>

#include <math.h>
#include <string.h>

typedef struct {
  gint64 max_items;
  gint64 steps, batch_size, image_size, patch, vision_width, vision_layers, vision_heads;
  gint64 text_width, text_layers, text_heads, context, embed_dim, max_words;
  gint64 eval_every, checkpoint_every, log_every;
  double lr, weight_decay;
} PcOptions;

static const RatArgSpec pc_args[] = {
    RAT_ARG_I(PcOptions, max_items, "50000", 16, 10000000,
              "at most this many images per split are loaded (into memory, resized to image_size)"),
    RAT_ARG_I(PcOptions, steps, "4000", 1, 100000000, "training steps"),
    RAT_ARG_I(PcOptions, batch_size, "64", 2, 4096, "image-caption pairs per step (the contrastive batch)"),
    RAT_ARG_I(PcOptions, image_size, "32", 8, 224, "input size of the vision tower"),
    RAT_ARG_I(PcOptions, patch, "8", 2, 64, "patch size (image_size must be a multiple)"),
    RAT_ARG_I(PcOptions, vision_width, "128", 8, 2048, "vision transformer width"),
    RAT_ARG_I(PcOptions, vision_layers, "4", 1, 48, "vision transformer blocks"),
    RAT_ARG_I(PcOptions, vision_heads, "4", 1, 64, "vision attention heads (divide the width)"),
    RAT_ARG_I(PcOptions, text_width, "128", 8, 2048, "text transformer width"),
    RAT_ARG_I(PcOptions, text_layers, "3", 1, 48, "text transformer blocks"),
    RAT_ARG_I(PcOptions, text_heads, "4", 1, 64, "text attention heads (divide the width)"),
    RAT_ARG_I(PcOptions, context, "24", 4, 77, "tokens per caption"),
    RAT_ARG_I(PcOptions, embed_dim, "128", 4, 2048, "joint embedding width"),
    RAT_ARG_I(PcOptions, max_words, "3000", 8, 100000, "word-tokenizer vocabulary (most frequent words)"),
    RAT_ARG_I(PcOptions, eval_every, "500", 1, RAT_ARG_NO_LIMIT, "held-out retrieval every N steps"),
    RAT_ARG_I(PcOptions, checkpoint_every, "500", 1, RAT_ARG_NO_LIMIT, "checkpoint every N steps"),
    RAT_ARG_I(PcOptions, log_every, "50", 1, RAT_ARG_NO_LIMIT, "a log line every N steps"),
    RAT_ARG_D(PcOptions, lr, "5e-4", 0.0, 1.0, "Adam learning rate (betas 0.9, 0.98, eps 1e-6 as CLIP)"),
    RAT_ARG_D(PcOptions, weight_decay, "0", 0.0, 1.0, "L2 weight decay"),
};

/* The data: images as [N,3,S,S] in [-1,1] and captions (several per image for training). */
typedef struct {
  RatTensor *images[2]; /* train, test (owned refs) */
  GPtrArray *captions[2]; /* per item: NULL-terminated char** (owned) */
  guint n[2];
} Data;

static void data_clear(Data *d) {
  for (int s = 0; s < 2; s++) {
    if (d->images[s]) rat_tensor_unref(d->images[s]);
    if (d->captions[s]) g_ptr_array_unref(d->captions[s]);
  }
}

/* Loads up to max_items images of each split of the dataset, resized to image_size (plain resize, [-1,1]), with
 * all their captions. Images decode in parallel (the dataset's image() is thread-safe). */
static gboolean load_data(const PcOptions *o, RatModule *ds, Data *d, GError **error) {
  RatTransform t = {.mode = RAT_RESIZE_PLAIN, .size = (int)o->image_size, .normalize = TRUE};
  for (int s = 0; s < 2; s++) {
    RatSplit split = s == 0 ? RAT_SPLIT_TRAIN : RAT_SPLIT_TEST;
    guint n = (guint)MIN((gint64)rat_dataset_count(ds, split), o->max_items);
    if (n < 2) {
      g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "pretrain_clip: the %s split of dataset %s has %u images; "
                  "contrastive training and held-out retrieval need at least 2", s ? "test" : "train", ds->type->name, n);
      return FALSE;
    }
    d->captions[s] = g_ptr_array_new_with_free_func((GDestroyNotify)g_strfreev);
    for (guint i = 0; i < n; i++) {
      guint nc = rat_dataset_n_captions(ds, split, i);
      char **caps = g_new0(char *, nc + 1);
      for (guint k = 0; k < nc; k++) caps[k] = rat_dataset_caption(ds, split, i, k);
      g_ptr_array_add(d->captions[s], caps);
    }
    RatTensor *imgs = rat_empty(RAT_SHAPE(n, 3, o->image_size, o->image_size));
    float *dst = rat_tensor_data(imgs);
    gsize per = (gsize)(3 * o->image_size * o->image_size);
    GError *first = NULL;
    guint first_i = G_MAXUINT;
#pragma omp parallel for schedule(dynamic, 16)
    for (guint i = 0; i < n; i++) {
      GError *e = NULL;
      RatImage *img = rat_dataset_image(ds, split, i, &e);
      if (!img) {
#pragma omp critical
        {
          if (i < first_i) {
            g_clear_error(&first);
            first = e;
            first_i = i;
          } else {
            g_error_free(e);
          }
        }
        continue;
      }
      RatTransformParams tp;
      rat_transform_sample(&t, img->width, img->height, NULL, &tp);
      rat_transform_apply(&t, img, &tp, dst + (gsize)i * per);
      rat_image_free(img);
    }
    if (first) {
      g_propagate_error(error, first);
      return FALSE;
    }
    d->images[s] = rat_tensor_ref(imgs);
    d->n[s] = n;
  }
  return TRUE;
}

typedef struct {
  RatParams *params;
  RatClip *clip;
  RatTokenizer *tok;
  RatOptim *opt;
  RatRng rng;
} Pc;

/* Batch of pairs: images [B,3,S,S] (galip transform) and caption ids. */
static void batch(const PcOptions *o, Pc *p, Data *d, int split, const guint *idx, const guint *phr, guint B,
                  RatTensor **pixels, RatTensor **ids) {
  RatTensor **rows = g_newa(RatTensor *, B);
  const char **caps = g_newa(const char *, B + 1);
  for (guint b = 0; b < B; b++) {
    rows[b] = rat_slice(d->images[split], 0, idx[b], idx[b] + 1);
    char **c = d->captions[split]->pdata[idx[b]];
    guint nc = g_strv_length(c);
    caps[b] = c[phr ? phr[b] % nc : 0];
  }
  *pixels = rat_clip_transform_galip(rat_concat(rows, B, 0), (int)o->image_size);
  *ids = rat_tokenizer_encode_batch(p->tok, caps, B, NULL);
}

/* Held-out retrieval: every test image against every test caption (first phrasing). */
static void evaluate(RatRunContext *ctx, const PcOptions *o, Pc *p, Data *d, gint64 step) {
  RatScope s = rat_scope_push();
  guint n = d->n[1], chunk = 256;
  RatTensor **ie = g_new0(RatTensor *, (n + chunk - 1) / chunk), **te = g_new0(RatTensor *, (n + chunk - 1) / chunk);
  guint nc = 0;
  RatTensor *sim;
  RAT_NO_GRAD_BEGIN
  for (guint a = 0; a < n; a += chunk, nc++) {
    guint m = MIN(chunk, n - a);
    guint *idx = g_new(guint, m);
    for (guint k = 0; k < m; k++) idx[k] = a + k;
    RatTensor *px, *ids;
    batch(o, p, d, 1, idx, NULL, m, &px, &ids);
    RatTensor *e1 = rat_clip_encode_image(p->clip, px), *e2 = rat_clip_encode_text_eot(p->clip, ids, rat_tokenizer_eot_id(p->tok));
    ie[nc] = rat_div(e1, rat_sqrt(rat_sum(rat_square(e1), RAT_AXIS(1), TRUE)));
    te[nc] = rat_div(e2, rat_sqrt(rat_sum(rat_square(e2), RAT_AXIS(1), TRUE)));
    g_free(idx);
  }
  sim = rat_contiguous(rat_matmul(rat_concat(ie, nc, 0), rat_transpose(rat_concat(te, nc, 0), 0, 1)));
  RAT_NO_GRAD_END
  const float *S = rat_tensor_data(sim);
  double hits[2][2] = {{0, 0}, {0, 0}}; /* [i2t, t2i][top1, top5] */
  for (guint i = 0; i < n; i++) {
    guint rank_i2t = 0, rank_t2i = 0;
    for (guint j = 0; j < n; j++) {
      if (S[i * n + j] > S[i * n + i]) rank_i2t++;
      if (S[j * n + i] > S[i * n + i]) rank_t2i++;
    }
    hits[0][0] += rank_i2t < 1;
    hits[0][1] += rank_i2t < 5;
    hits[1][0] += rank_t2i < 1;
    hits[1][1] += rank_t2i < 5;
  }
  double sc = 100.0 / n;
  rat_run_metrics(ctx, step, "i2t_top1", hits[0][0] * sc, "i2t_top5", hits[0][1] * sc, "t2i_top1", hits[1][0] * sc,
                  "t2i_top5", hits[1][1] * sc, NULL);
  rat_run_log(ctx, "step %" G_GINT64_FORMAT " held-out retrieval over %u pairs: image->text top-1 %.1f%% top-5 %.1f%%, "
              "text->image top-1 %.1f%% top-5 %.1f%% (chance top-1 %.2f%%)", step, n, hits[0][0] * sc, hits[0][1] * sc,
              hits[1][0] * sc, hits[1][1] * sc, sc);
  g_free(ie);
  g_free(te);
  rat_scope_pop(s);
}

static gboolean save_model(RatRunContext *ctx, const PcOptions *o, Pc *p, GError **error) {
  char *path = rat_run_path(ctx, "model.safetensors");
  GHashTable *meta = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
  g_hash_table_insert(meta, "format", g_strdup("ratfw clip (OpenAI names)"));
  gboolean ok = rat_params_save(p->params, path, meta, error);
  g_hash_table_destroy(meta);
  g_free(path);
  if (!ok) return FALSE;
  char *cj = rat_run_path(ctx, "config.json");
  char *json = g_strdup_printf("{\"vision_config\": {\"num_attention_heads\": %" G_GINT64_FORMAT "}, \"text_config\": "
                               "{\"num_attention_heads\": %" G_GINT64_FORMAT "}}\n", o->vision_heads, o->text_heads);
  ok = rat_file_write_atomic(cj, json, strlen(json), error);
  g_free(cj);
  g_free(json);
  return ok;
}

static gboolean save_checkpoint(RatRunContext *ctx, Pc *p, gint64 step, GError **error) {
  char *path = rat_run_path(ctx, "checkpoint.safetensors");
  gboolean ok = rat_checkpoint_save(path, p->params, p->opt, step, &p->rng, NULL, error);
  g_free(path);
  return ok;
}

static gint64 load_checkpoint(RatRunContext *ctx, Pc *p, GError **error) {
  char *path = rat_run_path(ctx, "checkpoint.safetensors");
  gint64 step = g_file_test(path, G_FILE_TEST_EXISTS) ? rat_checkpoint_load(path, p->params, p->opt, &p->rng, error) : 0;
  g_free(path);
  return step;
}

static gboolean pc_build(RatModule *m, const RatBuildContext *ctx, GError **error) { return TRUE; }

static gboolean pc_check(const RatModuleType *type, const void *options, const RatBuildContext *ctx, GError **error) {
  const PcOptions *o = options;
  if (o->image_size % o->patch || o->vision_width % o->vision_heads || o->text_width % o->text_heads) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "pretrain_clip: image_size must be a multiple of patch and the "
                "widths multiples of their head counts");
    return FALSE;
  }
  return TRUE;
}

static gboolean pc_run(RatModule *m, RatRunContext *ctx, GError **error) {
  const PcOptions *o = RAT_MODULE_OPTIONS(m, PcOptions);
  if (!pc_check(m->type, o, NULL, error)) return FALSE;
  Pc p = {0};
  Data d;
  RatModule *ds = NULL;
  memset(&d, 0, sizeof(d));
  gboolean ok = FALSE;
  RatScope outer = rat_scope_push();
  rat_rng_init(&p.rng, ctx->seed);
  gint64 t0 = g_get_monotonic_time();
  if (!ctx->exp->data) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "%s: pretrain_clip needs a `data:` section naming a dataset (e.g. "
                "`data: {type: emoji}`; `ratfw plugins` lists the installed datasets)", ctx->exp->path);
    goto out;
  }
  if (!(ds = rat_dataset_build(ctx->registry, ctx->exp->data, error)) || !load_data(o, ds, &d, error)) goto out;
  /* tokenizer from every training caption */
  GPtrArray *all = g_ptr_array_new();
  for (guint i = 0; i < d.n[0]; i++)
    for (char **c = d.captions[0]->pdata[i]; *c; c++) g_ptr_array_add(all, *c);
  p.tok = rat_tokenizer_new_words((const char *const *)all->pdata, all->len, (guint)o->max_words, (guint)o->context);
  g_ptr_array_free(all, TRUE);
  char *tp = rat_run_path(ctx, "tokenizer.json");
  ok = rat_tokenizer_save(p.tok, tp, error);
  g_free(tp);
  if (!ok) goto out;
  ok = FALSE;
  RatClipConfig cfg = {.vision_width = (int)o->vision_width, .vision_layers = (int)o->vision_layers,
                       .vision_heads = (int)o->vision_heads, .vision_patch = (int)o->patch,
                       .image_size = (int)o->image_size, .text_width = (int)o->text_width,
                       .text_layers = (int)o->text_layers, .text_heads = (int)o->text_heads,
                       .context_length = (int)o->context, .vocab_size = (int)rat_tokenizer_vocab_size(p.tok),
                       .embed_dim = (int)o->embed_dim};
  p.params = rat_params_new();
  p.clip = rat_clip_new(&cfg, p.params, "", RAT_PARAM_TRAINABLE);
  rat_params_finalize(p.params);
  rat_clip_init_random(p.clip, &p.rng);
  p.opt = rat_adam_new(p.params, (float)o->lr, 0.9f, 0.98f, 1e-6f, (float)o->weight_decay);
  gint64 step = ctx->resume ? load_checkpoint(ctx, &p, error) : 0;
  if (step < 0) goto out;
  rat_run_log(ctx, "pretrain_clip on %s: %u train / %u held-out images (%.1f s to load), vocabulary %u words, %" G_GINT64_FORMAT
              " parameters%s", ds->type->name, d.n[0], d.n[1], (double)(g_get_monotonic_time() - t0) / 1e6,
              rat_tokenizer_vocab_size(p.tok), rat_params_numel(p.params, RAT_PARAM_TRAINABLE), step ? ", resumed" : "");
  rat_run_progress_start(ctx, "pretrain_clip", o->steps, step);
  guint B = (guint)o->batch_size;
  guint *idx = g_new(guint, B), *phr = g_new(guint, B);
  ok = TRUE;
  while (step < o->steps) {
    if (rat_run_should_stop(ctx)) {
      ctx->interrupted = TRUE;
      break;
    }
    gint64 ts = g_get_monotonic_time();
    RatScope s = rat_scope_push();
    /* B distinct images (a repeated image would be its own negative) and a random phrasing each */
    for (guint b = 0; b < B; b++) {
      gboolean dup;
      do {
        idx[b] = (guint)rat_rng_below(&p.rng, d.n[0]);
        dup = FALSE;
        for (guint k = 0; k < b; k++) dup |= idx[k] == idx[b];
      } while (dup && B < d.n[0]);
      phr[b] = (guint)rat_rng_below(&p.rng, 64);
    }
    RatTensor *px, *ids;
    batch(o, &p, &d, 0, idx, phr, B, &px, &ids);
    RatTensor *ie = rat_clip_encode_image(p.clip, px);
    RatTensor *te = rat_clip_encode_text_eot(p.clip, ids, rat_tokenizer_eot_id(p.tok));
    RatTensor *loss = rat_clip_contrastive_loss(ie, te, rat_clip_logit_scale(p.clip));
    float lv = rat_tensor_item(loss);
    if (!isfinite(lv)) {
      g_set_error(error, RAT_ERROR, RAT_ERROR_NUMERIC, "pretrain_clip: the contrastive loss became %g at step %" G_GINT64_FORMAT
                  "; the last good checkpoint is kept. Lower lr.", (double)lv, step);
      rat_scope_pop(s);
      ok = FALSE;
      break;
    }
    rat_optim_zero_grad(p.opt);
    if (!rat_backward(loss, NULL, FALSE, error)) {
      rat_scope_pop(s);
      ok = FALSE;
      break;
    }
    double gn = rat_params_grad_norm(p.params);
    rat_optim_step(p.opt);
    rat_scope_pop(s);
    step++;
    double dt = (double)(g_get_monotonic_time() - ts) / 1e6;
    rat_run_metrics(ctx, step, "loss", (double)lv, "grad_norm", gn, "temperature",
                    (double)expf(-rat_tensor_item(rat_clip_logit_scale(p.clip))), "step_time", dt, NULL);
    if (step % o->log_every == 0)
      rat_run_log(ctx, "step %" G_GINT64_FORMAT " loss %.4f %.0f ms/step", step, (double)lv, dt * 1e3);
    if (step % o->eval_every == 0 || step == o->steps) evaluate(ctx, o, &p, &d, step);
    if ((step % o->checkpoint_every == 0 || step == o->steps) &&
        !(save_checkpoint(ctx, &p, step, error) && save_model(ctx, o, &p, error))) {
      ok = FALSE;
      break;
    }
    rat_run_progress_update(ctx, step);
  }
  rat_run_progress_end(ctx);
  if (ok && ctx->interrupted) ok = save_checkpoint(ctx, &p, step, error);
  g_free(idx);
  g_free(phr);
out:
  if (p.opt) rat_optim_free(p.opt);
  rat_clip_free(p.clip);
  if (p.params) rat_params_free(p.params);
  if (p.tok) rat_tokenizer_free(p.tok);
  data_clear(&d);
  if (ds) rat_module_free(ds);
  rat_scope_pop(outer);
  return ok;
}

static const RatTaskIface pc_iface = {.run = pc_run};

static const RatModuleType pc_type = {
    .struct_size = sizeof(RatModuleType),
    .name = "pretrain_clip",
    .kind = RAT_KIND_TASK,
    .doc = "Trains a small CLIP contrastively on emoji or shapes with a word tokenizer; logs held-out retrieval and "
           "writes model.safetensors + config.json + tokenizer.json (reference §10).",
    .args = pc_args,
    .n_args = G_N_ELEMENTS(pc_args),
    .options_size = sizeof(PcOptions),
    .build = pc_build,
    .check = pc_check,
    .iface = &pc_iface,
};

static gboolean pc_plugin_init(RatRegistry *reg, GError **error) { return rat_registry_add_type(reg, &pc_type, error); }

RAT_PLUGIN_DEFINE("pretrain_clip", "0.1.0", "MIT", "contrastive CLIP pretraining task", pc_plugin_init)
