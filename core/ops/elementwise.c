/* Elementwise ops with numpy broadcasting: arithmetic, activations, and their (differentiable) backward.
 * Kernels are inner loops over RatIter rows; the output keeps the dense layout of the full-shape operand
 * (channels-last stays channels-last). Formulas follow torch 1.13 derivatives.yaml. */
#include "config.h"

#include "ratfw-private.h"

#include <math.h>

/* ---- kernel plumbing ----------------------------------------------------------------------------------- */

static RatTensor *out_for(RatShape s, RatTensor *a, RatTensor *b) {
  gint64 st[RAT_MAX_DIMS];
  RatTensor *like = NULL;
  if (a && rat_shape_equal(rat_tensor_shape(a), s) && rat_tensor_is_dense(a))
    like = a;
  else if (b && rat_shape_equal(rat_tensor_shape(b), s) && rat_tensor_is_dense(b))
    like = b;
  rat_strides_like(s, like, st);
  return rat_empty_strided(RAT_DTYPE_F32, s, st);
}

static RatTensor *run_binary(RatTensor *a, RatTensor *b, RatIterFunc fn, float *params, const char *name) {
  RatShape s;
  if (!rat_broadcast_shape(rat_tensor_shape(a), rat_tensor_shape(b), &s)) {
    char *x = rat_shape_to_string(rat_tensor_shape(a)), *y = rat_shape_to_string(rat_tensor_shape(b));
    g_error("ratfw: %s: shapes %s and %s do not broadcast", name, x, y);
  }
  rat_check(a->dtype == RAT_DTYPE_F32 && b->dtype == RAT_DTYPE_F32, "ratfw: %s needs f32 operands", name);
  RatTensor *y = out_for(s, a, b);
  gint64 st[3][RAT_MAX_DIMS];
  memcpy(st[0], y->stride, sizeof(st[0]));
  rat_broadcast_strides(a, s.ndim, s.d, st[1]);
  rat_broadcast_strides(b, s.ndim, s.d, st[2]);
  RatTensor *ops[3] = {y, a, b};
  RatIter it;
  rat_iter_init(&it, 3, ops, (const gint64(*)[RAT_MAX_DIMS])st, s.ndim, s.d);
  rat_iter_run(&it, fn, params);
  return y;
}

static RatTensor *run_unary(RatTensor *a, RatIterFunc fn, float *params) {
  rat_check(a->dtype == RAT_DTYPE_F32, "ratfw: elementwise op on a non-f32 tensor");
  RatShape s = rat_tensor_shape(a);
  RatTensor *y = out_for(s, a, NULL);
  gint64 st[2][RAT_MAX_DIMS];
  memcpy(st[0], y->stride, sizeof(st[0]));
  memcpy(st[1], a->stride, sizeof(st[1]));
  RatTensor *ops[2] = {y, a};
  RatIter it;
  rat_iter_init(&it, 2, ops, (const gint64(*)[RAT_MAX_DIMS])st, s.ndim, s.d);
  rat_iter_run(&it, fn, params);
  return y;
}

/* x: element of a, z: element of b, P: parameter array */
#define BINARY_KERNEL(NAME, EXPR)                                                                             \
  static void NAME(gint64 n, char **p, const gint64 *st, gpointer user) {                                     \
    float P[4] = {0}; /* kernel parameters as locals (callers pass float[4]): lets the loops vectorize */     \
    if (user) memcpy(P, user, sizeof(P));                                                                     \
    float *restrict y = (float *)p[0];                                                                        \
    const float *restrict A = (const float *)p[1], *restrict B = (const float *)p[2];                         \
    if (st[0] == 1 && st[1] == 1 && st[2] == 1) {                                                             \
      _Pragma("omp simd") for (gint64 i = 0; i < n; i++) {                                                    \
        float x = A[i], z = B[i];                                                                             \
        y[i] = (EXPR);                                                                                        \
      }                                                                                                       \
    } else if (st[0] == 1 && st[1] == 1 && st[2] == 0) {                                                      \
      const float z = B[0];                                                                                   \
      _Pragma("omp simd") for (gint64 i = 0; i < n; i++) {                                                    \
        float x = A[i];                                                                                       \
        y[i] = (EXPR);                                                                                        \
      }                                                                                                       \
    } else if (st[0] == 1 && st[1] == 0 && st[2] == 1) {                                                      \
      const float x = A[0];                                                                                   \
      _Pragma("omp simd") for (gint64 i = 0; i < n; i++) {                                                    \
        float z = B[i];                                                                                       \
        y[i] = (EXPR);                                                                                        \
      }                                                                                                       \
    } else {                                                                                                  \
      for (gint64 i = 0; i < n; i++) {                                                                        \
        float x = A[i * st[1]], z = B[i * st[2]];                                                             \
        y[i * st[0]] = (EXPR);                                                                                \
      }                                                                                                       \
    }                                                                                                         \
  }

#define UNARY_KERNEL(NAME, EXPR)                                                                              \
  static void NAME(gint64 n, char **p, const gint64 *st, gpointer user) {                                     \
    float P[4] = {0}; /* kernel parameters as locals (callers pass float[4]): lets the loops vectorize */     \
    if (user) memcpy(P, user, sizeof(P));                                                                     \
    float *restrict y = (float *)p[0];                                                                        \
    const float *restrict A = (const float *)p[1];                                                            \
    if (st[0] == 1 && st[1] == 1) {                                                                           \
      _Pragma("omp simd") for (gint64 i = 0; i < n; i++) {                                                    \
        float x = A[i];                                                                                       \
        y[i] = (EXPR);                                                                                        \
      }                                                                                                       \
    } else {                                                                                                  \
      for (gint64 i = 0; i < n; i++) {                                                                        \
        float x = A[i * st[1]];                                                                               \
        y[i * st[0]] = (EXPR);                                                                                \
      }                                                                                                       \
    }                                                                                                         \
  }

BINARY_KERNEL(k_add, x + z)
BINARY_KERNEL(k_sub, x - z)
BINARY_KERNEL(k_mul, x *z)
BINARY_KERNEL(k_div, x / z)
BINARY_KERNEL(k_axpby, P[0] * x + P[1] * z)
/* gradient-mask kernels: x is the incoming gradient, z the forward input */
BINARY_KERNEL(k_lrelu_bwd, x * (z > 0.0f ? 1.0f : P[0])) /* = z > 0 ? x : x * slope, written to vectorize */
/* slope 0 is relu's backward: exactly 0 off the support even for an infinite gradient (torch threshold_backward) */
BINARY_KERNEL(k_relu_bwd, z > 0.0f ? x : 0.0f)
BINARY_KERNEL(k_clamp_bwd, (z >= P[0] && z <= P[1]) ? x : 0.0f)
BINARY_KERNEL(k_finite_bwd, isfinite(z) ? x : 0.0f)

UNARY_KERNEL(k_add_s, x + P[0])
UNARY_KERNEL(k_mul_s, x *P[0])
UNARY_KERNEL(k_rsub_s, P[0] - x)
UNARY_KERNEL(k_neg, -x)
UNARY_KERNEL(k_exp, expf(x))
UNARY_KERNEL(k_log, logf(x))
UNARY_KERNEL(k_sqrt, sqrtf(x))
UNARY_KERNEL(k_rsqrt, 1.0f / sqrtf(x))
UNARY_KERNEL(k_pow, powf(x, P[0]))
UNARY_KERNEL(k_square, x *x)
UNARY_KERNEL(k_abs, fabsf(x))
UNARY_KERNEL(k_sign, (float)((x > 0.0f) - (x < 0.0f)))
UNARY_KERNEL(k_tanh, tanhf(x))
UNARY_KERNEL(k_sigmoid, 1.0f / (1.0f + expf(-x)))
UNARY_KERNEL(k_relu, x < 0.0f ? 0.0f : x) /* NaN propagates, as torch.relu */
/* = x > 0 ? x : x * slope (NaN propagates), in a select-only form the vectorizer accepts */
UNARY_KERNEL(k_lrelu, (x > 0.0f ? x : 0.0f) + P[0] * (x > 0.0f ? 0.0f : x))
UNARY_KERNEL(k_qgelu, x / (1.0f + expf(-1.702f * x)))
UNARY_KERNEL(k_clamp, x < P[0] ? P[0] : (x > P[1] ? P[1] : x))
UNARY_KERNEL(k_nan_to_num, isnan(x) ? P[0] : (isinf(x) ? (x > 0 ? P[1] : P[2]) : x))

/* ---- binary arithmetic ------------------------------------------------------------------------------------ */

static void add_backward(RatNode *n, RatTensor *const *gy, RatTensor **gx) {
  float sa = (float)n->f[0], sb = (float)n->f[1];
  for (guint k = 0; k < 2; k++) {
    if (!rat_node_needs_grad(n, k)) continue;
    RatTensor *g = rat_sum_to(gy[0], n->in_shape[k]);
    float s = k == 0 ? sa : sb;
    gx[k] = s == 1.0f ? g : rat_mul_scalar(g, s);
  }
}
static const RatOpDef op_axpby = {.name = "axpby", .n_inputs = 2, .backward = add_backward};

static RatTensor *record_axpby(RatTensor *y, RatTensor *a, RatTensor *b, float sa, float sb) {
  RatTensor *in[2] = {a, b};
  RatNode *n = rat_record(&op_axpby, &y, 1, in, 2);
  if (n) { /* only the input shapes (n->in_shape) are needed: no data is kept alive */
    n->f[0] = sa;
    n->f[1] = sb;
  }
  return y;
}

RatTensor *rat_add(RatTensor *a, RatTensor *b) {
  return record_axpby(run_binary(a, b, k_add, NULL, "add"), a, b, 1, 1);
}
RatTensor *rat_sub(RatTensor *a, RatTensor *b) {
  return record_axpby(run_binary(a, b, k_sub, NULL, "sub"), a, b, 1, -1);
}
RatTensor *rat_axpby(float alpha, RatTensor *a, float beta, RatTensor *b) {
  float P[4] = {alpha, beta};
  return record_axpby(run_binary(a, b, k_axpby, P, "axpby"), a, b, alpha, beta);
}

static void mul_backward(RatNode *n, RatTensor *const *gy, RatTensor **gx) {
  RatTensor *a = rat_node_saved(n, 0), *b = rat_node_saved(n, 1);
  if (rat_node_needs_grad(n, 0)) gx[0] = rat_sum_to(rat_mul(gy[0], b), rat_tensor_shape(a));
  if (rat_node_needs_grad(n, 1)) gx[1] = rat_sum_to(rat_mul(gy[0], a), rat_tensor_shape(b));
}
static const RatOpDef op_mul = {.name = "mul", .n_inputs = 2, .backward = mul_backward};

RatTensor *rat_mul(RatTensor *a, RatTensor *b) {
  RatTensor *y = run_binary(a, b, k_mul, NULL, "mul");
  RatTensor *in[2] = {a, b};
  RatNode *n = rat_record(&op_mul, &y, 1, in, 2);
  if (n) {
    rat_node_save(n, a);
    rat_node_save(n, b);
  }
  return y;
}

static void div_backward(RatNode *n, RatTensor *const *gy, RatTensor **gx) {
  RatTensor *a = rat_node_saved(n, 0), *b = rat_node_saved(n, 1);
  if (rat_node_needs_grad(n, 0)) gx[0] = rat_sum_to(rat_div(gy[0], b), rat_tensor_shape(a));
  if (rat_node_needs_grad(n, 1))
    gx[1] = rat_sum_to(rat_neg(rat_div(rat_mul(gy[0], a), rat_mul(b, b))), rat_tensor_shape(b));
}
static const RatOpDef op_div = {.name = "div", .n_inputs = 2, .backward = div_backward};

RatTensor *rat_div(RatTensor *a, RatTensor *b) {
  RatTensor *y = run_binary(a, b, k_div, NULL, "div");
  RatTensor *in[2] = {a, b};
  RatNode *n = rat_record(&op_div, &y, 1, in, 2);
  if (n) {
    rat_node_save(n, a);
    rat_node_save(n, b);
  }
  return y;
}

/* ---- scalar ops -------------------------------------------------------------------------------------------- */

static void scale_backward(RatNode *n, RatTensor *const *gy, RatTensor **gx) {
  if (rat_node_needs_grad(n, 0)) gx[0] = n->f[0] == 1.0 ? gy[0] : rat_mul_scalar(gy[0], (float)n->f[0]);
}
static const RatOpDef op_scale = {.name = "scale", .n_inputs = 1, .backward = scale_backward};

static RatTensor *record_scale(RatTensor *y, RatTensor *a, float s) {
  RatNode *n = rat_record(&op_scale, &y, 1, &a, 1);
  if (n) n->f[0] = s;
  return y;
}

RatTensor *rat_add_scalar(RatTensor *a, float s) {
  float P[4] = {s};
  return record_scale(run_unary(a, k_add_s, P), a, 1.0f);
}
RatTensor *rat_mul_scalar(RatTensor *a, float s) {
  float P[4] = {s};
  return record_scale(run_unary(a, k_mul_s, P), a, s);
}
RatTensor *rat_rsub_scalar(RatTensor *a, float s) {
  float P[4] = {s};
  return record_scale(run_unary(a, k_rsub_s, P), a, -1.0f);
}
RatTensor *rat_neg(RatTensor *a) { return record_scale(run_unary(a, k_neg, NULL), a, -1.0f); }

/* ---- unary functions ----------------------------------------------------------------------------------- */

/* Unary ops whose derivative is expressed through the saved input (x) or output (y). */
typedef enum { U_EXP, U_LOG, U_SQRT, U_RSQRT, U_POW, U_SQUARE, U_ABS, U_TANH, U_SIGMOID, U_QGELU } UKind;

static void unary_backward(RatNode *n, RatTensor *const *gy, RatTensor **gx) {
  if (!rat_node_needs_grad(n, 0)) return;
  RatTensor *x = rat_node_saved(n, 0), *y = rat_node_saved(n, 1), *g = gy[0];
  float p = (float)n->f[0];
  switch ((UKind)n->i[0]) {
  case U_EXP: gx[0] = rat_mul(g, y); break;
  case U_LOG: gx[0] = rat_div(g, x); break;
  case U_SQRT: gx[0] = rat_div(rat_mul_scalar(g, 0.5f), y); break;
  case U_RSQRT: gx[0] = rat_mul(g, rat_mul_scalar(rat_pow_scalar(x, -1.5f), -0.5f)); break;
  case U_POW: /* torch pow_backward: exactly zero for p == 0 (p * x^-1 would be NaN at x = 0) */
    if (p == 0.0f)
      gx[0] = rat_mul_scalar(g, 0.0f);
    else
      gx[0] = p == 2.0f ? rat_mul(g, rat_mul_scalar(x, 2.0f))
                        : (p == 1.0f ? g : rat_mul(g, rat_mul_scalar(rat_pow_scalar(x, p - 1.0f), p)));
    break;
  case U_SQUARE: gx[0] = rat_mul(g, rat_mul_scalar(x, 2.0f)); break;
  case U_ABS: gx[0] = rat_mul(g, rat_sign(x)); break;
  case U_TANH: gx[0] = rat_mul(g, rat_rsub_scalar(rat_square(y), 1.0f)); break;
  case U_SIGMOID: gx[0] = rat_mul(g, rat_mul(y, rat_rsub_scalar(y, 1.0f))); break;
  case U_QGELU: {
    RatTensor *s = rat_sigmoid(rat_mul_scalar(x, 1.702f));
    /* d/dx x*s(1.702x) = s + 1.702 x s (1 - s) */
    RatTensor *d = rat_add(s, rat_mul(rat_mul_scalar(x, 1.702f), rat_mul(s, rat_rsub_scalar(s, 1.0f))));
    gx[0] = rat_mul(g, d);
    break;
  }
  }
}
static const RatOpDef op_unary = {.name = "unary", .n_inputs = 1, .backward = unary_backward};

static RatTensor *unary(RatTensor *a, RatIterFunc fn, UKind kind, float p) {
  float P[4] = {p};
  RatTensor *y = run_unary(a, fn, P);
  RatNode *n = rat_record(&op_unary, &y, 1, &a, 1);
  if (n) {
    n->i[0] = kind;
    n->f[0] = p;
    rat_node_save(n, a);
    rat_node_save(n, y);
  }
  return y;
}

RatTensor *rat_exp(RatTensor *a) { return unary(a, k_exp, U_EXP, 0); }
RatTensor *rat_log(RatTensor *a) { return unary(a, k_log, U_LOG, 0); }
RatTensor *rat_sqrt(RatTensor *a) { return unary(a, k_sqrt, U_SQRT, 0); }
RatTensor *rat_rsqrt(RatTensor *a) { return unary(a, k_rsqrt, U_RSQRT, 0); }
RatTensor *rat_pow_scalar(RatTensor *a, float p) { return unary(a, k_pow, U_POW, p); }
RatTensor *rat_square(RatTensor *a) { return unary(a, k_square, U_SQUARE, 0); }
RatTensor *rat_abs(RatTensor *a) { return unary(a, k_abs, U_ABS, 0); }
RatTensor *rat_tanh(RatTensor *a) { return unary(a, k_tanh, U_TANH, 0); }
RatTensor *rat_sigmoid(RatTensor *a) { return unary(a, k_sigmoid, U_SIGMOID, 0); }
RatTensor *rat_quick_gelu(RatTensor *a) { return unary(a, k_qgelu, U_QGELU, 0); }

RatTensor *rat_sign(RatTensor *a) { return run_unary(a, k_sign, NULL); }

/* ---- piecewise-linear activations: backward is a mask applied to the gradient ----------------------------- */

static void lrelu_bwd_backward(RatNode *n, RatTensor *const *gy, RatTensor **gx) {
  /* y = g * m(x): linear in g; m is piecewise constant in x, so d/dx = 0 almost everywhere. */
  RatTensor *x = rat_node_saved(n, 0);
  if (rat_node_needs_grad(n, 0)) gx[0] = rat_leaky_relu_backward(gy[0], x, (float)n->f[0]);
}
static const RatOpDef op_lrelu_bwd = {.name = "leaky_relu_backward", .n_inputs = 2, .backward = lrelu_bwd_backward};

RatTensor *rat_leaky_relu_backward(RatTensor *g, RatTensor *x, float slope) {
  float P[4] = {slope};
  RatTensor *y = run_binary(g, x, slope == 0.0f ? k_relu_bwd : k_lrelu_bwd, P, "leaky_relu_backward");
  RatTensor *in[2] = {g, x};
  RatNode *n = rat_record(&op_lrelu_bwd, &y, 1, in, 2);
  if (n) {
    n->f[0] = slope;
    rat_node_save(n, x);
  }
  return y;
}

static void lrelu_backward(RatNode *n, RatTensor *const *gy, RatTensor **gx) {
  if (rat_node_needs_grad(n, 0)) gx[0] = rat_leaky_relu_backward(gy[0], rat_node_saved(n, 0), (float)n->f[0]);
}
static const RatOpDef op_lrelu = {.name = "leaky_relu", .n_inputs = 1, .backward = lrelu_backward};

static RatTensor *record_lrelu(RatTensor *y, RatTensor *a, float slope) {
  RatNode *n = rat_record(&op_lrelu, &y, 1, &a, 1);
  if (n) {
    n->f[0] = slope;
    rat_node_save(n, a);
  }
  return y;
}

RatTensor *rat_relu(RatTensor *a) { return record_lrelu(run_unary(a, k_relu, NULL), a, 0.0f); }
RatTensor *rat_leaky_relu(RatTensor *a, float slope) {
  float P[4] = {slope};
  return record_lrelu(run_unary(a, k_lrelu, P), a, slope);
}

/* Mask-style backward shared by clamp and nan_to_num: gx = mask(x) ? g : 0, itself linear in g. */
typedef enum { M_CLAMP, M_FINITE } MaskKind;
static RatTensor *masked_grad(RatTensor *g, RatTensor *x, MaskKind kind, float lo, float hi);

static void masked_grad_backward(RatNode *n, RatTensor *const *gy, RatTensor **gx) {
  if (rat_node_needs_grad(n, 0))
    gx[0] = masked_grad(gy[0], rat_node_saved(n, 0), (MaskKind)n->i[0], (float)n->f[0], (float)n->f[1]);
}
static const RatOpDef op_masked_grad = {.name = "masked_grad", .n_inputs = 2, .backward = masked_grad_backward};

static RatTensor *masked_grad(RatTensor *g, RatTensor *x, MaskKind kind, float lo, float hi) {
  float P[4] = {lo, hi};
  RatTensor *y = run_binary(g, x, kind == M_CLAMP ? k_clamp_bwd : k_finite_bwd, P, "masked_grad");
  RatTensor *in[2] = {g, x};
  RatNode *n = rat_record(&op_masked_grad, &y, 1, in, 2);
  if (n) {
    n->i[0] = kind;
    n->f[0] = lo;
    n->f[1] = hi;
    rat_node_save(n, x);
  }
  return y;
}

static void clamp_backward(RatNode *n, RatTensor *const *gy, RatTensor **gx) {
  if (rat_node_needs_grad(n, 0))
    gx[0] = masked_grad(gy[0], rat_node_saved(n, 0), (MaskKind)n->i[0], (float)n->f[0], (float)n->f[1]);
}
static const RatOpDef op_clamp = {.name = "clamp", .n_inputs = 1, .backward = clamp_backward};

static RatTensor *record_masked(RatTensor *y, RatTensor *a, MaskKind kind, float lo, float hi) {
  RatNode *n = rat_record(&op_clamp, &y, 1, &a, 1);
  if (n) {
    n->i[0] = kind;
    n->f[0] = lo;
    n->f[1] = hi;
    rat_node_save(n, a);
  }
  return y;
}

RatTensor *rat_clamp(RatTensor *a, float lo, float hi) {
  float P[4] = {lo, hi};
  return record_masked(run_unary(a, k_clamp, P), a, M_CLAMP, lo, hi);
}

RatTensor *rat_nan_to_num(RatTensor *a, float nan_v, float pos_v, float neg_v) {
  float P[4] = {nan_v, pos_v, neg_v};
  return record_masked(run_unary(a, k_nan_to_num, P), a, M_FINITE, 0, 0);
}

/* ---- where ---------------------------------------------------------------------------------------------------- */

static void k_where(gint64 n, char **p, const gint64 *st, gpointer user) {
  float *y = (float *)p[0];
  const float *m = (const float *)p[1], *a = (const float *)p[2], *b = (const float *)p[3];
  for (gint64 i = 0; i < n; i++) y[i * st[0]] = m[i * st[1]] > 0.0f ? a[i * st[2]] : b[i * st[3]];
}

static void where_backward(RatNode *n, RatTensor *const *gy, RatTensor **gx) {
  RatTensor *m = rat_node_saved(n, 0);
  RatTensor *z = rat_zeros(RAT_SHAPE0);
  /* inputs: 0 = a, 1 = b (the mask takes no gradient) */
  if (rat_node_needs_grad(n, 0)) gx[0] = rat_sum_to(rat_where_positive(m, gy[0], z), n->in_shape[0]);
  if (rat_node_needs_grad(n, 1)) gx[1] = rat_sum_to(rat_where_positive(m, z, gy[0]), n->in_shape[1]);
}
static const RatOpDef op_where = {.name = "where", .n_inputs = 2, .backward = where_backward};

RatTensor *rat_where_positive(RatTensor *m, RatTensor *a, RatTensor *b) {
  RatShape s1, s;
  rat_check(rat_broadcast_shape(rat_tensor_shape(m), rat_tensor_shape(a), &s1) &&
                rat_broadcast_shape(s1, rat_tensor_shape(b), &s),
            "ratfw: where: shapes do not broadcast");
  rat_check(m->dtype == RAT_DTYPE_F32 && a->dtype == RAT_DTYPE_F32 && b->dtype == RAT_DTYPE_F32,
            "ratfw: where needs f32 operands");
  RatTensor *y = out_for(s, a, b);
  gint64 st[4][RAT_MAX_DIMS];
  memcpy(st[0], y->stride, sizeof(st[0]));
  rat_broadcast_strides(m, s.ndim, s.d, st[1]);
  rat_broadcast_strides(a, s.ndim, s.d, st[2]);
  rat_broadcast_strides(b, s.ndim, s.d, st[3]);
  RatTensor *ops[4] = {y, m, a, b};
  RatIter it;
  rat_iter_init(&it, 4, ops, (const gint64(*)[RAT_MAX_DIMS])st, s.ndim, s.d);
  rat_iter_run(&it, k_where, NULL);
  RatTensor *in[2] = {a, b};
  RatNode *n = rat_record(&op_where, &y, 1, in, 2);
  if (n) rat_node_save(n, m);
  return y;
}
