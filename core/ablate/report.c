/* The sweep's pictures and report: chart.png drawn with cairo (one panel per metric: each variant's seeds as
 * dots, their mean with a +-std error bar, the baseline and the best marked) and index.html, a report that
 * opens offline (the table, the chart, every run's sample grid and loss curve copied into report/, the protocol). */
#include "config.h"

#include <ratfw/ablate.h>
#include <ratfw/error.h>
#include <ratfw/io.h>

#include "ablate-private.h"

#include <cairo.h>
#include <math.h>
#include <string.h>

/* ---- chart.png ------------------------------------------------------------------------------------------------ */

#define PLOT_H 220 /* the plotting area's height; the labels below it take what they need */
#define PANELS_PER_ROW 3

typedef struct {
  double w, h, bottom; /* panel size and the margin below the plot (variant names) */
  gboolean turned;     /* names at -45 degrees, their end under their column */
} Layout;

/* A "nice" tick step for the range [lo, hi] with about @n ticks. */
static double tick_step(double lo, double hi, int n) {
  double raw = (hi - lo) / n, mag = pow(10, floor(log10(raw))), f = raw / mag;
  return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
}

static void text_at(cairo_t *cr, double x, double y, const char *s, double align_x, double align_y) {
  cairo_text_extents_t te;
  cairo_text_extents(cr, s, &te);
  cairo_move_to(cr, x - te.x_bearing - align_x * te.width, y - te.y_bearing - align_y * te.height);
  cairo_show_text(cr, s);
}

static void draw_panel(cairo_t *cr, const RatAblateResults *r, guint m, double x0, double y0, const Layout *lay) {
  const char *metric = r->metrics->pdata[m];
  int dir = GPOINTER_TO_INT(g_hash_table_lookup(r->higher_is_better, metric));
  guint nv = r->variants->len;
  const double left = 62, right = 14, top = 34, w = lay->w;
  double px = x0 + left, py = y0 + top, pw = w - left - right, ph = PLOT_H;
  /* the range of every seed's value and every mean +- std */
  double lo = INFINITY, hi = -INFINITY;
  RatAblateSummary *sum = g_new0(RatAblateSummary, nv);
  for (guint v = 0; v < nv; v++) {
    sum[v] = rat_ablate_summary(r, v, m);
    if (sum[v].n && isfinite(sum[v].std)) {
      lo = MIN(lo, sum[v].mean - sum[v].std);
      hi = MAX(hi, sum[v].mean + sum[v].std);
    }
  }
  for (guint i = 0; i < r->records->len; i++) {
    const RatAblateRecord *rec = r->records->pdata[i];
    const double *x = rec->metrics ? g_hash_table_lookup(rec->metrics, metric) : NULL;
    if (x && isfinite(*x)) {
      lo = MIN(lo, *x);
      hi = MAX(hi, *x);
    }
  }
  cairo_set_source_rgb(cr, 0, 0, 0);
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_BOLD);
  cairo_set_font_size(cr, 14);
  char *title = g_strdup_printf("%s%s", metric, dir == 1 ? " (higher is better)" : dir == 2 ? " (lower is better)" : "");
  /* a long metric name (shapes_accuracy_background ...) is set smaller rather than over the next panel's title */
  cairo_text_extents_t te;
  cairo_text_extents(cr, title, &te);
  if (te.x_advance > w - 8) cairo_set_font_size(cr, MAX(7.0, 14 * (w - 8) / te.x_advance));
  text_at(cr, x0 + w / 2, y0 + 10, title, 0.5, 0);
  g_free(title);
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, 11);
  /* frame */
  cairo_set_line_width(cr, 1);
  cairo_rectangle(cr, px + 0.5, py + 0.5, pw, ph);
  cairo_stroke(cr);
  if (!isfinite(lo)) {
    text_at(cr, px + pw / 2, py + ph / 2, "no results yet", 0.5, 0.5);
    g_free(sum);
    return;
  }
  if (hi - lo < 1e-12 * MAX(1.0, fabs(hi))) {
    double pad = fabs(hi) > 0 ? fabs(hi) * 0.05 : 1;
    lo -= pad;
    hi += pad;
  }
  double pad = (hi - lo) * 0.08;
  lo -= pad;
  hi += pad;
#define YPOS(val) (py + ph - ((val) - lo) / (hi - lo) * ph)
  /* y ticks and grid */
  double step = tick_step(lo, hi, 5);
  for (double t = ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) {
    double y = round(YPOS(t)) + 0.5;
    cairo_set_source_rgb(cr, 0.88, 0.88, 0.88);
    cairo_move_to(cr, px + 1, y);
    cairo_line_to(cr, px + pw, y);
    cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    char lab[32];
    g_snprintf(lab, sizeof lab, "%.4g", fabs(t) < step * 1e-6 ? 0.0 : t);
    text_at(cr, px - 5, y, lab, 1, 0.5);
  }
  double slot = pw / nv;
  for (guint v = 0; v < nv; v++) {
    double cx = px + slot * (v + 0.5);
    gboolean base = v == r->baseline;
    /* variant name under the axis, turned when it does not fit */
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL,
                           sum[v].best ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    if (!lay->turned) {
      text_at(cr, cx, py + ph + 6, r->variants->pdata[v], 0.5, 0);
    } else {
      cairo_save(cr);
      cairo_translate(cr, cx + 3, py + ph + 8);
      cairo_rotate(cr, -M_PI / 4);
      text_at(cr, 0, 0, r->variants->pdata[v], 1, 0.5);
      cairo_restore(cr);
    }
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    if (base) {
      cairo_set_source_rgb(cr, 0.95, 0.95, 0.80);
      cairo_rectangle(cr, cx - slot / 2 + 2, py + 1, slot - 4, ph - 1);
      cairo_fill(cr);
    }
    /* each seed */
    for (guint i = 0; i < r->records->len; i++) {
      const RatAblateRecord *rec = r->records->pdata[i];
      const double *x = rec->variant == v && rec->metrics ? g_hash_table_lookup(rec->metrics, metric) : NULL;
      if (!x || !isfinite(*x)) continue;
      cairo_set_source_rgb(cr, 0.55, 0.55, 0.55);
      cairo_new_path(cr);
      cairo_arc(cr, cx + 12, YPOS(*x), 2.5, 0, 2 * M_PI);
      cairo_stroke(cr);
    }
    if (!sum[v].n) continue;
    double r_, g_, b_;
    if (base) r_ = 0.35, g_ = 0.35, b_ = 0.35;
    else r_ = 0.12, g_ = 0.35, b_ = 0.75;
    cairo_set_source_rgb(cr, r_, g_, b_);
    cairo_set_line_width(cr, 1.6);
    if (isfinite(sum[v].std)) {
      double ya = YPOS(sum[v].mean - sum[v].std), yb = YPOS(sum[v].mean + sum[v].std);
      cairo_move_to(cr, cx, ya);
      cairo_line_to(cr, cx, yb);
      cairo_move_to(cr, cx - 7, ya);
      cairo_line_to(cr, cx + 7, ya);
      cairo_move_to(cr, cx - 7, yb);
      cairo_line_to(cr, cx + 7, yb);
      cairo_stroke(cr);
    }
    cairo_rectangle(cr, cx - 4.5, YPOS(sum[v].mean) - 4.5, 9, 9);
    cairo_fill(cr);
    if (sum[v].best) { /* a ring around the best mean */
      cairo_set_source_rgb(cr, 0.85, 0.45, 0.0);
      cairo_set_line_width(cr, 2);
      cairo_new_path(cr);
      cairo_arc(cr, cx, YPOS(sum[v].mean), 9, 0, 2 * M_PI);
      cairo_stroke(cr);
    }
    cairo_set_line_width(cr, 1);
  }
#undef YPOS
  g_free(sum);
}

static cairo_status_t append_png(void *closure, const unsigned char *data, unsigned int len) {
  g_byte_array_append(closure, data, len);
  return CAIRO_STATUS_SUCCESS;
}

/* Panel size: a column per variant; the names level when they fit their column, else turned. */
static Layout layout_of(const RatAblateResults *r) {
  Layout lay = {.w = MAX(300.0, 90.0 + 64.0 * r->variants->len)};
  cairo_surface_t *probe = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 4, 4);
  cairo_t *cr = cairo_create(probe);
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_BOLD);
  cairo_set_font_size(cr, 11);
  double slot = (lay.w - 76) / MAX(r->variants->len, 1u), widest = 0;
  for (guint v = 0; v < r->variants->len; v++) {
    cairo_text_extents_t te;
    cairo_text_extents(cr, r->variants->pdata[v], &te);
    widest = MAX(widest, te.width);
  }
  cairo_destroy(cr);
  cairo_surface_destroy(probe);
  lay.turned = widest > slot - 6;
  lay.bottom = lay.turned ? 24 + MIN(widest, 220.0) * 0.72 : 30;
  lay.h = 34 + PLOT_H + lay.bottom;
  return lay;
}

gboolean rat_ablate_chart(const RatAblateResults *r, const char *path, GError **error) {
  guint nm = MAX(r->metrics->len, 1u), cols = MIN(nm, (guint)PANELS_PER_ROW), rows = (nm + cols - 1) / cols;
  Layout lay = layout_of(r);
  int W = (int)(lay.w * cols), H = (int)(lay.h * rows) + 30;
  cairo_surface_t *surf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, W, H);
  cairo_t *cr = cairo_create(surf);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  cairo_set_source_rgb(cr, 0, 0, 0);
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, 11);
  char *foot = g_strdup_printf("%s: square = mean over seeds, bar = +-1 sample std, circles = single seeds; shaded: "
                               "baseline (%s); ring: best",
                               r->title, (char *)r->variants->pdata[r->baseline]);
  text_at(cr, 8, H - 20, foot, 0, 0);
  g_free(foot);
  if (!r->metrics->len) text_at(cr, W / 2.0, lay.h / 2.0, "no evaluated run yet", 0.5, 0.5);
  for (guint m = 0; m < r->metrics->len; m++) draw_panel(cr, r, m, lay.w * (m % cols), lay.h * (m / cols), &lay);
  cairo_destroy(cr);
  cairo_surface_flush(surf);
  GByteArray *png = g_byte_array_new();
  cairo_status_t cs = cairo_surface_write_to_png_stream(surf, append_png, png);
  cairo_surface_destroy(surf);
  gboolean ok = FALSE;
  if (cs != CAIRO_STATUS_SUCCESS)
    g_set_error(error, RAT_ERROR, RAT_ERROR_IO, "cannot encode %s: %s", path, cairo_status_to_string(cs));
  else ok = rat_file_write_atomic(path, png->data, png->len, error);
  g_byte_array_unref(png);
  return ok;
}

/* ---- index.html ------------------------------------------------------------------------------------------------ */

static void esc(GString *o, const char *s) {
  char *e = g_markup_escape_text(s ? s : "", -1);
  g_string_append(o, e);
  g_free(e);
}

/* Copies @src to DIR/report/NAME; returns "report/NAME" or NULL. */
static char *copy_asset(const char *dir, const char *src, const char *name) {
  char *data = NULL;
  gsize len = 0;
  if (!src || !g_file_get_contents(src, &data, &len, NULL)) return NULL;
  char *rel = g_build_filename("report", name, NULL);
  char *dst = g_build_filename(dir, rel, NULL);
  gboolean ok = rat_file_write_atomic(dst, data, len, NULL);
  g_free(dst);
  g_free(data);
  if (!ok) g_clear_pointer(&rel, g_free);
  return rel;
}

static void html_summary_table(GString *o, const RatAblateResults *r) {
  g_string_append(o, "<table><tr><th>variant</th><th>seeds</th>");
  for (guint m = 0; m < r->metrics->len; m++) {
    const char *metric = r->metrics->pdata[m];
    int d = GPOINTER_TO_INT(g_hash_table_lookup(r->higher_is_better, metric));
    g_string_append(o, "<th>");
    esc(o, metric);
    g_string_append_printf(o, "%s</th><th>&Delta; vs ", d == 1 ? " &uarr;" : d == 2 ? " &darr;" : "");
    esc(o, r->variants->pdata[r->baseline]);
    g_string_append(o, "</th>");
  }
  g_string_append(o, "</tr>\n");
  for (guint v = 0; v < r->variants->len; v++) {
    g_string_append(o, "<tr><td>");
    esc(o, r->variants->pdata[v]);
    if (v == r->baseline) g_string_append(o, " (baseline)");
    char *sc = rat_ablate_seeds_cell(r, v);
    g_string_append(o, "</td><td class=n>");
    esc(o, sc);
    g_string_append(o, "</td>");
    g_free(sc);
    for (guint m = 0; m < r->metrics->len; m++) {
      RatAblateSummary s = rat_ablate_summary(r, v, m);
      char *cell = rat_ablate_fmt_cell(&s, " ± "), *cmp = rat_ablate_fmt_compare(r, v, &s);
      g_string_append_printf(o, "<td class=n>%s", s.best ? "<b>" : "");
      esc(o, cell);
      g_string_append_printf(o, "%s</td><td>", s.best ? "</b>" : "");
      esc(o, cmp);
      g_string_append(o, "</td>");
      g_free(cell);
      g_free(cmp);
    }
    g_string_append(o, "</tr>\n");
  }
  g_string_append(o, "</table>\n");
}

gboolean rat_ablate_html(const RatAblateResults *r, const char *dir, GError **error) {
  char *rep = g_build_filename(dir, "report", NULL);
  g_mkdir_with_parents(rep, 0755);
  g_free(rep);
  GString *o = g_string_new("<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8><title>Ablation: ");
  esc(o, r->title);
  g_string_append(o, "</title>\n<style>body{font-family:sans-serif;max-width:1200px;margin:1em auto;padding:0 1em}"
                     "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
                     "vertical-align:top}th{background:#f3f3f3}td.n{text-align:right;white-space:nowrap}"
                     "pre{background:#f7f7f7;padding:.5em;overflow-x:auto;font-size:90%}"
                     "figure{display:inline-block;margin:.3em;vertical-align:top}figcaption{font-size:85%}"
                     "img.px{image-rendering:pixelated;max-width:100%}p.note{font-size:90%;color:#333}</style>"
                     "</head><body>\n<h1>Ablation: ");
  esc(o, r->title);
  g_string_append(o, "</h1>\n");
  if (r->description) {
    g_string_append(o, "<p>");
    esc(o, r->description);
    g_string_append(o, "</p>\n");
  }
  g_string_append(o, "<h2>Results</h2>\n");
  if (!r->metrics->len) g_string_append(o, "<p>No run has been evaluated yet.</p>\n");
  else html_summary_table(o, r);
  g_string_append(o, "<p class=note>Each cell is the mean &plusmn; sample standard deviation (divisor n &minus; 1) "
                     "over the seeds that trained and were evaluated; bold: the best mean of each metric. &Delta; is "
                     "the mean minus the baseline's mean; p is Welch's two-sided t-test (unequal variances) of the "
                     "variant's seeds against the baseline's: &ldquo;larger than noise&rdquo; when p &lt; 0.05. n/a: "
                     "fewer than 2 seeds on a side, so the noise cannot be measured. With 3 seeds the test has "
                     "little power, and about 1 comparison in 20 reads &ldquo;larger than noise&rdquo; by chance. "
                     "The same table: <a href=\"table.md\">table.md</a>, <a href=\"table.csv\">table.csv</a>, "
                     "<a href=\"table.tex\">table.tex</a>.</p>\n<p><img src=\"chart.png\" alt=\"chart\" "
                     "style=\"max-width:100%\"></p>\n");
  /* variants: overrides, then each seed's sample grid and loss curve */
  g_string_append(o, "<h2>Variants</h2>\n");
  for (guint v = 0; v < r->variants->len; v++) {
    g_string_append(o, "<h3>");
    esc(o, r->variants->pdata[v]);
    if (v == r->baseline) g_string_append(o, " (baseline)");
    g_string_append(o, "</h3>\n");
    if (v < r->variant_yaml->len) {
      g_string_append(o, "<pre>");
      esc(o, r->variant_yaml->pdata[v]);
      g_string_append(o, "</pre>\n");
    }
    for (guint i = 0; i < r->records->len; i++) {
      const RatAblateRecord *rec = r->records->pdata[i];
      if (rec->variant != v) continue;
      char *base = g_strdup_printf("%s-seed%" G_GINT64_FORMAT, (char *)r->variants->pdata[v], rec->seed);
      char *sname = g_strdup_printf("%s-samples.png", base), *lname = g_strdup_printf("%s-losses.png", base);
      char *s_rel = copy_asset(dir, rec->samples_png, sname), *l_rel = copy_asset(dir, rec->losses_png, lname);
      g_string_append_printf(o, "<figure><figcaption>seed %" G_GINT64_FORMAT " (run %s, %s)</figcaption>", rec->seed,
                             rec->run ? rec->run : "?", rec->state);
      if (s_rel) g_string_append_printf(o, "<a href=\"%s\"><img class=px src=\"%s\" alt=\"samples\" width=320></a>", s_rel, s_rel);
      if (l_rel) g_string_append_printf(o, "<a href=\"%s\"><img src=\"%s\" alt=\"losses\" width=320></a>", l_rel, l_rel);
      if (!s_rel && !l_rel) g_string_append(o, "<br>(no pictures yet)");
      g_string_append(o, "</figure>\n");
      g_free(s_rel);
      g_free(l_rel);
      g_free(sname);
      g_free(lname);
      g_free(base);
    }
  }
  /* runs */
  g_string_append(o, "<h2>Runs</h2>\n<table><tr><th>variant</th><th>seed</th><th>run</th><th>state</th>");
  for (guint m = 0; m < r->metrics->len; m++) {
    g_string_append(o, "<th>");
    esc(o, r->metrics->pdata[m]);
    g_string_append(o, "</th>");
  }
  g_string_append(o, "<th>steps</th><th>training (wall)</th><th>evaluation (wall)</th></tr>\n");
  double total_train = 0, total_eval = 0;
  for (guint i = 0; i < r->records->len; i++) {
    const RatAblateRecord *rec = r->records->pdata[i];
    total_train += rec->train_seconds;
    total_eval += rec->eval_seconds;
    g_string_append(o, "<tr><td>");
    esc(o, r->variants->pdata[rec->variant]);
    g_string_append_printf(o, "</td><td class=n>%" G_GINT64_FORMAT "</td><td><code>%s</code></td><td>", rec->seed,
                           rec->run ? rec->run : "");
    esc(o, rec->state);
    if (rec->error) {
      g_string_append(o, "<pre>");
      esc(o, rec->error);
      g_string_append(o, "</pre>");
    }
    g_string_append(o, "</td>");
    for (guint m = 0; m < r->metrics->len; m++) {
      const double *x = rec->metrics ? g_hash_table_lookup(rec->metrics, r->metrics->pdata[m]) : NULL;
      if (x) g_string_append_printf(o, "<td class=n>%.6g</td>", *x);
      else g_string_append(o, "<td></td>");
    }
    g_string_append_printf(o, "<td class=n>%" G_GINT64_FORMAT "</td><td class=n>%.0f s", rec->steps, rec->train_seconds);
    if (rec->train_cpu_seconds > 0) g_string_append_printf(o, " (CPU %.0f s)", rec->train_cpu_seconds);
    g_string_append_printf(o, "</td><td class=n>%.0f s", rec->eval_seconds);
    if (rec->eval_cpu_seconds > 0) g_string_append_printf(o, " (CPU %.0f s)", rec->eval_cpu_seconds);
    g_string_append(o, "</td></tr>\n");
  }
  g_string_append(o, "</table>\n");
  /* protocol */
  g_string_append(o, "<h2>Protocol</h2>\n<table>\n");
  const struct {
    const char *k, *v;
  } rows[] = {{"sweep file", r->sweep_path}, {"base experiment", r->base_path}, {"seeds", r->seeds},
              {"ratfw version", r->ratfw_version}, {"git revision", r->git_revision}};
  for (guint i = 0; i < G_N_ELEMENTS(rows); i++) {
    if (!rows[i].v) continue;
    g_string_append_printf(o, "<tr><th>%s</th><td>", rows[i].k);
    esc(o, rows[i].v);
    g_string_append(o, "</td></tr>\n");
  }
  g_string_append(o, "<tr><th>baseline</th><td>");
  esc(o, r->variants->pdata[r->baseline]);
  g_string_append(o, "</td></tr>\n<tr><th>steps per variant</th><td>");
  for (guint v = 0; v < r->variants->len; v++) {
    g_string_append_printf(o, "%s", v ? ", " : "");
    esc(o, r->variants->pdata[v]);
    g_string_append_printf(o, " %" G_GINT64_FORMAT, g_array_index(r->steps, gint64, v));
  }
  g_string_append_printf(o, "</td></tr>\n<tr><th>wall time</th><td>training %.0f s, evaluation %.0f s (sum over runs)"
                            "</td></tr>\n</table>\n", total_train, total_eval);
  if (r->common_yaml) {
    g_string_append(o, "<h3>Overrides of every variant</h3><pre>");
    esc(o, r->common_yaml);
    g_string_append(o, "</pre>\n");
  }
  if (r->eval_yaml) {
    g_string_append(o, "<h3>Evaluation settings (ratfw eval)</h3><pre>");
    esc(o, r->eval_yaml);
    g_string_append(o, "</pre>\n");
  }
  if (r->base_yaml) {
    g_string_append(o, "<h3>The baseline's resolved experiment</h3><details><summary>show</summary><pre>");
    esc(o, r->base_yaml);
    g_string_append(o, "</pre></details>\n");
  }
  g_string_append(o, "</body></html>\n");
  char *path = g_build_filename(dir, "index.html", NULL);
  gboolean ok = rat_file_write_atomic(path, o->str, o->len, error);
  g_free(path);
  g_string_free(o, TRUE);
  return ok;
}
