/* Evaluating a GAN (eval.h), reference §9.1 and §9.3: N images generated in micro-batches, sample j from the caption
 * of split item (j mod items) drawn uniformly among the item's captions and its own noise z_j ~ N(0, I) (or DF-GAN's
 * truncated noise), both from counter-based RNG streams keyed by (seed, j), so a sample does not depend on the
 * batch size (except through a batch-dependent generator such as RATLIP's batch-as-sequence RAT); G in eval mode
 * unless asked otherwise; images clamped to [-1, 1] with NaN -> -1 before any metric sees them. Every metric
 * accumulates per batch; results.json records the values and the protocol that produced them. */
#include "config.h"

#include <ratfw/error.h>
#include <ratfw/eval.h>
#include <ratfw/io.h>
#include <ratfw/ops.h>
#include <ratfw/version.h>

#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#define TAG_CAPTION 0x4341505449000000ull /* "CAPTI" */
#define TAG_NOISE 0x4e4f495345000000ull   /* "NOISE" */

/* ---- the eval: section --------------------------------------------------------------------------------------- */

static const char *const split_choices[] = {"test", "train", NULL};
static const char *const mode_choices[] = {"eval", "train", NULL};

const RatArgSpec rat_eval_args[] = {
    RAT_ARG_S(RatEvalOptions, metrics, "auto",
              "metrics to compute, comma-separated (fid,clip_score,r_precision,shapes_accuracy), or auto: every "
              "installed metric that applies (FID, CLIP score and R-precision with a CLIP; shapes accuracy on shapes)"),
    RAT_ARG_I(RatEvalOptions, samples, "2000", 1, 1e9, "images to generate (the papers: about 30,000)"),
    RAT_ARG_I(RatEvalOptions, seed, "0", 0, RAT_ARG_NO_LIMIT, "seed of the captions and noises"),
    RAT_ARG_I(RatEvalOptions, batch, "50", 1, 4096,
              "images generated at once (memory; a batch-dependent generator also depends on it)"),
    RAT_ARG_C(RatEvalOptions, split, "test", split_choices, "split whose captions condition the images"),
    RAT_ARG_C(RatEvalOptions, mode, "eval", mode_choices,
              "normalisation of G: eval (running statistics) or train (batch statistics)"),
    RAT_ARG_B(RatEvalOptions, ema, "true", "use the EMA weights of G when the checkpoint has them"),
    RAT_ARG_D(RatEvalOptions, truncation, "0", 0, 100,
              "0: z ~ N(0, I) (GALIP/RATLIP); t > 0: z = truncnorm(-2, 2) * t (DF-GAN's test-time noise, §9.3)"),
};
const guint rat_eval_n_args = G_N_ELEMENTS(rat_eval_args);

gboolean rat_eval_is_metric_key(RatRegistry *reg, const char *key) {
  const RatModuleType *t = rat_registry_lookup(reg, key);
  return t && t->kind == RAT_KIND_METRIC;
}

RatConfigNode *rat_eval_section_plain(RatRegistry *reg, RatConfigNode *sec) {
  if (!sec || rat_config_is_null(sec)) return NULL;
  if (sec->kind != RAT_NODE_MAP) return rat_config_node_ref(sec);
  RatConfigNode *n = rat_config_parse_string("{}", -1, "<eval>", NULL);
  n->file = sec->file;
  n->line = sec->line;
  n->column = sec->column;
  for (guint i = 0; i < sec->keys->len; i++) {
    RatConfigNode *k = sec->keys->pdata[i];
    if (k->kind == RAT_NODE_SCALAR && rat_eval_is_metric_key(reg, k->value)) continue;
    g_ptr_array_add(n->keys, rat_config_node_ref(k));
    g_ptr_array_add(n->values, rat_config_node_ref(sec->values->pdata[i]));
  }
  return n;
}

gboolean rat_eval_options_load(RatRegistry *reg, RatExperiment *exp, RatEvalOptions *o, GError **error) {
  memset(o, 0, sizeof *o);
  RatConfigNode *plain = rat_eval_section_plain(reg, exp && exp->eval ? exp->eval->node : NULL);
  gboolean ok = rat_args_parse(reg, rat_eval_args, rat_eval_n_args, plain, o, error);
  if (plain) rat_config_node_unref(plain);
  return ok;
}

void rat_eval_options_clear(RatEvalOptions *o) { rat_args_clear(rat_eval_args, rat_eval_n_args, o); }

/* ---- metric results ------------------------------------------------------------------------------------------ */

typedef struct {
  char *key;
  double value;
  gboolean higher;
} Value;

struct _RatMetricResult {
  GArray *values;       /* Value */
  JsonObject *protocol; /* this metric's protocol entries */
};

RatMetricResult *rat_metric_result_new(void) {
  RatMetricResult *r = g_new0(RatMetricResult, 1);
  r->values = g_array_new(FALSE, FALSE, sizeof(Value));
  r->protocol = json_object_new();
  return r;
}

void rat_metric_result_free(RatMetricResult *r) {
  if (!r) return;
  for (guint i = 0; i < r->values->len; i++) g_free(g_array_index(r->values, Value, i).key);
  g_array_unref(r->values);
  json_object_unref(r->protocol);
  g_free(r);
}

gboolean rat_metric_result_get(const RatMetricResult *r, const char *key, double *value) {
  for (guint i = 0; i < r->values->len; i++)
    if (!strcmp(g_array_index(r->values, Value, i).key, key)) {
      *value = g_array_index(r->values, Value, i).value;
      return TRUE;
    }
  return FALSE;
}

void rat_metric_result_value(RatMetricResult *r, const char *key, double value, gboolean higher_is_better) {
  Value v = {g_strdup(key), value, higher_is_better};
  g_array_append_val(r->values, v);
}
void rat_metric_result_protocol_string(RatMetricResult *r, const char *key, const char *value) {
  json_object_set_string_member(r->protocol, key, value ? value : "");
}
void rat_metric_result_protocol_int(RatMetricResult *r, const char *key, gint64 value) {
  json_object_set_int_member(r->protocol, key, value);
}
void rat_metric_result_protocol_double(RatMetricResult *r, const char *key, double value) {
  if (isfinite(value)) json_object_set_double_member(r->protocol, key, value);
  else json_object_set_null_member(r->protocol, key);
}
void rat_metric_result_protocol_bool(RatMetricResult *r, const char *key, gboolean value) {
  json_object_set_boolean_member(r->protocol, key, value);
}

/* ---- results ----------------------------------------------------------------------------------------------- */

struct _RatEvalResults {
  GArray *values; /* Value, in metric order */
  char *json, *hash;
};

void rat_eval_results_free(RatEvalResults *r) {
  if (!r) return;
  for (guint i = 0; i < r->values->len; i++) g_free(g_array_index(r->values, Value, i).key);
  g_array_unref(r->values);
  g_free(r->json);
  g_free(r->hash);
  g_free(r);
}

guint rat_eval_results_count(const RatEvalResults *r) { return r->values->len; }
const char *rat_eval_results_name(const RatEvalResults *r, guint i) { return g_array_index(r->values, Value, i).key; }
double rat_eval_results_value(const RatEvalResults *r, guint i) { return g_array_index(r->values, Value, i).value; }
gboolean rat_eval_results_higher_is_better(const RatEvalResults *r, guint i) {
  return g_array_index(r->values, Value, i).higher;
}
const char *rat_eval_results_protocol_hash(const RatEvalResults *r) { return r->hash; }
const char *rat_eval_results_json(const RatEvalResults *r) { return r->json; }

gboolean rat_eval_results_write(const RatEvalResults *r, const char *path, GError **error) {
  char *dir = g_path_get_dirname(path);
  g_mkdir_with_parents(dir, 0755);
  g_free(dir);
  return rat_file_write_atomic(path, r->json, strlen(r->json), error);
}

/* A copy of @node with every object's members sorted by name (the canonical form the protocol hash is taken of). */
static JsonNode *canonical(JsonNode *node) {
  if (JSON_NODE_HOLDS_OBJECT(node)) {
    JsonObject *o = json_node_get_object(node), *c = json_object_new();
    GList *names = g_list_sort(json_object_get_members(o), (GCompareFunc)strcmp);
    for (GList *l = names; l; l = l->next) json_object_set_member(c, l->data, canonical(json_object_get_member(o, l->data)));
    g_list_free(names);
    JsonNode *n = json_node_new(JSON_NODE_OBJECT);
    json_node_take_object(n, c);
    return n;
  }
  if (JSON_NODE_HOLDS_ARRAY(node)) {
    JsonArray *a = json_node_get_array(node), *c = json_array_new();
    for (guint i = 0; i < json_array_get_length(a); i++) json_array_add_element(c, canonical(json_array_get_element(a, i)));
    JsonNode *n = json_node_new(JSON_NODE_ARRAY);
    json_node_take_array(n, c);
    return n;
  }
  return json_node_copy(node);
}

static char *node_to_string(JsonNode *n, gboolean pretty) {
  JsonGenerator *g = json_generator_new();
  json_generator_set_pretty(g, pretty);
  json_generator_set_root(g, n);
  char *s = json_generator_to_data(g, NULL);
  g_object_unref(g);
  return s;
}

/* ---- the evaluation ------------------------------------------------------------------------------------------ */

typedef struct {
  char *name;
  RatModule *m;
  RatMetricResult *res;
} Metric;

static gboolean resolve_metrics(RatRegistry *reg, const RatEvalOptions *o, RatEvalContext *ctx, GPtrArray *names,
                                GError **error) {
  if (!strcmp(g_strstrip(o->metrics), "auto")) {
    GPtrArray *types = rat_registry_types(reg, RAT_KIND_METRIC);
    for (guint i = 0; i < types->len; i++) {
      const RatModuleType *t = types->pdata[i];
      const RatMetricIface *mi = t->iface;
      if (mi && mi->by_default && mi->by_default(ctx)) g_ptr_array_add(names, g_strdup(t->name));
    }
    g_ptr_array_unref(types);
    if (!names->len) {
      g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "metrics: auto found no metric that applies (are the metric "
                  "plugins installed? `ratfw plugins` lists them); name them with --metrics");
      return FALSE;
    }
    return TRUE;
  }
  char **parts = g_strsplit(o->metrics, ",", -1);
  for (char **p = parts; *p; p++) {
    char *s = g_strstrip(*p);
    if (!*s) continue;
    gboolean dup = FALSE;
    for (guint i = 0; i < names->len; i++) dup |= !strcmp(names->pdata[i], s);
    if (!dup) g_ptr_array_add(names, g_strdup(s));
  }
  g_strfreev(parts);
  if (!names->len) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "metrics: the list is empty");
    return FALSE;
  }
  return TRUE;
}

static void metric_free(gpointer p) {
  Metric *m = p;
  if (m->m) rat_module_free(m->m);
  rat_metric_result_free(m->res);
  g_free(m->name);
  g_free(m);
}

/* Samples [first, first + n): items, captions, tokens, sentences, noise, images. Scope-owned tensors; the caption
 * strings go to @captions (g_free each). */
static RatTensor *generate(RatEvalContext *ctx, const RatEvalOptions *o, gint64 first, guint n, guint *items,
                           guint *caps, char **captions, RatTensor **tokens, RatTensor **sentences) {
  guint n_items = rat_dataset_count(ctx->dataset, ctx->split);
  gint64 zd = ctx->gan->z_dim;
  RatTensor *z = rat_empty(RAT_SHAPE(n, zd));
  float *zp = rat_tensor_data(z);
  for (guint i = 0; i < n; i++) {
    guint64 j = (guint64)(first + i);
    items[i] = (guint)(j % n_items);
    RatRng r;
    rat_rng_set_state(&r, ctx->seed ^ TAG_CAPTION, j << 8);
    caps[i] = (guint)rat_rng_below(&r, rat_dataset_n_captions(ctx->dataset, ctx->split, items[i]));
    captions[i] = rat_dataset_caption(ctx->dataset, ctx->split, items[i], caps[i]);
    RatTensor *row = rat_empty(RAT_SHAPE(1, zd));
    rat_rng_set_state(&r, ctx->seed ^ TAG_NOISE, j << 20);
    if (o->truncation > 0) rat_rng_truncated_normal_(&r, row, 2.0f);
    else rat_rng_fill_normal_(&r, row, 0.0f, 1.0f);
    const float *rp = rat_tensor_data(row);
    for (gint64 k = 0; k < zd; k++) zp[i * zd + k] = o->truncation > 0 ? rp[k] * (float)o->truncation : rp[k];
  }
  *tokens = rat_tokenizer_encode_batch(ctx->gan->tok, (const char *const *)captions, n, NULL);
  *sentences = rat_gan_encode_tokens(ctx->gan, *tokens);
  RatTensor *img = rat_gan_generate(ctx->gan, *sentences, z, !strcmp(o->mode, "train"), o->ema);
  return rat_contiguous(rat_clamp(rat_nan_to_num(img, -1.0f, 1.0f, -1.0f), -1.0f, 1.0f));
}

RatEvalResults *rat_eval_gan(RatRegistry *reg, RatExperiment *exp, RatGan *gan, RatModule *dataset,
                             const RatEvalOptions *o, const char *run_dir, const char *checkpoint, gint64 step,
                             gboolean ema_used, const char *out_dir, RatRunContext *run, GError **error) {
  gint64 t0 = g_get_monotonic_time();
  if (!gan->tok) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "the text encoder has no tokenizer: evaluation needs captions");
    return NULL;
  }
  RatEvalContext ctx = {.registry = reg, .exp = exp, .gan = gan, .dataset = dataset,
                        .split = !strcmp(o->split, "train") ? RAT_SPLIT_TRAIN : RAT_SPLIT_TEST,
                        .samples = o->samples, .batch = o->batch, .seed = (guint64)o->seed,
                        .image_size = gan->image_size, .out_dir = out_dir, .run = run};
  guint n_items = rat_dataset_count(dataset, ctx.split);
  if (n_items == 0) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "the %s split of dataset %s is empty: evaluate on the other one "
                "(--set eval.split=%s)", o->split, dataset->type->name, ctx.split == RAT_SPLIT_TEST ? "train" : "test");
    return NULL;
  }
  GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
  GPtrArray *metrics = g_ptr_array_new_with_free_func(metric_free);
  RatEvalResults *out = NULL;
  gboolean ok = resolve_metrics(reg, o, &ctx, names, error);
  RatConfigNode *sec = exp && exp->eval ? exp->eval->node : NULL;
  for (guint i = 0; ok && i < names->len; i++) {
    Metric *mt = g_new0(Metric, 1);
    mt->name = g_strdup(names->pdata[i]);
    mt->res = rat_metric_result_new();
    g_ptr_array_add(metrics, mt);
    RatConfigNode *node = sec ? rat_config_get(sec, mt->name) : NULL;
    RatModuleSpec spec = {.type_name = mt->name, .node = node && !rat_config_is_null(node) ? node : NULL};
    char *path = g_strdup_printf("eval.%s", mt->name);
    RatBuildContext b = exp ? exp->sizes : (RatBuildContext){0};
    b.user = &ctx;
    mt->m = rat_module_build(reg, &spec, path, RAT_KIND_METRIC, &b, error);
    g_free(path);
    if (!mt->m) ok = FALSE;
    else if (!RAT_METRIC_IFACE(mt->m) || !RAT_METRIC_IFACE(mt->m)->accumulate || !RAT_METRIC_IFACE(mt->m)->finish) {
      g_set_error(error, RAT_ERROR, RAT_ERROR_UNSUPPORTED, "metric type '%s' has no accumulate/finish functions", mt->name);
      ok = FALSE;
    }
  }
  for (guint i = 0; ok && i < metrics->len; i++) {
    Metric *mt = metrics->pdata[i];
    const RatMetricIface *mi = RAT_METRIC_IFACE(mt->m);
    if (mi->begin && !mi->begin(mt->m, &ctx, mt->res, error)) ok = FALSE;
  }
  if (!ok) goto done;

  if (run) rat_run_progress_start(run, "eval", o->samples, 0);
  for (gint64 first = 0; ok && first < o->samples; first += o->batch) {
    guint n = (guint)MIN(o->batch, o->samples - first);
    RatScope sc = rat_scope_push();
    guint *items = g_new(guint, n), *caps = g_new(guint, n);
    char **captions = g_new0(char *, n + 1);
    RatTensor *tokens, *sentences;
    RatTensor *images = generate(&ctx, o, first, n, items, caps, captions, &tokens, &sentences);
    RatMetricBatch b = {.n = n, .first = first, .images = images, .captions = (const char *const *)captions,
                        .tokens = tokens, .sentences = sentences, .items = items, .caption_ids = caps};
    for (guint i = 0; ok && i < metrics->len; i++) {
      Metric *mt = metrics->pdata[i];
      ok = RAT_METRIC_IFACE(mt->m)->accumulate(mt->m, &ctx, &b, error);
    }
    g_strfreev(captions);
    g_free(items);
    g_free(caps);
    rat_scope_pop(sc);
    if (run) rat_run_progress_update(run, first + n);
  }
  if (run) rat_run_progress_end(run);
  for (guint i = 0; ok && i < metrics->len; i++) {
    Metric *mt = metrics->pdata[i];
    RatScope sc = rat_scope_push();
    ok = RAT_METRIC_IFACE(mt->m)->finish(mt->m, &ctx, mt->res, error);
    rat_scope_pop(sc);
  }
  if (!ok) goto done;

  /* results.json */
  out = g_new0(RatEvalResults, 1);
  out->values = g_array_new(FALSE, FALSE, sizeof(Value));
  JsonObject *root = json_object_new(), *vals = json_object_new(), *hib = json_object_new(), *proto = json_object_new(),
             *pm = json_object_new();
  json_object_set_string_member(root, "format", "ratfw-eval/1");
  json_object_set_string_member(root, "ratfw_version", RATFW_VERSION);
  if (run_dir) json_object_set_string_member(root, "run", run_dir);
  else json_object_set_null_member(root, "run");
  if (checkpoint) json_object_set_string_member(root, "checkpoint", checkpoint);
  else json_object_set_null_member(root, "checkpoint");
  json_object_set_int_member(root, "step", step);
  for (guint i = 0; i < metrics->len; i++) {
    Metric *mt = metrics->pdata[i];
    for (guint k = 0; k < mt->res->values->len; k++) {
      Value v = g_array_index(mt->res->values, Value, k);
      if (isfinite(v.value)) json_object_set_double_member(vals, v.key, v.value);
      else json_object_set_null_member(vals, v.key);
      json_object_set_boolean_member(hib, v.key, v.higher);
      Value copy = {g_strdup(v.key), v.value, v.higher};
      g_array_append_val(out->values, copy);
    }
    json_object_set_object_member(pm, mt->name, json_object_ref(mt->res->protocol));
  }
  json_object_set_object_member(root, "metrics", vals);
  json_object_set_object_member(root, "higher_is_better", hib);
  json_object_set_int_member(proto, "samples", o->samples);
  json_object_set_int_member(proto, "seed", o->seed);
  json_object_set_int_member(proto, "batch", o->batch);
  json_object_set_string_member(proto, "split", o->split);
  json_object_set_string_member(proto, "mode", o->mode);
  json_object_set_boolean_member(proto, "ema", ema_used || (o->ema && gan->ema));
  json_object_set_string_member(proto, "noise", o->truncation > 0 ? "truncnorm(-2, 2) * truncation" : "N(0, I)");
  if (o->truncation > 0) json_object_set_double_member(proto, "truncation", o->truncation);
  json_object_set_string_member(proto, "sampling", "sample j: caption of split item j mod items, uniform among its "
                                "captions; noise and caption from RNG streams keyed by (seed, j)");
  json_object_set_string_member(proto, "images", "G output clamped to [-1, 1], NaN -> -1 (reference §9.1)");
  json_object_set_string_member(proto, "dataset", dataset->type->name);
  json_object_set_int_member(proto, "split_items", n_items);
  json_object_set_int_member(proto, "image_size", gan->image_size);
  json_object_set_string_member(proto, "generator", gan->gen->type->name);
  json_object_set_object_member(proto, "metrics", pm);
  JsonNode *pnode = json_node_new(JSON_NODE_OBJECT);
  json_node_set_object(pnode, proto);
  JsonNode *canon = canonical(pnode);
  char *ctext = node_to_string(canon, FALSE);
  out->hash = g_compute_checksum_for_string(G_CHECKSUM_SHA256, ctext, -1);
  g_free(ctext);
  json_node_unref(canon);
  json_node_unref(pnode);
  json_object_set_object_member(root, "protocol", proto);
  json_object_set_string_member(root, "protocol_hash", out->hash);
  json_object_set_double_member(root, "wall_seconds", (double)(g_get_monotonic_time() - t0) / 1e6);
  JsonNode *rn = json_node_new(JSON_NODE_OBJECT);
  json_node_take_object(rn, root);
  char *text = node_to_string(rn, TRUE);
  out->json = g_strconcat(text, "\n", NULL);
  g_free(text);
  json_node_unref(rn);
done:
  g_ptr_array_unref(metrics);
  g_ptr_array_unref(names);
  return out;
}

/* ---- opening a run ----------------------------------------------------------------------------------------- */

void rat_eval_run_free(RatEvalRun *r) {
  if (!r) return;
  if (r->dataset) rat_module_free(r->dataset);
  rat_gan_free(r->gan);
  if (r->exp) rat_experiment_free(r->exp);
  g_free(r->run_dir);
  g_free(r->checkpoint);
  g_free(r->out_dir);
  g_free(r);
}

RatEvalRun *rat_eval_run_open(RatRegistry *reg, const char *path, const char *experiment, const char *const *sets,
                              GError **error) {
  RatEvalRun *r = g_new0(RatEvalRun, 1);
  char *abs = g_canonicalize_filename(path, NULL), *exp_path = NULL;
  if (g_file_test(abs, G_FILE_TEST_IS_DIR)) {
    r->run_dir = g_strdup(abs);
    r->checkpoint = g_build_filename(abs, "checkpoint.safetensors", NULL);
    exp_path = experiment ? g_strdup(experiment) : g_build_filename(abs, "resolved.yaml", NULL);
  } else if (g_file_test(abs, G_FILE_TEST_IS_REGULAR)) {
    r->run_dir = g_path_get_dirname(abs);
    r->checkpoint = g_strdup(abs);
    exp_path = experiment ? g_strdup(experiment) : g_build_filename(r->run_dir, "resolved.yaml", NULL);
  } else {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "%s: no such run directory or checkpoint file", path);
    goto fail;
  }
  r->out_dir = g_build_filename(r->run_dir, "eval", NULL);
  if (!g_file_test(r->checkpoint, G_FILE_TEST_IS_REGULAR)) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "%s: no checkpoint (has the run written one yet? see "
                "checkpoint_every)", r->checkpoint);
    goto fail;
  }
  if (!g_file_test(exp_path, G_FILE_TEST_IS_REGULAR)) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "%s does not exist: give the experiment describing the model "
                "(--experiment FILE.yaml)", exp_path);
    goto fail;
  }
  if (!(r->exp = rat_experiment_load(reg, exp_path, sets, error))) goto fail;
  if (!r->exp->data) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "%s: no `data:` section: evaluation takes its captions from the "
                "dataset", exp_path);
    goto fail;
  }
  if (!(r->dataset = rat_dataset_build(reg, r->exp->data, error))) goto fail;
  if (!(r->gan = rat_gan_build(reg, r->exp, 0, FALSE, FALSE, error))) goto fail;
  g_free(abs);
  g_free(exp_path);
  return r;
fail:
  g_free(abs);
  g_free(exp_path);
  rat_eval_run_free(r);
  return NULL;
}

gint64 rat_eval_run_load(RatEvalRun *r, gboolean ema, gboolean *ema_used, GError **error) {
  if (ema_used) {
    RatSafetensors *st = rat_safetensors_open(r->checkpoint, error);
    if (!st) return -1;
    *ema_used = ema && rat_safetensors_has(st, "ema.generator");
    rat_safetensors_close(st);
  }
  return rat_gan_load_weights(r->gan, r->checkpoint, ema, error);
}
