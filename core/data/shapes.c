/* Procedural shapes: a seeded, unbounded source of coloured shapes on plain or two-tone backgrounds with captions
 * that state every attribute, and the attributes themselves for metrics. Item i is drawn from the RatRng stream
 * (seed ^ SHAPES_TAG, offset i << 8), so it depends only on (seed, i). Rendering is antialiased by signed-distance
 * coverage: a pixel takes clamp(0.5 - d * size, 0, 1) of a shape whose boundary is at distance d from its centre. */
#include "config.h"

#include "ratfw-private.h"
#include <ratfw/data.h>

#include <math.h>

#define SHAPES_TAG 0x5348415045530000ull /* "SHAPES" in the high bytes of the Philox key */
#define MIN_CONTRAST 110.0               /* RGB distance between a shape and each background colour */

static const struct {
  const char *name;
  guint8 rgb[3];
} palette[RAT_SHAPES_N_COLORS] = {
    {"red", {220, 40, 40}},     {"green", {40, 170, 60}},   {"blue", {40, 80, 220}},    {"yellow", {245, 215, 40}},
    {"orange", {245, 140, 30}}, {"purple", {140, 60, 180}}, {"pink", {245, 130, 190}},  {"cyan", {50, 200, 220}},
    {"brown", {140, 90, 50}},   {"gray", {128, 128, 128}},  {"white", {250, 250, 250}}, {"black", {20, 20, 20}},
};

static const char *const kind_names[RAT_SHAPES_N_KINDS] = {"circle",  "square",  "triangle", "star",
                                                           "hexagon", "diamond", "pentagon", "cross"};
static const char *const size_names[RAT_SHAPES_N_SIZES] = {"small", "medium", "large"};
static const double size_radius[RAT_SHAPES_N_SIZES] = {0.07, 0.11, 0.15}; /* image units; a cell is 1/3 */
static const char *const cell_names[9] = {"top left", "top",         "top right", "left",        "center",
                                          "right",    "bottom left", "bottom",    "bottom right"};
static const char *const cell_where[9] = {"at the top left",    "at the top",    "at the top right",
                                          "on the left",        "in the center", "on the right",
                                          "at the bottom left", "at the bottom", "at the bottom right"};
/* Rotational symmetry order (a rotation by 2 pi / order changes nothing). */
static const int kind_symmetry[RAT_SHAPES_N_KINDS] = {1, 4, 3, 5, 6, 2, 5, 4};

const char *rat_shapes_kind_name(RatShapesKind kind) {
  return (guint)kind < RAT_SHAPES_N_KINDS ? kind_names[kind] : NULL;
}
const char *rat_shapes_size_name(RatShapesSize size) {
  return (guint)size < RAT_SHAPES_N_SIZES ? size_names[size] : NULL;
}
const char *rat_shapes_color_name(int color) {
  return color >= 0 && color < RAT_SHAPES_N_COLORS ? palette[color].name : NULL;
}
const char *rat_shapes_cell_name(int cell) { return cell >= 0 && cell < 9 ? cell_names[cell] : NULL; }

void rat_shapes_color_rgb(int color, guint8 rgb[3]) {
  rat_check(color >= 0 && color < RAT_SHAPES_N_COLORS, "rat_shapes_color_rgb: colour %d", color);
  memcpy(rgb, palette[color].rgb, 3);
}

static double color_distance(int a, int b) {
  double d = 0;
  for (int c = 0; c < 3; c++)
    d += ((double)palette[a].rgb[c] - palette[b].rgb[c]) * ((double)palette[a].rgb[c] - palette[b].rgb[c]);
  return sqrt(d);
}

RatShapesOptions rat_shapes_options_default(guint64 seed) {
  return (RatShapesOptions){.seed = seed, .max_objects = 1, .two_tone = TRUE, .rotate = TRUE};
}

static gboolean contrasts(int c, const int *avoid, int n) {
  for (int j = 0; j < n; j++)
    if (color_distance(c, avoid[j]) < MIN_CONTRAST)
      return FALSE;
  return TRUE;
}

/* A colour at least MIN_CONTRAST from each of avoid[0..n): up to 32 draws, then the first in the palette. */
static int pick_color(RatRng *rng, const int *avoid, int n) {
  for (int attempt = 0; attempt < 32; attempt++) {
    int c = (int)rat_rng_below(rng, RAT_SHAPES_N_COLORS);
    if (contrasts(c, avoid, n))
      return c;
  }
  for (int c = 0; c < RAT_SHAPES_N_COLORS; c++)
    if (contrasts(c, avoid, n))
      return c;
  return 0;
}

void rat_shapes_sample(const RatShapesOptions *opt, guint64 index, RatShapesItem *item) {
  rat_check(opt->max_objects >= 1 && opt->max_objects <= RAT_SHAPES_MAX_OBJECTS, "rat_shapes_sample: max_objects %d",
            opt->max_objects);
  RatRng rng;
  rat_rng_set_state(&rng, opt->seed ^ SHAPES_TAG, index << 8);
  memset(item, 0, sizeof *item);
  item->n_objects = 1 + (int)rat_rng_below(&rng, (guint64)opt->max_objects);
  item->background = RAT_SHAPES_BG_PLAIN;
  if (opt->two_tone && rat_rng_double(&rng) < 0.5)
    item->background = (RatShapesBackground)(1 + rat_rng_below(&rng, RAT_SHAPES_N_BGS - 1));
  item->bg_color[0] = (int)rat_rng_below(&rng, RAT_SHAPES_N_COLORS);
  item->bg_color[1] = item->bg_color[0];
  int n_bg = 1;
  if (item->background != RAT_SHAPES_BG_PLAIN) {
    item->bg_color[1] = pick_color(&rng, item->bg_color, 1);
    n_bg = 2;
  }
  int cells[9];
  for (int k = 0; k < 9; k++)
    cells[k] = k;
  for (int k = 0; k < item->n_objects; k++) { /* partial Fisher-Yates */
    int j = k + (int)rat_rng_below(&rng, (guint64)(9 - k));
    int t = cells[k];
    cells[k] = cells[j];
    cells[j] = t;
  }
  for (int k = 0; k < item->n_objects; k++) {
    RatShapesObject *o = &item->objects[k];
    o->kind = (RatShapesKind)rat_rng_below(&rng, RAT_SHAPES_N_KINDS);
    o->size = (RatShapesSize)rat_rng_below(&rng, RAT_SHAPES_N_SIZES);
    o->color = pick_color(&rng, item->bg_color, n_bg);
    o->cell = cells[k];
    o->radius = size_radius[o->size];
    double slack = 1.0 / 6.0 - o->radius - 0.01; /* keeps the shape inside its cell */
    o->cx = (o->cell % 3 + 0.5) / 3.0 + (2 * rat_rng_double(&rng) - 1) * slack;
    o->cy = (o->cell / 3 + 0.5) / 3.0 + (2 * rat_rng_double(&rng) - 1) * slack;
    double u = rat_rng_double(&rng);
    o->angle = (opt->rotate && o->kind != RAT_SHAPES_CIRCLE) ? u * 2 * G_PI / kind_symmetry[o->kind] : 0.0;
  }
}

/* ---- rendering --------------------------------------------------------------------------------------------- */

#define MAX_VERTS 12

typedef struct {
  int n;
  double x[MAX_VERTS], y[MAX_VERTS];
} Poly;

/* Outline in image units; vertex angles measured from "up", clockwise on screen. */
static void shape_polygon(const RatShapesObject *o, Poly *p) {
  double r = o->radius, rad[MAX_VERTS], ang[MAX_VERTS];
  int n = 0;
  switch (o->kind) {
  case RAT_SHAPES_SQUARE:
  case RAT_SHAPES_TRIANGLE:
  case RAT_SHAPES_PENTAGON:
  case RAT_SHAPES_HEXAGON: {
    n = o->kind == RAT_SHAPES_SQUARE ? 4 : o->kind == RAT_SHAPES_TRIANGLE ? 3 : o->kind == RAT_SHAPES_PENTAGON ? 5 : 6;
    double start = o->kind == RAT_SHAPES_SQUARE ? G_PI / 4 : o->kind == RAT_SHAPES_HEXAGON ? G_PI / 6 : 0.0;
    for (int k = 0; k < n; k++) {
      rad[k] = r;
      ang[k] = start + 2 * G_PI * k / n;
    }
    break;
  }
  case RAT_SHAPES_DIAMOND:
    n = 4;
    for (int k = 0; k < 4; k++) {
      rad[k] = k % 2 ? 0.62 * r : r;
      ang[k] = G_PI / 2 * k;
    }
    break;
  case RAT_SHAPES_STAR:
    n = 10;
    for (int k = 0; k < 10; k++) {
      rad[k] = k % 2 ? 0.45 * r : r;
      ang[k] = G_PI / 5 * k;
    }
    break;
  case RAT_SHAPES_CROSS: { /* plus sign: arms of half-width a reaching to r */
    double a = 0.34 * r;
    const double px[12] = {-a, a, a, r, r, a, a, -a, -a, -r, -r, -a};
    const double py[12] = {-r, -r, -a, -a, a, a, r, r, a, a, -a, -a};
    n = 12;
    for (int k = 0; k < 12; k++) {
      rad[k] = hypot(px[k], py[k]);
      ang[k] = atan2(px[k], -py[k]);
    }
    break;
  }
  default: break;
  }
  p->n = n;
  for (int k = 0; k < n; k++) {
    double t = ang[k] + o->angle;
    p->x[k] = o->cx + rad[k] * sin(t);
    p->y[k] = o->cy - rad[k] * cos(t);
  }
}

/* Signed distance to a simple polygon (negative inside; even-odd rule). */
static double poly_sd(const Poly *p, double x, double y) {
  double best = G_MAXDOUBLE;
  gboolean inside = FALSE;
  for (int i = 0, j = p->n - 1; i < p->n; j = i++) {
    double ex = p->x[i] - p->x[j], ey = p->y[i] - p->y[j], wx = x - p->x[j], wy = y - p->y[j];
    double t = CLAMP((wx * ex + wy * ey) / (ex * ex + ey * ey), 0.0, 1.0);
    double dx = wx - t * ex, dy = wy - t * ey;
    best = MIN(best, dx * dx + dy * dy);
    if ((p->y[i] > y) != (p->y[j] > y) && x < p->x[j] + (y - p->y[j]) * ex / ey)
      inside = !inside;
  }
  return inside ? -sqrt(best) : sqrt(best);
}

static void render_float(const RatShapesItem *item, int size, float *out) {
  gsize plane = (gsize)size * size;
  float bg[2][3];
  for (int k = 0; k < 2; k++)
    for (int c = 0; c < 3; c++)
      bg[k][c] = palette[item->bg_color[k]].rgb[c] / 255.0f;
  for (int py = 0; py < size; py++)
    for (int px = 0; px < size; px++) {
      double x = (px + 0.5) / size, y = (py + 0.5) / size, d = 0; /* d > 0: side of colour 1 */
      switch (item->background) {
      case RAT_SHAPES_BG_LEFT_RIGHT: d = x - 0.5; break;
      case RAT_SHAPES_BG_TOP_BOTTOM: d = y - 0.5; break;
      case RAT_SHAPES_BG_DIAGONAL: d = (x + y - 1.0) / G_SQRT2; break;
      default: d = -1; break;
      }
      float a = (float)CLAMP(0.5 + d * size, 0.0, 1.0);
      for (int c = 0; c < 3; c++)
        out[c * plane + (gsize)py * size + px] = bg[0][c] * (1 - a) + bg[1][c] * a;
    }
  for (int k = 0; k < item->n_objects; k++) {
    const RatShapesObject *o = &item->objects[k];
    Poly poly = {0};
    if (o->kind != RAT_SHAPES_CIRCLE)
      shape_polygon(o, &poly);
    float col[3];
    for (int c = 0; c < 3; c++)
      col[c] = palette[o->color].rgb[c] / 255.0f;
    int x0 = MAX(0, (int)floor((o->cx - o->radius) * size) - 1),
        x1 = MIN(size, (int)ceil((o->cx + o->radius) * size) + 1);
    int y0 = MAX(0, (int)floor((o->cy - o->radius) * size) - 1),
        y1 = MIN(size, (int)ceil((o->cy + o->radius) * size) + 1);
    for (int py = y0; py < y1; py++)
      for (int px = x0; px < x1; px++) {
        double x = (px + 0.5) / size, y = (py + 0.5) / size;
        double sd = o->kind == RAT_SHAPES_CIRCLE ? hypot(x - o->cx, y - o->cy) - o->radius : poly_sd(&poly, x, y);
        float a = (float)CLAMP(0.5 - sd * size, 0.0, 1.0);
        if (a <= 0)
          continue;
        for (int c = 0; c < 3; c++) {
          float *v = out + c * plane + (gsize)py * size + px;
          *v = *v * (1 - a) + col[c] * a;
        }
      }
  }
}

RatTensor *rat_shapes_render(const RatShapesItem *item, int size) {
  rat_check(size > 0, "rat_shapes_render: size %d", size);
  RatTensor *t = rat_empty(RAT_SHAPE(3, size, size));
  render_float(item, size, rat_tensor_data(t));
  return t;
}

RatImage *rat_shapes_render_image(const RatShapesItem *item, int size) {
  rat_check(size > 0, "rat_shapes_render_image: size %d", size);
  gsize plane = (gsize)size * size;
  float *f = g_new(float, 3 * plane);
  render_float(item, size, f);
  RatImage *img = rat_image_new(size, size);
  for (gsize i = 0; i < plane; i++)
    for (int c = 0; c < 3; c++)
      img->rgb[3 * i + c] = (guint8)(CLAMP(f[c * plane + i], 0.0f, 1.0f) * 255.0f + 0.5f);
  g_free(f);
  return img;
}

/* ---- captions ----------------------------------------------------------------------------------------------- */

static void append_objects(GString *s, const RatShapesItem *item, gboolean with_where) {
  for (int k = 0; k < item->n_objects; k++) {
    const RatShapesObject *o = &item->objects[k];
    if (k)
      g_string_append(s, k == item->n_objects - 1 ? " and " : ", ");
    g_string_append_printf(s, "a %s %s %s", size_names[o->size], palette[o->color].name, kind_names[o->kind]);
    if (with_where)
      g_string_append_printf(s, " %s", cell_where[o->cell]);
  }
}

/* "a blue background", "a background that is blue on the left and white on the right", ... */
static void append_background(GString *s, const RatShapesItem *item) {
  const char *a = palette[item->bg_color[0]].name, *b = palette[item->bg_color[1]].name;
  switch (item->background) {
  case RAT_SHAPES_BG_LEFT_RIGHT:
    g_string_append_printf(s, "a background that is %s on the left and %s on the right", a, b);
    break;
  case RAT_SHAPES_BG_TOP_BOTTOM:
    g_string_append_printf(s, "a background that is %s on top and %s at the bottom", a, b);
    break;
  case RAT_SHAPES_BG_DIAGONAL: g_string_append_printf(s, "a diagonally split %s and %s background", a, b); break;
  default:
    g_string_append_printf(s, "%s %s background", palette[item->bg_color[0]].name[0] == 'o' ? "an" : "a", a);
    break;
  }
}

guint rat_shapes_n_phrasings(void) { return 4; }

char *rat_shapes_caption(const RatShapesItem *item, guint phrasing) {
  static const char *const counts[] = {"one shape", "two shapes", "three shapes", "four shapes"};
  GString *s = g_string_new(NULL);
  switch (phrasing % rat_shapes_n_phrasings()) {
  case 0: /* a small red circle at the top left on a blue background */
    append_objects(s, item, TRUE);
    g_string_append(s, " on ");
    append_background(s, item);
    break;
  case 1:
    g_string_append(s, "a picture of ");
    append_objects(s, item, TRUE);
    g_string_append(s, ", on ");
    append_background(s, item);
    break;
  case 2:
    append_background(s, item);
    g_string_append(s, " with ");
    append_objects(s, item, TRUE);
    break;
  default:
    g_string_append_printf(s, "%s on ", counts[item->n_objects - 1]);
    append_background(s, item);
    g_string_append(s, ": ");
    append_objects(s, item, TRUE);
    break;
  }
  return g_string_free(s, FALSE);
}
