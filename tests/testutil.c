/* Test helpers (see testutil.h). */
#include "config.h"

#include "testutil.h"

#include <math.h>
#include <stdarg.h>

int rat_test_max_elems = 48;

void rat_test_init(int *argc, char ***argv) {
  g_test_init(argc, argv, NULL);
  rat_init();
  rat_scope_push(); /* root scope for the test program */
}

double rat_check_close(RatTensor *got, RatTensor *want, double atol, double rtol, char **report) {
  RatShape gs = rat_tensor_shape(got), ws = rat_tensor_shape(want);
  if (rat_tensor_numel(got) != rat_tensor_numel(want)) {
    char *a = rat_shape_to_string(gs), *b = rat_shape_to_string(ws);
    *report = g_strdup_printf("shape %s, expected %s", a, b);
    g_free(a);
    g_free(b);
    return 1.0;
  }
  gint64 n = rat_tensor_numel(got);
  float *g = g_new(float, MAX(n, 1)), *w = g_new(float, MAX(n, 1));
  rat_tensor_read(got, g);
  rat_tensor_read(want, w);
  double worst = -G_MAXDOUBLE, maxdiff = 0;
  gint64 wi = -1;
  for (gint64 i = 0; i < n; i++) {
    double d = fabs((double)g[i] - w[i]);
    double excess = isnan(g[i]) != isnan(w[i]) || (isnan(d) && !isnan(w[i])) ? 1e30 : d - (atol + rtol * fabs(w[i]));
    if (isnan(g[i]) && isnan(w[i])) excess = -1;
    if (d > maxdiff) maxdiff = d;
    if (excess > worst) {
      worst = excess;
      wi = i;
    }
  }
  if (report)
    *report = wi >= 0 ? g_strdup_printf("worst element %" G_GINT64_FORMAT " of %" G_GINT64_FORMAT
                                        ": got %.8g, expected %.8g (max |diff| %.3g, atol %.2g, rtol %.2g)",
                                        wi, n, g[wi], w[wi], maxdiff, atol, rtol)
                      : g_strdup("empty");
  g_free(g);
  g_free(w);
  return n ? worst : -1;
}

RatTensor *rat_test_randn(RatShape s, guint32 seed) {
  GRand *r = g_rand_new_with_seed(seed);
  RatTensor *t = rat_empty(s);
  float *p = rat_tensor_data(t);
  gint64 n = rat_shape_numel(s);
  for (gint64 i = 0; i < n; i++) {
    double u1 = g_rand_double(r), u2 = g_rand_double(r);
    p[i] = (float)(sqrt(-2.0 * log(u1 + 1e-300)) * cos(2 * G_PI * u2));
  }
  g_rand_free(r);
  return t;
}

RatTensor *rat_test_uniform(RatShape s, float lo, float hi, guint32 seed) {
  GRand *r = g_rand_new_with_seed(seed);
  RatTensor *t = rat_empty(s);
  float *p = rat_tensor_data(t);
  gint64 n = rat_shape_numel(s);
  for (gint64 i = 0; i < n; i++) p[i] = (float)g_rand_double_range(r, lo, hi);
  g_rand_free(r);
  return t;
}

RatTensor *rat_test_leaf(RatTensor *t) {
  RatTensor *c;
  RAT_NO_GRAD_BEGIN
  c = rat_copy(t);
  RAT_NO_GRAD_END
  c = rat_tensor_alias(c);
  rat_tensor_set_requires_grad(c, TRUE);
  return c;
}

/* ---- fixtures ---------------------------------------------------------------------------------------------- */

RatFixture *rat_fixture_open(const char *name) {
  const char *src = g_getenv("RATFW_SRCDIR");
  char *path = g_strdup_printf("%s/tests/fixtures/%s.safetensors", src ? src : RATFW_SRCDIR, name);
  GError *e = NULL;
  RatFixture *f = g_new0(RatFixture, 1);
  f->st = rat_safetensors_open(path, &e);
  if (!f->st) g_error("fixture %s: %s (regenerate with tools/reference/make-fixtures.sh)", path, e->message);
  const char *cases = rat_safetensors_meta(f->st, "cases");
  if (cases) {
    f->parser = json_parser_new();
    if (!json_parser_load_from_data(f->parser, cases, -1, &e)) g_error("fixture %s: bad cases JSON: %s", path, e->message);
    f->cases = json_node_get_array(json_parser_get_root(f->parser));
  }
  g_free(path);
  return f;
}

void rat_fixture_close(RatFixture *f) {
  rat_safetensors_close(f->st);
  if (f->parser) g_object_unref(f->parser);
  g_free(f);
}

RatTensor *rat_fixture_get(RatFixture *f, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *name = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  GError *e = NULL;
  RatTensor *t = rat_safetensors_get(f->st, name, &e);
  if (!t) g_error("fixture tensor %s: %s", name, e->message);
  g_free(name);
  return t;
}

gboolean rat_fixture_has(RatFixture *f, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *name = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  gboolean h = rat_safetensors_has(f->st, name);
  g_free(name);
  return h;
}

/* ---- gradient checks ------------------------------------------------------------------------------------- */

static double dot_all(RatTensor *a, RatTensor *b) {
  gint64 n = rat_tensor_numel(a);
  float *x = g_new(float, MAX(n, 1)), *y = g_new(float, MAX(n, 1));
  rat_tensor_read(a, x);
  rat_tensor_read(b, y);
  double s = 0;
  for (gint64 i = 0; i < n; i++) s += (double)x[i] * y[i];
  g_free(x);
  g_free(y);
  return s;
}

typedef double (*ScalarFn)(RatTensor *const *inputs, gpointer user);

typedef struct {
  RatTestFn fn;
  gpointer user;
  RatTensor *r;     /* projection of the output */
  RatTensor **v;    /* projections of the first-order gradients (gradgrad) */
  guint n;
} Ctx;

static void check_against_fd(const char *what, const char *order, ScalarFn sfn, Ctx *c, guint n,
                             RatTensor *const *inputs, RatTensor **analytic, double eps, double atol, double rtol) {
  for (guint k = 0; k < n; k++) {
    RatTensor *x = inputs[k];
    if (!x->requires_grad) continue;
    gint64 numel = rat_tensor_numel(x);
    float *a = g_new(float, MAX(numel, 1));
    rat_tensor_read(analytic[k], a);
    gint64 probes = MIN(numel, rat_test_max_elems);
    for (gint64 p = 0; p < probes; p++) {
      gint64 j = probes == numel ? p : (p * numel) / probes + (p % 3);
      if (j >= numel) j = numel - 1;
      float *data = rat_tensor_data(x); /* leaves are contiguous */
      float orig = data[j];
      data[j] = (float)(orig + eps);
      rat_tensor_bump_version(x);
      double fp = sfn(inputs, c);
      data[j] = (float)(orig - eps);
      rat_tensor_bump_version(x);
      double fm = sfn(inputs, c);
      data[j] = orig;
      rat_tensor_bump_version(x);
      double num = (fp - fm) / (2 * eps);
      double diff = fabs(num - a[j]);
      if (!(diff <= atol + rtol * fabs(num)))
        g_assertion_message(G_LOG_DOMAIN, __FILE__, __LINE__, G_STRFUNC,
                            g_strdup_printf("%s: %s gradient of input %u element %" G_GINT64_FORMAT
                                            ": analytic %.6g, finite difference %.6g (eps %.1g)",
                                            what, order, k, j, a[j], num, eps));
    }
    g_free(a);
  }
}

static double first_order_value(RatTensor *const *inputs, gpointer user) {
  Ctx *c = user;
  RatScope s = rat_scope_push();
  /* grad mode stays on: @fn may itself differentiate (gradient penalties) */
  double v = dot_all(c->fn(inputs, c->user), c->r);
  rat_scope_pop(s);
  return v;
}

void rat_gradcheck(const char *what, RatTestFn fn, gpointer user, guint n, RatTensor *const *inputs, double eps,
                   double atol, double rtol) {
  RatScope s = rat_scope_push();
  RatTensor *out = fn(inputs, user);
  Ctx c = {.fn = fn, .user = user, .r = rat_test_uniform(rat_tensor_shape(out), -1, 1, 4242), .n = n};
  RatTensor *L = rat_sum_all(rat_mul(out, c.r));
  RatTensor **g = g_new0(RatTensor *, n);
  GError *e = NULL;
  if (!rat_grad(&L, NULL, 1, inputs, n, g, FALSE, &e)) g_error("%s: %s", what, e->message);
  check_against_fd(what, "first-order", first_order_value, &c, n, inputs, g, eps, atol, rtol);
  g_free(g);
  rat_scope_pop(s);
}

static RatTensor *gradgrad_scalar(RatTensor *const *inputs, Ctx *c, gboolean create_graph) {
  RatTensor *out = c->fn(inputs, c->user);
  RatTensor *L = rat_sum_all(rat_mul(out, c->r));
  RatTensor **g = g_new0(RatTensor *, c->n);
  GError *e = NULL;
  if (!rat_grad(&L, NULL, 1, inputs, c->n, g, create_graph, &e)) g_error("gradgrad: %s", e->message);
  RatTensor *F = NULL;
  for (guint k = 0; k < c->n; k++) {
    if (!inputs[k]->requires_grad) continue;
    RatTensor *term = rat_sum_all(rat_mul(g[k], c->v[k]));
    F = F ? rat_add(F, term) : term;
  }
  g_free(g);
  return F;
}

static double second_order_value(RatTensor *const *inputs, gpointer user) {
  Ctx *c = user;
  RatScope s = rat_scope_push();
  double v = rat_tensor_item(gradgrad_scalar(inputs, c, FALSE));
  rat_scope_pop(s);
  return v;
}

void rat_gradgradcheck(const char *what, RatTestFn fn, gpointer user, guint n, RatTensor *const *inputs, double eps,
                       double atol, double rtol) {
  RatScope s = rat_scope_push();
  RatTensor *out = fn(inputs, user);
  Ctx c = {.fn = fn, .user = user, .r = rat_test_uniform(rat_tensor_shape(out), -1, 1, 4242), .n = n};
  c.v = g_new0(RatTensor *, n);
  for (guint k = 0; k < n; k++) c.v[k] = rat_test_uniform(rat_tensor_shape(inputs[k]), -1, 1, 777 + k);
  RatTensor *F = gradgrad_scalar(inputs, &c, TRUE);
  RatTensor **g = g_new0(RatTensor *, n);
  GError *e = NULL;
  if (!rat_tensor_needs_grad(F)) {
    /* second derivative identically zero (piecewise linear op): the finite differences must agree */
    for (guint k = 0; k < n; k++) g[k] = rat_zeros_like(inputs[k]);
  } else if (!rat_grad(&F, NULL, 1, inputs, n, g, FALSE, &e)) {
    g_error("%s: %s", what, e->message);
  }
  check_against_fd(what, "second-order", second_order_value, &c, n, inputs, g, eps, atol, rtol);
  g_free(g);
  g_free(c.v);
  rat_scope_pop(s);
}
