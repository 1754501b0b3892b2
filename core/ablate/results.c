/* The results of a sweep as the writers read them (collected from the run directories, or built by a test), the
 * statistics of each (variant, metric) over seeds with Welch's t-test against the baseline, and the tables:
 * Markdown, CSV (one row per variant and metric) and LaTeX (docs/ablations.md, "Reading the table"). */
#include "config.h"

#include <ratfw/ablate.h>
#include <ratfw/error.h>
#include <ratfw/io.h>
#include <ratfw/run.h>

#include "ablate-private.h"

#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#define RAT_ABLATE_ALPHA 0.05 /* "larger than the seed-to-seed noise" when Welch's p < this */

/* ---- building ------------------------------------------------------------------------------------------------ */

RatAblateRecord *rat_ablate_record_new(guint variant, gint64 seed, const char *state) {
  RatAblateRecord *rec = g_new0(RatAblateRecord, 1);
  rec->variant = variant;
  rec->seed = seed;
  rec->state = g_strdup(state);
  return rec;
}

void rat_ablate_record_set_metric(RatAblateRecord *rec, const char *name, double value) {
  if (!rec->metrics) rec->metrics = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  double *v = g_new(double, 1);
  *v = value;
  g_hash_table_replace(rec->metrics, g_strdup(name), v);
}

static void record_free(RatAblateRecord *rec) {
  g_free(rec->run);
  g_free(rec->state);
  g_free(rec->error);
  if (rec->metrics) g_hash_table_unref(rec->metrics);
  g_free(rec->protocol_hash);
  g_free(rec->samples_png);
  g_free(rec->losses_png);
  g_free(rec);
}

RatAblateResults *rat_ablate_results_new(const char *title, guint baseline) {
  RatAblateResults *r = g_new0(RatAblateResults, 1);
  r->title = g_strdup(title);
  r->baseline = baseline;
  r->variants = g_ptr_array_new_with_free_func(g_free);
  r->metrics = g_ptr_array_new_with_free_func(g_free);
  r->higher_is_better = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  r->records = g_ptr_array_new_with_free_func((GDestroyNotify)record_free);
  r->variant_yaml = g_ptr_array_new_with_free_func(g_free);
  r->steps = g_array_new(FALSE, TRUE, sizeof(gint64));
  return r;
}

void rat_ablate_results_free(RatAblateResults *r) {
  if (!r) return;
  g_free(r->title);
  g_free(r->description);
  g_ptr_array_unref(r->variants);
  g_ptr_array_unref(r->metrics);
  g_hash_table_unref(r->higher_is_better);
  g_ptr_array_unref(r->records);
  g_free(r->sweep_path);
  g_free(r->base_path);
  g_free(r->base_yaml);
  g_free(r->common_yaml);
  g_free(r->eval_yaml);
  g_free(r->seeds);
  g_free(r->ratfw_version);
  g_free(r->git_revision);
  g_ptr_array_unref(r->variant_yaml);
  g_array_unref(r->steps);
  g_free(r);
}

guint rat_ablate_results_add_variant(RatAblateResults *r, const char *name) {
  g_ptr_array_add(r->variants, g_strdup(name));
  gint64 zero = 0;
  g_array_append_val(r->steps, zero);
  return r->variants->len - 1;
}

static int metric_index(const RatAblateResults *r, const char *name) {
  for (guint i = 0; i < r->metrics->len; i++)
    if (!strcmp(r->metrics->pdata[i], name)) return (int)i;
  return -1;
}

static int cmp_str(gconstpointer a, gconstpointer b) { return strcmp(*(char *const *)a, *(char *const *)b); }

void rat_ablate_results_add(RatAblateResults *r, RatAblateRecord *rec, GHashTable *higher_is_better) {
  g_ptr_array_add(r->records, rec);
  if (!rec->metrics) return;
  /* metric names in a stable order: each record's new names sorted, after the known ones */
  GPtrArray *names = g_ptr_array_new();
  GHashTableIter it;
  gpointer k;
  g_hash_table_iter_init(&it, rec->metrics);
  while (g_hash_table_iter_next(&it, &k, NULL))
    if (metric_index(r, k) < 0) g_ptr_array_add(names, k);
  g_ptr_array_sort(names, cmp_str);
  for (guint i = 0; i < names->len; i++) g_ptr_array_add(r->metrics, g_strdup(names->pdata[i]));
  g_ptr_array_free(names, TRUE);
  if (higher_is_better) {
    g_hash_table_iter_init(&it, higher_is_better);
    gpointer v;
    while (g_hash_table_iter_next(&it, &k, &v))
      if (!g_hash_table_contains(r->higher_is_better, k)) g_hash_table_insert(r->higher_is_better, g_strdup(k), v);
  }
}

/* ---- statistics ---------------------------------------------------------------------------------------------- */

/* The values of metric @m over the evaluated seeds of variant @v. */
static GArray *values_of(const RatAblateResults *r, guint v, const char *metric) {
  GArray *a = g_array_new(FALSE, FALSE, sizeof(double));
  for (guint i = 0; i < r->records->len; i++) {
    const RatAblateRecord *rec = r->records->pdata[i];
    if (rec->variant != v || !rec->metrics) continue;
    const double *x = g_hash_table_lookup(rec->metrics, metric);
    if (x && isfinite(*x)) g_array_append_val(a, *x);
  }
  return a;
}

static int direction(const RatAblateResults *r, const char *metric) {
  return GPOINTER_TO_INT(g_hash_table_lookup(r->higher_is_better, metric)); /* 1 higher, 2 lower, 0 unknown */
}

RatAblateSummary rat_ablate_summary(const RatAblateResults *r, guint v, guint m) {
  const char *metric = r->metrics->pdata[m];
  RatAblateSummary s = {.mean = NAN, .std = NAN, .delta = NAN, .t = NAN, .df = NAN, .p = NAN};
  GArray *a = values_of(r, v, metric);
  s.n = a->len;
  if (a->len) {
    s.mean = rat_stats_mean((double *)a->data, a->len);
    s.std = rat_stats_std((double *)a->data, a->len);
  }
  GArray *b = values_of(r, r->baseline, metric);
  if (a->len && b->len) s.delta = s.mean - rat_stats_mean((double *)b->data, b->len);
  if (v != r->baseline) rat_stats_welch((double *)a->data, a->len, (double *)b->data, b->len, &s.t, &s.df, &s.p);
  g_array_unref(b);
  g_array_unref(a);
  /* best: the highest (or lowest) mean of the variants with a value; ties all marked */
  int dir = direction(r, metric);
  if (s.n && dir) {
    s.best = TRUE;
    for (guint w = 0; w < r->variants->len && s.best; w++) {
      GArray *c = values_of(r, w, metric);
      if (c->len) {
        double mw = rat_stats_mean((double *)c->data, c->len);
        if (dir == 1 ? mw > s.mean : mw < s.mean) s.best = FALSE;
      }
      g_array_unref(c);
    }
  }
  return s;
}

/* ---- number formatting --------------------------------------------------------------------------------------- */

/* Decimals that show @std to two significant digits (4 significant digits of @mean without a spread). */
static int decimals_for(double mean, double std) {
  double ref = isfinite(std) && std > 0 ? std : fabs(mean);
  int d;
  if (!(ref > 0) || !isfinite(ref)) d = 3;
  else d = (isfinite(std) && std > 0 ? 1 : 3) - (int)floor(log10(ref));
  return CLAMP(d, 0, 6);
}

static char *fmt_num(double v, int decimals) {
  if (!isfinite(v)) return g_strdup("n/a");
  char *s = g_strdup_printf("%.*f", decimals, v);
  if (!strcmp(s, "-0") || (s[0] == '-' && strspn(s + 1, "0.") == strlen(s + 1))) memmove(s, s + 1, strlen(s));
  return s;
}

static char *fmt_signed(double v, int decimals) {
  char *n = fmt_num(v, decimals);
  if (!isfinite(v) || n[0] == '-' || !strcmp(n, "n/a")) return n;
  char *s = g_strconcat("+", n, NULL);
  g_free(n);
  return s;
}

static char *fmt_p(double p) {
  if (!isfinite(p)) return g_strdup("n/a");
  if (p < 0.001) return g_strdup("p < 0.001");
  return g_strdup_printf("p = %.3f", p);
}

/* "0.412 ± 0.015" (or "0.412" from one seed), in the separator @pm. */
char *rat_ablate_fmt_cell(const RatAblateSummary *s, const char *pm) {
  if (!s->n) return g_strdup("n/a");
  int d = decimals_for(s->mean, s->std);
  char *m = fmt_num(s->mean, d);
  if (!isfinite(s->std)) return m;
  char *sd = fmt_num(s->std, d);
  char *c = g_strdup_printf("%s%s%s", m, pm, sd);
  g_free(m);
  g_free(sd);
  return c;
}

static gboolean differs(const RatAblateSummary *s) { return isfinite(s->p) && s->p < RAT_ABLATE_ALPHA; }

/* The comparison with the baseline in words: "+0.089, p = 0.004: larger than noise". */
char *rat_ablate_fmt_compare(const RatAblateResults *r, guint v, const RatAblateSummary *s) {
  if (v == r->baseline) return g_strdup("baseline");
  if (!s->n) return g_strdup("n/a");
  int d = decimals_for(s->mean, s->std);
  char *delta = fmt_signed(s->delta, d);
  char *out;
  if (isfinite(s->p)) {
    char *p = fmt_p(s->p);
    out = g_strdup_printf("%s, %s: %s", delta, p, differs(s) ? "larger than noise" : "within noise");
    g_free(p);
  } else {
    out = g_strdup_printf("%s, n/a (%s)", delta, s->n < 2 ? "1 seed" : "baseline has < 2 seeds or no spread");
  }
  g_free(delta);
  return out;
}

static const char *arrow(const RatAblateResults *r, const char *metric) {
  int d = direction(r, metric);
  return d == 1 ? " ↑" : d == 2 ? " ↓" : "";
}

/* "3", or "2 of 3 (1 failed)" */
char *rat_ablate_seeds_cell(const RatAblateResults *r, guint v) {
  guint total = 0, evaluated = 0, failed = 0;
  for (guint i = 0; i < r->records->len; i++) {
    const RatAblateRecord *rec = r->records->pdata[i];
    if (rec->variant != v) continue;
    total++;
    evaluated += rec->metrics != NULL;
    failed += !g_strcmp0(rec->state, "failed");
  }
  GString *s = g_string_new(NULL);
  if (evaluated == total) g_string_append_printf(s, "%u", total);
  else g_string_append_printf(s, "%u of %u", evaluated, total);
  if (failed) g_string_append_printf(s, " (%u failed)", failed);
  return g_string_free(s, FALSE);
}

static const char *const footer_text =
    "Each cell is the mean ± sample standard deviation (divisor n − 1) over the seeds that trained and were "
    "evaluated. Bold marks the best mean of each metric (↑ higher is better, ↓ lower is better, as "
    "results.json states). Δ is the variant's mean minus the baseline's; p is Welch's two-sided t-test "
    "(unequal variances, Welch-Satterthwaite degrees of freedom) of the variant's seeds against the baseline's. "
    "\"larger than noise\" means p < 0.05: the difference is larger than the seed-to-seed noise; \"within "
    "noise\" means it is not. n/a: fewer than 2 seeds on either side (or no spread at all), so the noise cannot "
    "be measured. With 3 seeds the test has little power, and among many comparisons about 1 in 20 reads "
    "\"larger than noise\" by chance.";

/* ---- Markdown --------------------------------------------------------------------------------------------- */

static void md_escape(GString *o, const char *s) {
  for (const char *p = s; *p; p++) {
    if (*p == '|') g_string_append(o, "\\|");
    else if (*p == '\n') g_string_append_c(o, ' ');
    else g_string_append_c(o, *p);
  }
}

char *rat_ablate_table_md(const RatAblateResults *r) {
  GString *o = g_string_new(NULL);
  g_string_append_printf(o, "# Ablation: %s\n\n", r->title);
  if (r->description) g_string_append_printf(o, "%s\n\n", r->description);
  if (r->base_path) g_string_append_printf(o, "Base experiment: `%s`. ", r->base_path);
  if (r->seeds) g_string_append_printf(o, "Seeds: %s. ", r->seeds);
  g_string_append_printf(o, "Baseline: %s.\n\n", (char *)r->variants->pdata[r->baseline]);
  g_string_append(o, "| variant | seeds |");
  for (guint m = 0; m < r->metrics->len; m++)
    g_string_append_printf(o, " %s%s | Δ vs %s |", (char *)r->metrics->pdata[m], arrow(r, r->metrics->pdata[m]),
                           (char *)r->variants->pdata[r->baseline]);
  g_string_append(o, "\n| --- | ---: |");
  for (guint m = 0; m < r->metrics->len; m++) g_string_append(o, " ---: | --- |");
  g_string_append_c(o, '\n');
  for (guint v = 0; v < r->variants->len; v++) {
    char *sc = rat_ablate_seeds_cell(r, v);
    g_string_append(o, "| ");
    md_escape(o, r->variants->pdata[v]);
    g_string_append_printf(o, "%s | %s |", v == r->baseline ? " (baseline)" : "", sc);
    g_free(sc);
    for (guint m = 0; m < r->metrics->len; m++) {
      RatAblateSummary s = rat_ablate_summary(r, v, m);
      char *cell = rat_ablate_fmt_cell(&s, " ± "), *cmp = rat_ablate_fmt_compare(r, v, &s);
      g_string_append_printf(o, " %s%s%s | %s |", s.best ? "**" : "", cell, s.best ? "**" : "", cmp);
      g_free(cell);
      g_free(cmp);
    }
    g_string_append_c(o, '\n');
  }
  if (!r->metrics->len) g_string_append(o, "\nNo run has been evaluated yet.\n");
  g_string_append_printf(o, "\n%s\n", footer_text);
  /* every run */
  g_string_append(o, "\n## Runs\n\n| variant | seed | run | state |");
  for (guint m = 0; m < r->metrics->len; m++) g_string_append_printf(o, " %s |", (char *)r->metrics->pdata[m]);
  g_string_append(o, " steps | training (s) | evaluation (s) |\n| --- | ---: | --- | --- |");
  for (guint m = 0; m < r->metrics->len; m++) g_string_append(o, " ---: |");
  g_string_append(o, " ---: | ---: | ---: |\n");
  for (guint i = 0; i < r->records->len; i++) {
    const RatAblateRecord *rec = r->records->pdata[i];
    g_string_append(o, "| ");
    md_escape(o, r->variants->pdata[rec->variant]);
    g_string_append_printf(o, " | %" G_GINT64_FORMAT " | %s | %s |", rec->seed, rec->run ? rec->run : "", rec->state);
    for (guint m = 0; m < r->metrics->len; m++) {
      const double *x = rec->metrics ? g_hash_table_lookup(rec->metrics, r->metrics->pdata[m]) : NULL;
      if (x) g_string_append_printf(o, " %.6g |", *x);
      else g_string_append(o, " |");
    }
    g_string_append_printf(o, " %" G_GINT64_FORMAT " | %.0f | %.0f |\n", rec->steps, rec->train_seconds,
                           rec->eval_seconds);
  }
  gboolean any_failed = FALSE;
  for (guint i = 0; i < r->records->len; i++) {
    const RatAblateRecord *rec = r->records->pdata[i];
    if (!rec->error) continue;
    if (!any_failed) g_string_append(o, "\n## Failed runs\n\n");
    any_failed = TRUE;
    g_string_append_printf(o, "- %s, seed %" G_GINT64_FORMAT " (run %s):\n\n  ```\n", (char *)r->variants->pdata[rec->variant],
                           rec->seed, rec->run ? rec->run : "?");
    char **lines = g_strsplit(rec->error, "\n", -1);
    for (guint k = 0; lines[k]; k++) g_string_append_printf(o, "  %s\n", lines[k]);
    g_strfreev(lines);
    g_string_append(o, "  ```\n");
  }
  /* one protocol for all results, or say that they differ */
  GHashTable *protos = g_hash_table_new(g_str_hash, g_str_equal);
  for (guint i = 0; i < r->records->len; i++) {
    const RatAblateRecord *rec = r->records->pdata[i];
    if (rec->protocol_hash) g_hash_table_add(protos, rec->protocol_hash);
  }
  if (g_hash_table_size(protos) > 1)
    g_string_append_printf(o, "\n**Warning:** the results come from %u different evaluation protocols "
                              "(results.json protocol_hash); compare them with care.\n",
                           g_hash_table_size(protos));
  g_hash_table_unref(protos);
  return g_string_free(o, FALSE);
}

/* ---- CSV ------------------------------------------------------------------------------------------------------ */

static void csv_field(GString *o, const char *s) {
  if (!strpbrk(s, ",\"\n")) {
    g_string_append(o, s);
    return;
  }
  g_string_append_c(o, '"');
  for (const char *p = s; *p; p++) {
    if (*p == '"') g_string_append_c(o, '"');
    g_string_append_c(o, *p);
  }
  g_string_append_c(o, '"');
}

static void csv_num(GString *o, double v) {
  if (isfinite(v)) g_string_append_printf(o, ",%.10g", v);
  else g_string_append_c(o, ',');
}

char *rat_ablate_table_csv(const RatAblateResults *r) {
  GString *o = g_string_new("variant,is_baseline,metric,higher_is_better,seeds,mean,std,delta_vs_baseline,"
                            "welch_t,welch_df,p_value,larger_than_noise,best\n");
  for (guint v = 0; v < r->variants->len; v++)
    for (guint m = 0; m < r->metrics->len; m++) {
      const char *metric = r->metrics->pdata[m];
      RatAblateSummary s = rat_ablate_summary(r, v, m);
      csv_field(o, r->variants->pdata[v]);
      g_string_append_printf(o, ",%s,", v == r->baseline ? "true" : "false");
      csv_field(o, metric);
      int dir = direction(r, metric);
      g_string_append_printf(o, ",%s,%u", dir == 1 ? "true" : dir == 2 ? "false" : "", s.n);
      csv_num(o, s.mean);
      csv_num(o, s.std);
      csv_num(o, v == r->baseline ? NAN : s.delta);
      csv_num(o, s.t);
      csv_num(o, s.df);
      csv_num(o, s.p);
      g_string_append_printf(o, ",%s,%s\n", isfinite(s.p) ? (differs(&s) ? "true" : "false") : "",
                             s.best ? "true" : "false");
    }
  return g_string_free(o, FALSE);
}

/* ---- LaTeX ---------------------------------------------------------------------------------------------------- */

static void tex_escape(GString *o, const char *s) {
  for (const char *p = s; *p; p++) {
    switch (*p) {
    case '_': case '%': case '&': case '#': case '$': case '{': case '}':
      g_string_append_printf(o, "\\%c", *p);
      break;
    case '\\': g_string_append(o, "\\textbackslash{}"); break;
    case '~': g_string_append(o, "\\textasciitilde{}"); break;
    case '^': g_string_append(o, "\\textasciicircum{}"); break;
    default: g_string_append_c(o, *p);
    }
  }
}

char *rat_ablate_table_tex(const RatAblateResults *r) {
  GString *o = g_string_new(NULL);
  g_string_append(o, "% Written by ratfw ablate; needs \\usepackage{booktabs}.\n\\begin{table}[t]\n\\centering\n");
  g_string_append(o, "\\begin{tabular}{lr");
  for (guint m = 0; m < r->metrics->len; m++) g_string_append_c(o, 'c');
  g_string_append(o, "}\n\\toprule\nVariant & Seeds");
  for (guint m = 0; m < r->metrics->len; m++) {
    const char *metric = r->metrics->pdata[m];
    g_string_append(o, " & ");
    tex_escape(o, metric);
    int d = direction(r, metric);
    if (d) g_string_append(o, d == 1 ? " $\\uparrow$" : " $\\downarrow$");
  }
  g_string_append(o, " \\\\\n\\midrule\n");
  for (guint v = 0; v < r->variants->len; v++) {
    tex_escape(o, r->variants->pdata[v]);
    if (v == r->baseline) g_string_append(o, " (baseline)");
    char *sc = rat_ablate_seeds_cell(r, v);
    g_string_append(o, " & ");
    tex_escape(o, sc);
    g_free(sc);
    for (guint m = 0; m < r->metrics->len; m++) {
      RatAblateSummary s = rat_ablate_summary(r, v, m);
      char *cell = rat_ablate_fmt_cell(&s, " \\pm ");
      if (!s.n) g_string_append(o, " & n/a");
      else
        g_string_append_printf(o, " & $%s%s%s$%s", s.best ? "\\mathbf{" : "", cell, s.best ? "}" : "",
                               v != r->baseline && differs(&s) ? "$^\\dagger$" : "");
      g_free(cell);
    }
    g_string_append(o, " \\\\\n");
  }
  g_string_append(o, "\\bottomrule\n\\end{tabular}\n\\caption{Ablation ");
  tex_escape(o, r->title);
  g_string_append(o, ": mean $\\pm$ sample standard deviation over seeds; bold: best per metric; $^\\dagger$: "
                     "differs from the baseline (");
  tex_escape(o, r->variants->pdata[r->baseline]);
  g_string_append(o, ") by more than the seed-to-seed noise (Welch's two-sided $t$-test, $p < 0.05$).}\n");
  g_string_append(o, "\\label{tab:ablation-");
  for (const char *p = r->title; *p; p++) g_string_append_c(o, g_ascii_isalnum(*p) ? *p : '-');
  g_string_append(o, "}\n\\end{table}\n");
  return g_string_free(o, FALSE);
}

/* ---- collecting a sweep directory ---------------------------------------------------------------------------- */

static char *file_or_null(const char *dir, const char *name) {
  char *p = g_build_filename(dir, name, NULL);
  if (g_file_test(p, G_FILE_TEST_EXISTS)) return p;
  g_free(p);
  return NULL;
}

static char *git_revision_of(const char *dir) {
  char *p = g_build_filename(dir, "provenance.json", NULL);
  JsonParser *parser = json_parser_new();
  char *rev = NULL;
  if (json_parser_load_from_file(parser, p, NULL)) {
    JsonNode *root = json_parser_get_root(parser);
    if (root && JSON_NODE_HOLDS_OBJECT(root)) {
      JsonObject *o = json_node_get_object(root);
      if (json_object_has_member(o, "git_revision")) rev = g_strdup(json_object_get_string_member(o, "git_revision"));
    }
  }
  g_object_unref(parser);
  g_free(p);
  return rev;
}

/* Reads RUN/eval/ablate-<id>.json into @rec; fills @hib (metric -> 1 higher / 2 lower). */
static void read_results(RatAblateRecord *rec, const char *path, GHashTable *hib) {
  JsonParser *parser = json_parser_new();
  if (!json_parser_load_from_file(parser, path, NULL)) {
    g_object_unref(parser);
    return;
  }
  JsonNode *root = json_parser_get_root(parser);
  JsonObject *o = root && JSON_NODE_HOLDS_OBJECT(root) ? json_node_get_object(root) : NULL;
  JsonNode *mn = o ? json_object_get_member(o, "metrics") : NULL;
  JsonNode *hn = o ? json_object_get_member(o, "higher_is_better") : NULL;
  if (mn && JSON_NODE_HOLDS_OBJECT(mn)) {
    JsonObject *m = json_node_get_object(mn);
    GList *names = json_object_get_members(m);
    for (GList *l = names; l; l = l->next) {
      JsonNode *v = json_object_get_member(m, l->data);
      if (JSON_NODE_HOLDS_VALUE(v) &&
          (json_node_get_value_type(v) == G_TYPE_DOUBLE || json_node_get_value_type(v) == G_TYPE_INT64))
        rat_ablate_record_set_metric(rec, l->data, json_node_get_double(v));
    }
    g_list_free(names);
  }
  if (hn && JSON_NODE_HOLDS_OBJECT(hn)) {
    JsonObject *h = json_node_get_object(hn);
    GList *names = json_object_get_members(h);
    for (GList *l = names; l; l = l->next) {
      JsonNode *v = json_object_get_member(h, l->data);
      if (JSON_NODE_HOLDS_VALUE(v) && json_node_get_value_type(v) == G_TYPE_BOOLEAN)
        g_hash_table_replace(hib, g_strdup(l->data), GINT_TO_POINTER(json_node_get_boolean(v) ? 1 : 2));
    }
    g_list_free(names);
  }
  JsonNode *ph = o ? json_object_get_member(o, "protocol_hash") : NULL;
  if (ph && JSON_NODE_HOLDS_VALUE(ph) && json_node_get_value_type(ph) == G_TYPE_STRING)
    rec->protocol_hash = g_strdup(json_node_get_string(ph));
  g_object_unref(parser);
}

RatAblateResults *rat_ablate_results_collect(const RatSweep *s, const char *out) {
  RatAblateResults *r = rat_ablate_results_new(s->name, s->baseline);
  r->description = g_strdup(s->description);
  for (guint v = 0; v < s->variants->len; v++) {
    const RatSweepVariant *var = s->variants->pdata[v];
    rat_ablate_results_add_variant(r, var->name);
    g_ptr_array_add(r->variant_yaml, var->node && !rat_config_is_null(var->node) && var->node->values &&
                                             var->node->values->len
                                         ? rat_config_to_yaml(var->node)
                                         : g_strdup("(the base experiment as it is)\n"));
  }
  r->sweep_path = g_strdup(s->path);
  r->base_path = g_strdup(s->base);
  GString *common = g_string_new(NULL);
  if (s->common) {
    char *y = rat_config_to_yaml(s->common);
    g_string_append(common, y);
    g_free(y);
  }
  for (guint i = 0; i < s->sets->len; i++) g_string_append_printf(common, "- %s   # command line\n", (char *)s->sets->pdata[i]);
  r->common_yaml = common->len ? g_string_free(common, FALSE) : (g_string_free(common, TRUE), NULL);
  GString *seeds = g_string_new(NULL);
  for (guint i = 0; i < s->seeds->len; i++)
    g_string_append_printf(seeds, "%s%" G_GINT64_FORMAT, i ? ", " : "", g_array_index(s->seeds, gint64, i));
  r->seeds = g_string_free(seeds, FALSE);
  r->ratfw_version = g_strdup(RATFW_VERSION);
  GHashTable *hib = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  for (guint i = 0; i < s->runs->len; i++) {
    const RatSweepRun *run = s->runs->pdata[i];
    RatAblateState *st = rat_ablate_state_read(s, i, out);
    if (run->variant == s->baseline && !r->base_yaml) {
      r->base_yaml = g_strdup(run->experiment);
      r->eval_yaml = g_strdup(run->eval_yaml);
    }
    if (run->variant < r->steps->len) g_array_index(r->steps, gint64, run->variant) = run->steps;
    const char *state = st->eval == RAT_ABLATE_EVAL_DONE                                      ? "done"
                        : st->train == RAT_ABLATE_FAILED || st->eval == RAT_ABLATE_EVAL_FAILED ? "failed"
                        : st->train == RAT_ABLATE_TRAINED                                      ? "not evaluated"
                        : st->train == RAT_ABLATE_PARTIAL                                      ? "partial"
                                                                                               : "to do";
    RatAblateRecord *rec = rat_ablate_record_new(run->variant, run->seed, state);
    rec->run = g_strndup(run->id, 16);
    rec->error = g_strdup(st->error);
    rec->steps = run->steps;
    rec->train_seconds = st->train_seconds;
    rec->eval_seconds = st->eval_seconds;
    rec->train_cpu_seconds = st->train_cpu_seconds;
    rec->eval_cpu_seconds = st->eval_cpu_seconds;
    rec->samples_png = file_or_null(st->dir, "samples.png");
    rec->losses_png = file_or_null(st->dir, "losses.png");
    if (!r->git_revision && st->train == RAT_ABLATE_TRAINED) r->git_revision = git_revision_of(st->dir);
    if (st->results_path) read_results(rec, st->results_path, hib);
    rat_ablate_results_add(r, rec, hib);
    rat_ablate_state_free(st);
  }
  g_hash_table_unref(hib);
  return r;
}

/* ---- all of it ------------------------------------------------------------------------------------------------ */

static gboolean write_text(const char *dir, const char *name, char *text, GError **error) {
  char *p = g_build_filename(dir, name, NULL);
  gboolean ok = rat_file_write_atomic(p, text, strlen(text), error);
  g_free(p);
  g_free(text);
  return ok;
}

gboolean rat_ablate_report(const RatAblateResults *r, const char *dir, GError **error) {
  if (g_mkdir_with_parents(dir, 0755) != 0) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_IO, "cannot create %s", dir);
    return FALSE;
  }
  char *chart = g_build_filename(dir, "chart.png", NULL);
  gboolean ok = write_text(dir, "table.md", rat_ablate_table_md(r), error) &&
                write_text(dir, "table.csv", rat_ablate_table_csv(r), error) &&
                write_text(dir, "table.tex", rat_ablate_table_tex(r), error) && rat_ablate_chart(r, chart, error) &&
                rat_ablate_html(r, dir, error);
  g_free(chart);
  return ok;
}
