/* ratfw ablate's statistics and writers (core/ablate): mean, std, the regularised incomplete beta function and
 * Welch's t-test against SciPy (tests/fixtures/ablate_stats.json from tools/reference/ref_ablate_stats.py); the
 * Markdown, CSV and LaTeX tables of a known results set; chart.png written and decodable; index.html whose links
 * all exist. */
#include "config.h"

#include <ratfw/ratfw.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#include "testutil.h"

/* ---- statistics against SciPy ---------------------------------------------------------------------------------- */

static JsonObject *fixture(JsonParser **parser) {
  char *path = g_build_filename(RATFW_SRCDIR, "tests", "fixtures", "ablate_stats.json", NULL);
  *parser = json_parser_new();
  GError *e = NULL;
  g_assert_true(json_parser_load_from_file(*parser, path, &e));
  g_assert_no_error(e);
  g_free(path);
  return json_node_get_object(json_parser_get_root(*parser));
}

static double *doubles(JsonArray *a, guint *n) {
  *n = json_array_get_length(a);
  double *x = g_new(double, *n);
  for (guint i = 0; i < *n; i++) x[i] = json_array_get_double_element(a, i);
  return x;
}

static double rel_err(double got, double want) { return fabs(got - want) / MAX(fabs(want), 1e-300); }

static void test_welch(void) {
  JsonParser *parser;
  JsonArray *cases = json_object_get_array_member(fixture(&parser), "welch");
  double worst_ms = 0, worst_t = 0, worst_df = 0, worst_p = 0;
  for (guint c = 0; c < json_array_get_length(cases); c++) {
    JsonObject *k = json_array_get_object_element(cases, c);
    guint na, nb;
    double *a = doubles(json_object_get_array_member(k, "a"), &na), *b = doubles(json_object_get_array_member(k, "b"), &nb);
    worst_ms = MAX(worst_ms, rel_err(rat_stats_mean(a, na), json_object_get_double_member(k, "mean_a")));
    worst_ms = MAX(worst_ms, rel_err(rat_stats_std(b, nb), json_object_get_double_member(k, "std_b")));
    worst_ms = MAX(worst_ms, rel_err(rat_stats_std(a, na), json_object_get_double_member(k, "std_a")));
    double t, df, p;
    g_assert_true(rat_stats_welch(a, na, b, nb, &t, &df, &p));
    worst_t = MAX(worst_t, fabs(t - json_object_get_double_member(k, "t")) / MAX(1.0, fabs(t)));
    worst_df = MAX(worst_df, rel_err(df, json_object_get_double_member(k, "df")));
    worst_p = MAX(worst_p, rel_err(p, json_object_get_double_member(k, "p")));
    /* swapping the sides flips t and keeps p */
    double t2, df2, p2;
    rat_stats_welch(b, nb, a, na, &t2, &df2, &p2);
    g_assert_cmpfloat(t2, ==, -t);
    g_assert_cmpfloat(fabs(p2 - p), <=, 1e-15);
    g_free(a);
    g_free(b);
  }
  /* achieved here: mean/std 2e-15, t 1e-14, df 3e-15, p 7e-14 (relative): a factor of ~1000 of margin for other
   * libms; a dropped term (e.g. n instead of n - 1, or the pooled df) moves p by far more than 1e-10 */
  g_test_message("worst relative error: mean/std %.2g, t %.2g, df %.2g, p %.2g", worst_ms, worst_t, worst_df, worst_p);
  g_assert_cmpfloat(worst_ms, <, 1e-12);
  g_assert_cmpfloat(worst_t, <, 1e-11);
  g_assert_cmpfloat(worst_df, <, 1e-11);
  g_assert_cmpfloat(worst_p, <, 1e-10);
  g_object_unref(parser);
}

static void test_welch_degenerate(void) {
  double a[] = {1, 2, 3}, b[] = {5, 5, 5}, c[] = {5, 5, 5}, one[] = {4};
  double t, df, p;
  g_assert_false(rat_stats_welch(a, 3, one, 1, &t, &df, &p)); /* one seed: no noise estimate */
  g_assert_true(isnan(p));
  g_assert_false(rat_stats_welch(b, 3, c, 3, &t, &df, &p)); /* no spread on either side */
  g_assert_true(isnan(t));
  g_assert_true(rat_stats_welch(a, 3, b, 3, &t, &df, &p)); /* one side without spread is fine: df = n_a - 1 */
  g_assert_cmpfloat(fabs(df - 2), <, 1e-12);
  g_assert_true(isnan(rat_stats_std(one, 1)));
}

static void test_betainc(void) {
  JsonParser *parser;
  JsonArray *cases = json_object_get_array_member(fixture(&parser), "betainc");
  double worst = 0;
  for (guint c = 0; c < json_array_get_length(cases); c++) {
    JsonObject *k = json_array_get_object_element(cases, c);
    double a = json_object_get_double_member(k, "a"), b = json_object_get_double_member(k, "b"),
           x = json_object_get_double_member(k, "x"), want = json_object_get_double_member(k, "value");
    double got = rat_stats_betainc(a, b, x);
    double err = fabs(got - want) / MAX(fabs(want), 1e-12);
    if (err > worst) g_test_message("I_%g(%g, %g) = %.17g, SciPy %.17g", x, a, b, got, want);
    worst = MAX(worst, err);
  }
  /* achieved: 4e-14 relative (values down to 1e-9); the continued fraction stops at 1e-15 per term */
  g_test_message("worst relative error %.2g", worst);
  g_assert_cmpfloat(worst, <, 1e-11);
  g_assert_true(isnan(rat_stats_betainc(-1, 1, 0.5)));
  g_object_unref(parser);
}

/* ---- a known results set ---------------------------------------------------------------------------------------- */

static RatAblateResults *known_results(GHashTable **hib_out) {
  RatAblateResults *r = rat_ablate_results_new("toy", 0);
  rat_ablate_results_add_variant(r, "affine");
  rat_ablate_results_add_variant(r, "cbn");
  rat_ablate_results_add_variant(r, "cin");
  GHashTable *hib = g_hash_table_new(g_str_hash, g_str_equal);
  g_hash_table_insert(hib, "acc", GINT_TO_POINTER(1));
  g_hash_table_insert(hib, "fid", GINT_TO_POINTER(2));
  const double acc[2][3] = {{0.40, 0.42, 0.44}, {0.50, 0.52, 0.54}}, fid[2][3] = {{30, 32, 34}, {28, 29, 30}};
  for (guint v = 0; v < 2; v++)
    for (guint s = 0; s < 3; s++) {
      RatAblateRecord *rec = rat_ablate_record_new(v, s + 1, "done");
      rat_ablate_record_set_metric(rec, "acc", acc[v][s]);
      rat_ablate_record_set_metric(rec, "fid", fid[v][s]);
      rec->run = g_strdup_printf("%016x", v * 16 + s);
      rec->steps = 100;
      rat_ablate_results_add(r, rec, hib);
    }
  RatAblateRecord *rec = rat_ablate_record_new(2, 1, "done");
  rat_ablate_record_set_metric(rec, "acc", 0.45);
  rat_ablate_record_set_metric(rec, "fid", 40);
  rat_ablate_results_add(r, rec, hib);
  rec = rat_ablate_record_new(2, 2, "failed");
  rec->error = g_strdup("train: ratfw run: loss_d became NaN at step 7\nexit status 1");
  rat_ablate_results_add(r, rec, hib);
  rat_ablate_results_add(r, rat_ablate_record_new(2, 3, "to do"), hib);
  *hib_out = hib;
  return r;
}

static gboolean has_line(const char *text, const char *line) {
  char **lines = g_strsplit(text, "\n", -1);
  gboolean found = FALSE;
  for (guint i = 0; lines[i] && !found; i++) found = !strcmp(lines[i], line);
  if (!found) g_test_message("missing line: %s\nin:\n%s", line, text);
  g_strfreev(lines);
  return found;
}

/* The numbers (mean, std, Welch's p) by hand and by scipy.stats.ttest_ind(equal_var=False):
 * acc: affine 0.420 +- 0.020, cbn 0.520 +- 0.020, t = 6.1237, df = 4, p = 0.0036022; cin one seed 0.45.
 * fid: affine 32.0 +- 2.0, cbn 29.0 +- 1.0, t = -2.3238, df = 2.9412, p = 0.10448; cin 40. */
static void test_table_md(void) {
  GHashTable *hib;
  RatAblateResults *r = known_results(&hib);
  char *md = rat_ablate_table_md(r);
  g_assert_true(has_line(md, "| variant | seeds | acc ↑ | Δ vs affine | fid ↓ | Δ vs affine |"));
  g_assert_true(has_line(md, "| affine (baseline) | 3 | 0.420 ± 0.020 | baseline | 32.0 ± 2.0 | baseline |"));
  g_assert_true(has_line(md, "| cbn | 3 | **0.520 ± 0.020** | +0.100, p = 0.004: larger than noise | **29.0 ± 1.0** | "
                             "-3.0, p = 0.104: within noise |"));
  g_assert_true(has_line(md, "| cin | 1 of 3 (1 failed) | 0.4500 | +0.0300, n/a (1 seed) | 40.00 | +8.00, n/a (1 seed) |"));
  g_assert_true(strstr(md, "Welch's two-sided t-test") != NULL);
  g_assert_true(strstr(md, "## Failed runs") && strstr(md, "loss_d became NaN at step 7"));
  g_assert_true(has_line(md, "| cin | 3 |  | to do | | | 0 | 0 | 0 |"));
  g_free(md);
  rat_ablate_results_free(r);
  g_hash_table_unref(hib);
}

static void test_table_csv(void) {
  GHashTable *hib;
  RatAblateResults *r = known_results(&hib);
  char *csv = rat_ablate_table_csv(r);
  char **lines = g_strsplit(csv, "\n", -1);
  g_assert_cmpstr(lines[0], ==, "variant,is_baseline,metric,higher_is_better,seeds,mean,std,delta_vs_baseline,welch_t,"
                                "welch_df,p_value,larger_than_noise,best");
  g_assert_cmpuint(g_strv_length(lines), ==, 1 + 3 * 2 + 1); /* header, 3 variants x 2 metrics, final newline */
  /* cbn,acc: every field */
  char **f = g_strsplit(lines[3], ",", -1);
  g_assert_cmpuint(g_strv_length(f), ==, 13);
  g_assert_cmpstr(f[0], ==, "cbn");
  g_assert_cmpstr(f[1], ==, "false");
  g_assert_cmpstr(f[2], ==, "acc");
  g_assert_cmpstr(f[3], ==, "true");
  g_assert_cmpstr(f[4], ==, "3");
  const double want[] = {0.52, 0.02, 0.1, 6.123724356957945, 4.0, 0.0036022326091040033};
  for (guint i = 0; i < G_N_ELEMENTS(want); i++)
    g_assert_cmpfloat(rel_err(g_ascii_strtod(f[5 + i], NULL), want[i]), <, 1e-9); /* %.10g in the file */
  g_assert_cmpstr(f[11], ==, "true");
  g_assert_cmpstr(f[12], ==, "true");
  g_strfreev(f);
  /* cbn,fid: lower is better, the test says within noise */
  f = g_strsplit(lines[4], ",", -1);
  g_assert_cmpstr(f[3], ==, "false");
  g_assert_cmpfloat(rel_err(g_ascii_strtod(f[9], NULL), 2.9411764705882346), <, 1e-9);
  g_assert_cmpfloat(rel_err(g_ascii_strtod(f[10], NULL), 0.10447888668472186), <, 1e-9);
  g_assert_cmpstr(f[11], ==, "false");
  g_strfreev(f);
  /* the baseline has no delta or test; cin (one seed) no std or test */
  g_assert_cmpstr(lines[1], ==, "affine,true,acc,true,3,0.42,0.02,,,,,,false");
  g_assert_cmpstr(lines[5], ==, "cin,false,acc,true,1,0.45,,0.03,,,,,false");
  g_strfreev(lines);
  g_free(csv);
  rat_ablate_results_free(r);
  g_hash_table_unref(hib);
}

static void test_table_tex(void) {
  GHashTable *hib;
  RatAblateResults *r = known_results(&hib);
  char *tex = rat_ablate_table_tex(r);
  g_assert_true(has_line(tex, "Variant & Seeds & acc $\\uparrow$ & fid $\\downarrow$ \\\\"));
  g_assert_true(has_line(tex, "affine (baseline) & 3 & $0.420 \\pm 0.020$ & $32.0 \\pm 2.0$ \\\\"));
  g_assert_true(has_line(tex, "cbn & 3 & $\\mathbf{0.520 \\pm 0.020}$$^\\dagger$ & $\\mathbf{29.0 \\pm 1.0}$ \\\\"));
  g_assert_true(has_line(tex, "cin & 1 of 3 (1 failed) & $0.4500$ & $40.00$ \\\\"));
  g_assert_true(strstr(tex, "\\begin{tabular}{lrcc}") && strstr(tex, "Welch's two-sided $t$-test"));
  g_free(tex);
  rat_ablate_results_free(r);
  g_hash_table_unref(hib);
}

/* ---- chart.png and index.html ------------------------------------------------------------------------------------ */

static void test_chart(void) {
  GHashTable *hib;
  RatAblateResults *r = known_results(&hib);
  char *dir = g_dir_make_tmp("ratfw-ablate-XXXXXX", NULL);
  char *path = g_build_filename(dir, "chart.png", NULL);
  GError *e = NULL;
  g_assert_true(rat_ablate_chart(r, path, &e));
  g_assert_no_error(e);
  RatScope s = rat_scope_push();
  RatTensor *img = rat_png_read(path, &e);
  g_assert_no_error(e);
  g_assert_nonnull(img);
  /* two panels side by side, 3 variants each */
  g_assert_cmpint(img->shape[0], ==, 3);
  g_assert_cmpint(img->shape[1], >=, 300);
  g_assert_cmpint(img->shape[2], >=, 600);
  /* something was drawn: dark pixels (axes, text, markers) on the white page */
  RatTensor *c = rat_contiguous(img);
  const float *px = rat_tensor_data(c);
  gint64 dark = 0, n = rat_tensor_numel(c);
  for (gint64 i = 0; i < n; i++) dark += px[i] < 0.5f;
  g_assert_cmpint(dark, >, n / 200);
  rat_scope_pop(s);
  g_unlink(path);
  g_rmdir(dir);
  g_free(path);
  g_free(dir);
  rat_ablate_results_free(r);
  g_hash_table_unref(hib);
}

/* Every src="..." and href="..." of @html that is not a link out must name a file under @dir. */
static guint check_links(const char *html, const char *dir) {
  guint n = 0;
  for (const char *p = html; (p = strstr(p, "=\"")); p += 2) {
    if (!(p >= html + 3 && (!strncmp(p - 3, "src", 3) || !strncmp(p - 4, "href", 4)))) continue;
    const char *end = strchr(p + 2, '"');
    g_assert_nonnull(end);
    char *target = g_strndup(p + 2, (gsize)(end - p - 2));
    g_assert_false(g_str_has_prefix(target, "http") || g_str_has_prefix(target, "/")); /* offline, relative */
    char *full = g_build_filename(dir, target, NULL);
    if (!g_file_test(full, G_FILE_TEST_IS_REGULAR)) g_test_message("index.html links to a missing %s", target);
    g_assert_true(g_file_test(full, G_FILE_TEST_IS_REGULAR));
    n++;
    g_free(full);
    g_free(target);
  }
  return n;
}

static void rm_rf(const char *dir) {
  GDir *d = g_dir_open(dir, 0, NULL);
  const char *name;
  while (d && (name = g_dir_read_name(d))) {
    char *p = g_build_filename(dir, name, NULL);
    if (g_file_test(p, G_FILE_TEST_IS_DIR)) rm_rf(p);
    else g_unlink(p);
    g_free(p);
  }
  if (d) g_dir_close(d);
  g_rmdir(dir);
}

static void test_report(void) {
  GHashTable *hib;
  RatAblateResults *r = known_results(&hib);
  char *dir = g_dir_make_tmp("ratfw-ablate-XXXXXX", NULL);
  /* a sample grid and a loss curve for two runs, as a run directory holds them */
  RatScope s = rat_scope_push();
  RatTensor *img = rat_full(RAT_SHAPE(3, 8, 8), 0.5f);
  char *grid = g_build_filename(dir, "grid.png", NULL);
  GError *e = NULL;
  g_assert_true(rat_png_write(grid, img, &e));
  rat_scope_pop(s);
  for (guint i = 0; i < 2; i++) {
    RatAblateRecord *rec = r->records->pdata[i * 3];
    rec->samples_png = g_strdup(grid);
    rec->losses_png = g_strdup(grid);
  }
  r->base_yaml = g_strdup("seed: 1\ntask: train_gan\n");
  r->eval_yaml = g_strdup("eval:\n  samples: 10\n");
  g_assert_true(rat_ablate_report(r, dir, &e));
  g_assert_no_error(e);
  const char *files[] = {"table.md", "table.csv", "table.tex", "chart.png", "index.html",
                         "report/affine-seed1-samples.png", "report/cbn-seed1-losses.png"};
  for (guint i = 0; i < G_N_ELEMENTS(files); i++) {
    char *p = g_build_filename(dir, files[i], NULL);
    g_assert_true(g_file_test(p, G_FILE_TEST_IS_REGULAR));
    g_free(p);
  }
  char *html = NULL, *hp = g_build_filename(dir, "index.html", NULL);
  g_assert_true(g_file_get_contents(hp, &html, NULL, NULL));
  guint links = check_links(html, dir);
  g_assert_cmpuint(links, >=, 4 + 4 * 2); /* chart, 3 tables, 2 runs x (2 links + 2 images) */
  g_assert_true(strstr(html, "0.520 ± 0.020") && strstr(html, "larger than noise") &&
                strstr(html, "loss_d became NaN at step 7") && strstr(html, "task: train_gan"));
  g_free(html);
  g_free(hp);
  g_free(grid);
  rm_rf(dir);
  g_free(dir);
  rat_ablate_results_free(r);
  g_hash_table_unref(hib);
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, NULL);
  rat_init();
  g_test_add_func("/ablate/stats/welch", test_welch);
  g_test_add_func("/ablate/stats/welch-degenerate", test_welch_degenerate);
  g_test_add_func("/ablate/stats/betainc", test_betainc);
  g_test_add_func("/ablate/table/md", test_table_md);
  g_test_add_func("/ablate/table/csv", test_table_csv);
  g_test_add_func("/ablate/table/tex", test_table_tex);
  g_test_add_func("/ablate/chart", test_chart);
  g_test_add_func("/ablate/report", test_report);
  return g_test_run();
}
