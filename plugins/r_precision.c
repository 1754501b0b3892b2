/* r_precision: text-to-image R-precision (the AttnGAN/DM-GAN protocol with a CLIP in place of DAMSM): for each
 * generated image, its true caption and `candidates - 1` captions of other items of the split, each drawn uniformly
 * (a random item other than the true one, without repeating an item while the split has enough, then one of its
 * captions uniformly) from an RNG stream keyed by (seed, sample); the candidates are ranked by the cosine between
 * CLIP's image embedding of the image and CLIP's text embedding of each caption. Reports the share of images whose
 * true caption ranks first (r_precision_top1) and among the first five (r_precision_top5); chance is 1/candidates
 * and 5/candidates. Text embeddings are cached per (item, caption), so the cost is bounded by the split, not by N. */
#include <ratfw/eval.h>
#include <ratfw/ratfw.h>

#include <math.h>
#include <string.h>

#define TAG_RPREC 0x5250524543000000ull /* "RPREC" */

static const char *const transforms[] = {"galip", "standard", NULL};

typedef struct {
  char *clip, *vocab, *transform;
  gint64 candidates;
} RpOptions;

static const RatArgSpec rp_args[] = {
    RAT_ARG_P(RpOptions, clip, "", "the CLIP: empty = the run's text-encoder CLIP (as released); or a pretrain_clip "
              "run directory, or a CLIP model.safetensors such as ViT-B/32"),
    RAT_ARG_P(RpOptions, vocab, "", "tokenizer of a CLIP given by path, when none lies beside its weights"),
    RAT_ARG_C(RpOptions, transform, "galip", transforms, "image transform: galip (§5.1, as released) or standard"),
    RAT_ARG_I(RpOptions, candidates, "100", 2, 10000, "captions ranked per image: the true one and candidates - 1 others"),
};

typedef struct {
  RatEvalClip *clip;
  GHashTable *cache; /* (item << 16 | caption) -> float[E], unit length */
  gint64 E, n, top1, top5;
} RpPriv;

static gboolean rp_build(RatModule *m, const RatBuildContext *ctx, GError **error) { return TRUE; }

static void rp_finalize(RatModule *m) {
  RpPriv *p = RAT_MODULE_PRIV(m, RpPriv);
  rat_eval_clip_free(p->clip);
  if (p->cache) g_hash_table_unref(p->cache);
}

static gboolean rp_begin(RatModule *m, RatEvalContext *ctx, RatMetricResult *res, GError **error) {
  const RpOptions *o = RAT_MODULE_OPTIONS(m, RpOptions);
  RpPriv *p = RAT_MODULE_PRIV(m, RpPriv);
  if (rat_dataset_count(ctx->dataset, ctx->split) < 2) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "r_precision needs at least 2 items in the split");
    return FALSE;
  }
  if (!(p->clip = rat_eval_clip_open(ctx, o->clip, o->vocab, error))) return FALSE;
  p->E = rat_clip_config(rat_eval_clip_model(p->clip))->embed_dim;
  p->cache = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_free);
  rat_metric_result_protocol_string(res, "clip", o->clip && *o->clip ? o->clip : "run");
  rat_metric_result_protocol_string(res, "weights", rat_eval_clip_path(p->clip));
  rat_metric_result_protocol_string(res, "weights_sha256", rat_eval_clip_sha256(p->clip));
  rat_metric_result_protocol_string(res, "transform", o->transform);
  rat_metric_result_protocol_int(res, "candidates", o->candidates);
  rat_metric_result_protocol_string(res, "negatives", "captions of other split items, uniform, seeded per sample");
  return TRUE;
}

static gint64 key_of(guint item, guint cap) { return (gint64)item << 16 | (gint64)cap; }

/* Encodes the captions of the (item, caption) keys not yet in the cache. */
static void fill_cache(RpPriv *p, RatEvalContext *ctx, GArray *keys) {
  GPtrArray *texts = g_ptr_array_new_with_free_func(g_free);
  GArray *todo = g_array_new(FALSE, FALSE, sizeof(gint64));
  for (guint i = 0; i < keys->len; i++) {
    gint64 k = g_array_index(keys, gint64, i);
    if (g_hash_table_contains(p->cache, &k)) continue;
    gboolean dup = FALSE;
    for (guint j = 0; j < todo->len && !dup; j++) dup = g_array_index(todo, gint64, j) == k;
    if (dup) continue;
    g_array_append_val(todo, k);
    g_ptr_array_add(texts, rat_dataset_caption(ctx->dataset, ctx->split, (guint)(k >> 16), (guint)(k & 0xffff)));
  }
  for (guint s = 0; s < todo->len; s += 256) {
    guint n = MIN(256u, todo->len - s);
    RatScope sc = rat_scope_push();
    RatTensor *e = rat_contiguous(rat_eval_clip_encode_texts(p->clip, (const char *const *)texts->pdata + s, n));
    const float *d = rat_tensor_data(e);
    for (guint i = 0; i < n; i++) {
      float *v = g_new(float, p->E);
      double nn = 0;
      for (gint64 k = 0; k < p->E; k++) nn += (double)d[i * p->E + k] * d[i * p->E + k];
      for (gint64 k = 0; k < p->E; k++) v[k] = (float)(d[i * p->E + k] / sqrt(nn));
      g_hash_table_insert(p->cache, g_memdup2(&g_array_index(todo, gint64, s + i), sizeof(gint64)), v);
    }
    rat_scope_pop(sc);
  }
  g_array_unref(todo);
  g_ptr_array_unref(texts);
}

static gboolean rp_accumulate(RatModule *m, RatEvalContext *ctx, const RatMetricBatch *b, GError **error) {
  const RpOptions *o = RAT_MODULE_OPTIONS(m, RpOptions);
  RpPriv *p = RAT_MODULE_PRIV(m, RpPriv);
  guint K = (guint)o->candidates, items = rat_dataset_count(ctx->dataset, ctx->split);
  gboolean distinct = items - 1 >= K - 1;
  GArray *keys = g_array_new(FALSE, FALSE, sizeof(gint64)); /* [n, K] */
  for (guint i = 0; i < b->n; i++) {
    RatRng r;
    rat_rng_set_state(&r, ctx->seed ^ TAG_RPREC, (guint64)(b->first + i) << 16);
    gint64 k0 = key_of(b->items[i], b->caption_ids[i]);
    g_array_append_val(keys, k0);
    guint *picked = g_new(guint, K);
    for (guint c = 1; c < K; c++) {
      guint it;
      gboolean again;
      do {
        it = (guint)rat_rng_below(&r, items - 1);
        if (it >= b->items[i]) it++; /* any item but the true one */
        again = FALSE;
        for (guint q = 1; distinct && q < c; q++) again |= picked[q] == it;
      } while (again);
      picked[c] = it;
      guint cap = (guint)rat_rng_below(&r, rat_dataset_n_captions(ctx->dataset, ctx->split, it));
      gint64 k = key_of(it, cap);
      g_array_append_val(keys, k);
    }
    g_free(picked);
  }
  fill_cache(p, ctx, keys);
  RatTensor *img = rat_contiguous(rat_eval_clip_encode_images(p->clip, b->images, !strcmp(o->transform, "standard")));
  const float *ip = rat_tensor_data(img);
  float *cand = g_new(float, (gsize)K * p->E);
  for (guint i = 0; i < b->n; i++) {
    for (guint c = 0; c < K; c++)
      memcpy(cand + (gsize)c * p->E, g_hash_table_lookup(p->cache, &g_array_index(keys, gint64, (gsize)i * K + c)),
             sizeof(float) * (gsize)p->E);
    guint rank = rat_eval_rank_first(ip + (gsize)i * p->E, cand, K, p->E);
    p->top1 += rank == 1;
    p->top5 += rank <= 5;
    p->n++;
  }
  g_free(cand);
  g_array_unref(keys);
  return TRUE;
}

static gboolean rp_finish(RatModule *m, RatEvalContext *ctx, RatMetricResult *res, GError **error) {
  RpPriv *p = RAT_MODULE_PRIV(m, RpPriv);
  double n = (double)MAX(p->n, 1);
  rat_metric_result_value(res, "r_precision_top1", p->top1 / n, TRUE);
  rat_metric_result_value(res, "r_precision_top5", p->top5 / n, TRUE);
  return TRUE;
}

static gboolean rp_by_default(RatEvalContext *ctx) { return ctx->gan && ctx->gan->gctx.clip != NULL; }

static const RatMetricIface rp_iface = {.begin = rp_begin, .accumulate = rp_accumulate, .finish = rp_finish,
                                        .by_default = rp_by_default};

static const RatModuleType rp_type = {
    .struct_size = sizeof(RatModuleType),
    .name = "r_precision",
    .kind = RAT_KIND_METRIC,
    .doc = "R-precision: the share of generated images whose true caption a CLIP ranks first (top1) or in the first "
           "five (top5) among it and 99 random captions of other items of the split. Higher is better.",
    .args = rp_args,
    .n_args = G_N_ELEMENTS(rp_args),
    .options_size = sizeof(RpOptions),
    .priv_size = sizeof(RpPriv),
    .build = rp_build,
    .finalize = rp_finalize,
    .iface = &rp_iface,
};

static gboolean rp_init(RatRegistry *reg, GError **error) { return rat_registry_add_type(reg, &rp_type, error); }

RAT_PLUGIN_DEFINE("r_precision", "0.1.0", "MIT", "R-precision metric (CLIP ranking)", rp_init)
