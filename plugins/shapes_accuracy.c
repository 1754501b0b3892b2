/* shapes_accuracy: for the procedural `shapes` dataset (core/data/shapes.c), the share of generated images whose
 * shapes have the kind, colour and position their caption states, measured from the pixels against the renderer's
 * ground truth of the caption's item; no network. Per image:
 *   1. background: the median colour of each background region the item declares (one, or two halves of a split);
 *      its nearest palette colour is the measured background colour;
 *   2. foreground: pixels farther than 0.2 (RGB in [0, 1]) from the background colour of their region (from the
 *      segment between the two colours near a split line), in 8-connected components; the n largest (n = objects
 *      stated) are matched greedily to the stated objects by distance to their cells' centres;
 *   3. per object: position = the 3x3 cell of the component's centroid; colour = the nearest palette colour of the
 *      mean of its core pixels (those at least 70% as far from the background as its farthest pixel); kind and size
 *      = the (kind, size, rotation) whose rendering by the dataset's own renderer best fits the component's coverage
 *      alpha = <p - bg, f - bg> / |f - bg|^2 (least squares over the component's box).
 * An image counts as correct when every stated object has the right kind, colour and position. The values:
 * shapes_accuracy (that share) and shapes_accuracy_{kind,color,position,size,background} (per stated object; the
 * background per image). Chance is about 1/8 for the kind, 1/12 for the colour, 1/9 for the position. */
#include <ratfw/eval.h>
#include <ratfw/ratfw.h>

#include <math.h>
#include <string.h>

#define FG_THRESHOLD 0.2
#define N_ANGLES 12

/* The renderer's radius per size (core/data/shapes.c, size_radius) and rotational symmetry per kind. */
static const double size_radius[RAT_SHAPES_N_SIZES] = {0.07, 0.11, 0.15};
static const int kind_symmetry[RAT_SHAPES_N_KINDS] = {1, 4, 3, 5, 6, 2, 5, 4};

typedef struct {
  gint64 images, images_ok, objects, kind_ok, color_ok, position_ok, size_ok, background_ok;
} ShapesPriv;

typedef struct {
  int cell, color, kind, size; /* -1 when no component was found */
} Measured;

static void palette_f(int c, double out[3]) {
  guint8 rgb[3];
  rat_shapes_color_rgb(c, rgb);
  for (int k = 0; k < 3; k++) out[k] = rgb[k] / 255.0;
}

static int nearest_color(const double v[3]) {
  int best = 0;
  double bd = G_MAXDOUBLE;
  for (int c = 0; c < RAT_SHAPES_N_COLORS; c++) {
    double p[3], d = 0;
    palette_f(c, p);
    for (int k = 0; k < 3; k++) d += (v[k] - p[k]) * (v[k] - p[k]);
    if (d < bd) bd = d, best = c;
  }
  return best;
}

/* Signed position of a pixel centre relative to the split line of a two-tone background, in pixels (> 0: colour 1),
 * the renderer's convention. */
static double split_side(RatShapesBackground bg, double x, double y, int S) {
  switch (bg) {
  case RAT_SHAPES_BG_LEFT_RIGHT: return (x - 0.5) * S;
  case RAT_SHAPES_BG_TOP_BOTTOM: return (y - 0.5) * S;
  case RAT_SHAPES_BG_DIAGONAL: return (x + y - 1.0) / G_SQRT2 * S;
  default: return -1e9;
  }
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double dist3(const double a[3], const double b[3]) {
  return sqrt((a[0] - b[0]) * (a[0] - b[0]) + (a[1] - b[1]) * (a[1] - b[1]) + (a[2] - b[2]) * (a[2] - b[2]));
}

/* Distance from @p to the segment [a, b] in RGB. */
static double dist_segment(const double p[3], const double a[3], const double b[3]) {
  double ab[3], ap[3], t = 0, l = 0;
  for (int k = 0; k < 3; k++) ab[k] = b[k] - a[k], ap[k] = p[k] - a[k], t += ab[k] * ap[k], l += ab[k] * ab[k];
  t = l > 0 ? CLAMP(t / l, 0.0, 1.0) : 0.0;
  double q[3];
  for (int k = 0; k < 3; k++) q[k] = a[k] + t * ab[k];
  return dist3(p, q);
}

/* Least-squares misfit of the coverage @alpha [S*S] (inside the box) against a rendering of one shape. */
static double misfit(const float *alpha, int S, const int box[4], RatShapesKind kind, double cx, double cy, double r,
                     double angle) {
  RatShapesItem t = {0};
  t.background = RAT_SHAPES_BG_PLAIN;
  t.bg_color[0] = t.bg_color[1] = 11; /* black */
  t.n_objects = 1;
  t.objects[0] = (RatShapesObject){.kind = kind, .color = 10 /* white */, .cx = cx, .cy = cy, .radius = r, .angle = angle};
  double lo[3], hi[3];
  palette_f(11, lo);
  palette_f(10, hi);
  RatScope sc = rat_scope_push();
  const float *img = rat_tensor_data(rat_shapes_render(&t, S)); /* [3, S, S], plane 0 is red */
  double e = 0;
  for (int y = box[1]; y < box[3]; y++)
    for (int x = box[0]; x < box[2]; x++) {
      double a = (img[y * S + x] - lo[0]) / (hi[0] - lo[0]);
      double d = a - alpha[y * S + x];
      e += d * d;
    }
  rat_scope_pop(sc);
  return e;
}

/* Best (kind, size) for the coverage: each kind and size at N_ANGLES rotations over its symmetry period, then two
 * refinements around the best rotation. */
static void classify_shape(const float *alpha, int S, const int box[4], double cx, double cy, int *kind_out,
                           int *size_out) {
  double best = G_MAXDOUBLE;
  *kind_out = 0;
  *size_out = 0;
  for (int k = 0; k < RAT_SHAPES_N_KINDS; k++)
    for (int s = 0; s < RAT_SHAPES_N_SIZES; s++) {
      double period = 2 * G_PI / kind_symmetry[k];
      int na = k == RAT_SHAPES_CIRCLE ? 1 : N_ANGLES;
      double step = period / na, bk = G_MAXDOUBLE, ba = 0;
      for (int a = 0; a < na; a++) {
        double e = misfit(alpha, S, box, (RatShapesKind)k, cx, cy, size_radius[s], a * step);
        if (e < bk) bk = e, ba = a * step;
      }
      for (int ref = 0; ref < 2 && na > 1; ref++) {
        step /= 2;
        for (int sgn = -1; sgn <= 1; sgn += 2) {
          double a = ba + sgn * step;
          double e = misfit(alpha, S, box, (RatShapesKind)k, cx, cy, size_radius[s], a);
          if (e < bk) bk = e, ba = a;
        }
      }
      if (bk < best) best = bk, *kind_out = k, *size_out = s;
    }
}

typedef struct {
  gint64 area;
  double sx, sy; /* sums of pixel centres */
  int x0, y0, x1, y1;
  GArray *pixels; /* int: y * S + x */
} Component;

static gint cmp_area(gconstpointer a, gconstpointer b) {
  gint64 x = ((const Component *)a)->area, y = ((const Component *)b)->area;
  return (y > x) - (y < x);
}

/* Measures one image @u [3, S, S] in [0, 1] against the stated @truth. Returns whether the background matched;
 * fills @m per stated object. */
static gboolean measure(const float *u, int S, const RatShapesItem *truth, Measured *m) {
  const gsize P = (gsize)S * S;
  /* 1. background colours per region (away from the split line) */
  double bg[2][3] = {{0}};
  gboolean two = truth->background != RAT_SHAPES_BG_PLAIN;
  double *vals = g_new(double, P);
  gboolean bg_ok = TRUE;
  for (int region = 0; region < (two ? 2 : 1); region++) {
    for (int c = 0; c < 3; c++) {
      gsize n = 0;
      for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
          double d = split_side(truth->background, (x + 0.5) / S, (y + 0.5) / S, S);
          if (two && ((region == 1) != (d > 0) || fabs(d) < 1.5)) continue;
          vals[n++] = u[c * P + (gsize)y * S + x];
        }
      if (!n) continue;
      qsort(vals, n, sizeof(double), cmp_double);
      bg[region][c] = vals[n / 2];
    }
    if (nearest_color(bg[region]) != truth->bg_color[region]) bg_ok = FALSE;
  }
  g_free(vals);
  if (!two) memcpy(bg[1], bg[0], sizeof bg[0]);
  /* 2. foreground mask and the background colour behind each pixel */
  guint8 *fg = g_new0(guint8, P);
  float *bgp = g_new(float, 3 * P), *dist = g_new(float, P);
  for (int y = 0; y < S; y++)
    for (int x = 0; x < S; x++) {
      gsize i = (gsize)y * S + x;
      double p[3] = {u[i], u[P + i], u[2 * P + i]};
      double d = split_side(truth->background, (x + 0.5) / S, (y + 0.5) / S, S);
      int region = two && d > 0;
      double dd = two && fabs(d) < 1.5 ? dist_segment(p, bg[0], bg[1]) : dist3(p, bg[region]);
      double a = two ? CLAMP(0.5 + d, 0.0, 1.0) : 0.0; /* the renderer's blend across the split */
      for (int c = 0; c < 3; c++) bgp[c * P + i] = (float)(bg[0][c] * (1 - a) + bg[1][c] * a);
      dist[i] = (float)dd;
      fg[i] = dd > FG_THRESHOLD;
    }
  /* connected components (8-connected) */
  GArray *comps = g_array_new(FALSE, TRUE, sizeof(Component));
  int *stack = g_new(int, P);
  guint8 *seen = g_new0(guint8, P);
  double min_area = MAX(2.0, 0.25 * G_PI * (size_radius[0] * S) * (size_radius[0] * S));
  for (gsize i0 = 0; i0 < P; i0++) {
    if (!fg[i0] || seen[i0]) continue;
    Component c = {.x0 = S, .y0 = S, .x1 = -1, .y1 = -1, .pixels = g_array_new(FALSE, FALSE, sizeof(int))};
    int top = 0;
    stack[top++] = (int)i0;
    seen[i0] = 1;
    while (top) {
      int i = stack[--top], x = i % S, y = i / S;
      g_array_append_val(c.pixels, i);
      c.area++;
      c.sx += x + 0.5;
      c.sy += y + 0.5;
      c.x0 = MIN(c.x0, x), c.y0 = MIN(c.y0, y), c.x1 = MAX(c.x1, x), c.y1 = MAX(c.y1, y);
      for (int dy = -1; dy <= 1; dy++)
        for (int dx = -1; dx <= 1; dx++) {
          int xx = x + dx, yy = y + dy;
          if (xx < 0 || yy < 0 || xx >= S || yy >= S) continue;
          int j = yy * S + xx;
          if (fg[j] && !seen[j]) seen[j] = 1, stack[top++] = j;
        }
    }
    if (c.area >= min_area) g_array_append_val(comps, c);
    else g_array_unref(c.pixels);
  }
  g_array_sort(comps, cmp_area);
  /* 3. match components to the stated objects, then measure each */
  gboolean *used = g_new0(gboolean, comps->len);
  float *alpha = g_new(float, P);
  for (int k = 0; k < truth->n_objects; k++) {
    const RatShapesObject *o = &truth->objects[k];
    double tx = (o->cell % 3 + 0.5) / 3.0 * S, ty = (o->cell / 3 + 0.5) / 3.0 * S;
    int pick = -1;
    double pd = G_MAXDOUBLE;
    for (guint c = 0; c < MIN(comps->len, (guint)truth->n_objects); c++) {
      Component *cp = &g_array_index(comps, Component, c);
      double d = hypot(cp->sx / cp->area - tx, cp->sy / cp->area - ty);
      if (!used[c] && d < pd) pd = d, pick = (int)c;
    }
    m[k] = (Measured){-1, -1, -1, -1};
    if (pick < 0) continue;
    used[pick] = TRUE;
    Component *cp = &g_array_index(comps, Component, pick);
    double cx = cp->sx / cp->area / S, cy = cp->sy / cp->area / S;
    m[k].cell = CLAMP((int)(cy * 3), 0, 2) * 3 + CLAMP((int)(cx * 3), 0, 2);
    /* colour: mean of the core pixels */
    double dmax = 0, col[3] = {0};
    for (guint q = 0; q < cp->pixels->len; q++) dmax = MAX(dmax, dist[g_array_index(cp->pixels, int, q)]);
    int nc = 0;
    for (guint q = 0; q < cp->pixels->len; q++) {
      int i = g_array_index(cp->pixels, int, q);
      if (dist[i] < 0.7 * dmax) continue;
      for (int c = 0; c < 3; c++) col[c] += u[c * P + i];
      nc++;
    }
    for (int c = 0; c < 3; c++) col[c] /= MAX(nc, 1);
    m[k].color = nearest_color(col);
    /* coverage over the component's box (grown by 2 px), its centroid, then the best-fitting rendering */
    int box[4] = {MAX(0, cp->x0 - 2), MAX(0, cp->y0 - 2), MIN(S, cp->x1 + 3), MIN(S, cp->y1 + 3)};
    double wa = 0, wx = 0, wy = 0;
    for (int y = box[1]; y < box[3]; y++)
      for (int x = box[0]; x < box[2]; x++) {
        gsize i = (gsize)y * S + x;
        double num = 0, den = 0;
        for (int c = 0; c < 3; c++) {
          double f = col[c] - bgp[c * P + i];
          num += (u[c * P + i] - bgp[c * P + i]) * f;
          den += f * f;
        }
        double a = den > 0 ? CLAMP(num / den, 0.0, 1.0) : 0.0;
        alpha[i] = (float)a;
        wa += a, wx += a * (x + 0.5), wy += a * (y + 0.5);
      }
    if (wa > 0) cx = wx / wa / S, cy = wy / wa / S;
    classify_shape(alpha, S, box, cx, cy, &m[k].kind, &m[k].size);
  }
  for (guint c = 0; c < comps->len; c++) g_array_unref(g_array_index(comps, Component, c).pixels);
  g_array_unref(comps);
  g_free(used);
  g_free(alpha);
  g_free(stack);
  g_free(seen);
  g_free(fg);
  g_free(bgp);
  g_free(dist);
  return bg_ok;
}

static gboolean sa_build(RatModule *m, const RatBuildContext *ctx, GError **error) { return TRUE; }

static gboolean sa_begin(RatModule *m, RatEvalContext *ctx, RatMetricResult *res, GError **error) {
  const RatDatasetIface *di = RAT_DATASET_IFACE(ctx->dataset);
  if (strcmp(ctx->dataset->type->name, "shapes") || !di->attributes) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "shapes_accuracy needs the shapes dataset (its ground truth), not "
                "%s: drop it from the metrics", ctx->dataset->type->name);
    return FALSE;
  }
  rat_metric_result_protocol_string(res, "measure", "from pixels: background medians, foreground > 0.2 from the "
                                    "background, components matched to the stated objects, palette colour of the core "
                                    "pixels, cell of the centroid, best-fitting rendering (kind, size, rotation)");
  rat_metric_result_protocol_string(res, "correct", "every stated object has the stated kind, colour and position");
  return TRUE;
}

static gboolean sa_accumulate(RatModule *m, RatEvalContext *ctx, const RatMetricBatch *b, GError **error) {
  ShapesPriv *p = RAT_MODULE_PRIV(m, ShapesPriv);
  RatTensor *img = rat_contiguous(b->images); /* [n, 3, S, S] in [-1, 1] */
  int S = (int)img->shape[2];
  gsize per = (gsize)3 * S * S;
  const float *x = rat_tensor_data(img);
  float *u = g_new(float, per);
  for (guint i = 0; i < b->n; i++) {
    RatShapesItem truth;
    if (!RAT_DATASET_IFACE(ctx->dataset)->attributes(ctx->dataset, ctx->split, b->items[i], &truth)) {
      g_set_error(error, RAT_ERROR, RAT_ERROR_NOT_FOUND, "shapes_accuracy: item %u has no attributes", b->items[i]);
      g_free(u);
      return FALSE;
    }
    for (gsize k = 0; k < per; k++) u[k] = 0.5f * x[i * per + k] + 0.5f;
    Measured mo[RAT_SHAPES_MAX_OBJECTS];
    gboolean bg = measure(u, S, &truth, mo);
    gboolean all = TRUE;
    for (int k = 0; k < truth.n_objects; k++) {
      const RatShapesObject *o = &truth.objects[k];
      gboolean kind = mo[k].kind == (int)o->kind, color = mo[k].color == o->color, pos = mo[k].cell == o->cell;
      p->kind_ok += kind;
      p->color_ok += color;
      p->position_ok += pos;
      p->size_ok += mo[k].size == (int)o->size;
      all = all && kind && color && pos;
    }
    p->objects += truth.n_objects;
    p->background_ok += bg;
    p->images_ok += all;
    p->images++;
  }
  g_free(u);
  return TRUE;
}

static gboolean sa_finish(RatModule *m, RatEvalContext *ctx, RatMetricResult *res, GError **error) {
  ShapesPriv *p = RAT_MODULE_PRIV(m, ShapesPriv);
  double ni = (double)MAX(p->images, 1), no = (double)MAX(p->objects, 1);
  rat_metric_result_value(res, "shapes_accuracy", p->images_ok / ni, TRUE);
  rat_metric_result_value(res, "shapes_accuracy_kind", p->kind_ok / no, TRUE);
  rat_metric_result_value(res, "shapes_accuracy_color", p->color_ok / no, TRUE);
  rat_metric_result_value(res, "shapes_accuracy_position", p->position_ok / no, TRUE);
  rat_metric_result_value(res, "shapes_accuracy_size", p->size_ok / no, TRUE);
  rat_metric_result_value(res, "shapes_accuracy_background", p->background_ok / ni, TRUE);
  rat_metric_result_protocol_int(res, "objects", p->objects);
  return TRUE;
}

static gboolean sa_by_default(RatEvalContext *ctx) {
  return ctx->dataset && !strcmp(ctx->dataset->type->name, "shapes") && RAT_DATASET_IFACE(ctx->dataset)->attributes;
}

static const RatMetricIface sa_iface = {.begin = sa_begin, .accumulate = sa_accumulate, .finish = sa_finish,
                                        .by_default = sa_by_default};

static const RatModuleType sa_type = {
    .struct_size = sizeof(RatModuleType),
    .name = "shapes_accuracy",
    .kind = RAT_KIND_METRIC,
    .doc = "Share of generated shapes images whose stated objects have the stated kind, colour and position, "
           "measured from pixels against the renderer's ground truth (no network); per-attribute accuracies too. "
           "Higher is better.",
    .options_size = 0,
    .priv_size = sizeof(ShapesPriv),
    .build = sa_build,
    .iface = &sa_iface,
};

static gboolean sa_init(RatRegistry *reg, GError **error) { return rat_registry_add_type(reg, &sa_type, error); }

RAT_PLUGIN_DEFINE("shapes_accuracy", "0.1.0", "MIT", "shapes accuracy metric (no network)", sa_init)
