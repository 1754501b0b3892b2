/* rat_matmul and rat_linear: golden values and gradients against tools/reference/ref_nnops.py (matmul.safetensors),
 * including transposed-view operands, batch broadcasting and 1-D promotion; finite-difference checks of first and
 * second order; results bit-identical on 1 and 2 threads. */
#include "config.h"

#include <stdio.h>

#include "testutil.h"

#include <string.h>

#define FWD_ATOL 2e-5
#define FWD_RTOL 2e-5

static JsonObject *case_obj(RatFixture *f, guint i) { return json_array_get_object_element(f->cases, i); }

static gboolean case_bool(JsonObject *o, const char *key) {
  return json_object_has_member(o, key) && json_object_get_boolean_member(o, key);
}

static void expect(RatTensor *got, RatFixture *f, guint c, const char *key, const char *what) {
  RatTensor *want = rat_fixture_get(f, "c%u.%s", c, key);
  char *msg = g_strdup_printf("case %u (%s): %s", c, what, key);
  g_assert_cmpint(rat_tensor_numel(got), ==, rat_tensor_numel(want));
  g_assert_cmpint(got->ndim, ==, want->ndim);
  rat_assert_close(got, want, FWD_ATOL, FWD_RTOL, msg);
  g_free(msg);
}

/* Gradients of <gy, y> w.r.t. inputs, compared with the fixture's keys (NULL key: skip). */
static void expect_grads(RatTensor *y, RatTensor *gy, guint n, RatTensor *const *inputs, const char *const *keys,
                         RatFixture *f, guint c, const char *what) {
  RatTensor *g[4];
  GError *e = NULL;
  g_assert_true(rat_grad(&y, &gy, 1, inputs, n, g, FALSE, &e));
  for (guint k = 0; k < n; k++)
    if (keys[k]) expect(g[k], f, c, keys[k], what);
}

static void test_golden_matmul(void) {
  RatFixture *f = rat_fixture_open("matmul");
  guint n_mm = 0, n_lin = 0;
  for (guint c = 0; c < json_array_get_length(f->cases); c++) {
    RatScope s = rat_scope_push();
    JsonObject *o = case_obj(f, c);
    const char *op = json_object_get_string_member(o, "op");
    const char *name = json_object_get_string_member(o, "name");
    if (g_str_equal(op, "matmul")) {
      RatTensor *A = rat_test_leaf(rat_fixture_get(f, "c%u.a", c)), *B = rat_test_leaf(rat_fixture_get(f, "c%u.b", c));
      RatTensor *a = case_bool(o, "ta") ? rat_transpose(A, -1, -2) : A;
      RatTensor *b = case_bool(o, "tb") ? rat_transpose(B, -1, -2) : B;
      RatTensor *y = rat_matmul(a, b);
      expect(y, f, c, "y", name);
      RatTensor *in[2] = {A, B};
      const char *keys[2] = {"ga", "gb"};
      expect_grads(y, rat_fixture_get(f, "c%u.gy", c), 2, in, keys, f, c, name);
      n_mm++;
    } else if (g_str_equal(op, "linear")) {
      gboolean has_bias = case_bool(o, "bias");
      RatTensor *X = rat_test_leaf(rat_fixture_get(f, "c%u.x", c)), *W = rat_test_leaf(rat_fixture_get(f, "c%u.w", c));
      RatTensor *Bb = has_bias ? rat_test_leaf(rat_fixture_get(f, "c%u.b", c)) : NULL;
      RatTensor *w = case_bool(o, "tw") ? rat_transpose(W, 0, 1) : W;
      RatTensor *y = rat_linear(X, w, Bb);
      expect(y, f, c, "y", name);
      RatTensor *in[3] = {X, W, Bb ? Bb : X};
      const char *keys[3] = {"gx", "gw", has_bias ? "gb" : NULL};
      expect_grads(y, rat_fixture_get(f, "c%u.gy", c), has_bias ? 3 : 2, in, keys, f, c, name);
      n_lin++;
    } else {
      g_error("unknown case op %s", op);
    }
    rat_scope_pop(s);
  }
  g_assert_cmpuint(n_mm, ==, 12);
  g_assert_cmpuint(n_lin, ==, 4);
  rat_fixture_close(f);
}

/* A matmul whose operands are strided views no GEMM flag can express (every-other column): copied, still right. */
static void test_strided_operands(void) {
  RatScope s = rat_scope_push();
  RatTensor *big = rat_test_randn(RAT_SHAPE(5, 14), 3), *b = rat_test_randn(RAT_SHAPE(7, 4), 4);
  RatTensor *a = rat_empty(RAT_SHAPE(5, 7));
  float *pb = rat_tensor_data(big), *pa = rat_tensor_data(a);
  for (int i = 0; i < 5; i++)
    for (int k = 0; k < 7; k++) pa[i * 7 + k] = pb[i * 14 + 2 * k];
  gint64 sh[2] = {5, 7}, st[2] = {14, 2};
  RatTensor *view = rat_scope_adopt(rat_tensor_new_view(big->storage, RAT_DTYPE_F32, 2, sh, st, 0));
  rat_assert_close(rat_matmul(view, b), rat_matmul(a, b), 1e-6, 1e-6, "strided operand");
  /* linear on a permuted input whose rows do not fold into one stride */
  RatTensor *x = rat_test_randn(RAT_SHAPE(3, 2, 8), 5), *w = rat_test_randn(RAT_SHAPE(6, 8), 6);
  int perm[3] = {1, 0, 2};
  RatTensor *xp = rat_permute(x, perm);
  rat_assert_close(rat_linear(xp, w, NULL), rat_linear(rat_contiguous(xp), w, NULL), 1e-6, 1e-6, "permuted linear");
  rat_scope_pop(s);
}

static RatTensor *call_matmul(RatTensor *const *in, gpointer user) { return rat_matmul(in[0], in[1]); }
static RatTensor *call_matmul_tb(RatTensor *const *in, gpointer user) {
  return rat_matmul(in[0], rat_transpose(in[1], -1, -2));
}
static RatTensor *call_linear(RatTensor *const *in, gpointer user) { return rat_linear(in[0], in[1], in[2]); }
/* a nonlinearity on top so the second derivative of the composition is not trivially zero in x */
static RatTensor *call_linear_sq(RatTensor *const *in, gpointer user) {
  return rat_square(rat_linear(in[0], in[1], in[2]));
}

static void test_gradcheck(void) {
  RatScope s = rat_scope_push();
  RatTensor *mm[2] = {rat_test_leaf(rat_test_randn(RAT_SHAPE(2, 1, 3, 4), 10)),
                      rat_test_leaf(rat_test_randn(RAT_SHAPE(3, 4, 5), 11))};
  rat_gradcheck("matmul broadcast", call_matmul, NULL, 2, mm, 1e-2, 2e-3, 2e-3);
  rat_gradgradcheck("matmul broadcast", call_matmul, NULL, 2, mm, 1e-2, 2e-3, 2e-3);
  RatTensor *mt[2] = {rat_test_leaf(rat_test_randn(RAT_SHAPE(2, 3, 4), 12)),
                      rat_test_leaf(rat_test_randn(RAT_SHAPE(5, 4), 13))};
  rat_gradcheck("matmul transposed b", call_matmul_tb, NULL, 2, mt, 1e-2, 2e-3, 2e-3);
  rat_gradgradcheck("matmul transposed b", call_matmul_tb, NULL, 2, mt, 1e-2, 2e-3, 2e-3);
  RatTensor *mv[2] = {rat_test_leaf(rat_test_randn(RAT_SHAPE(4), 14)),
                      rat_test_leaf(rat_test_randn(RAT_SHAPE(2, 4, 3), 15))};
  rat_gradcheck("vector @ batched", call_matmul, NULL, 2, mv, 1e-2, 2e-3, 2e-3);
  RatTensor *lin[3] = {rat_test_leaf(rat_test_randn(RAT_SHAPE(2, 3, 5), 16)),
                       rat_test_leaf(rat_test_randn(RAT_SHAPE(4, 5), 17)),
                       rat_test_leaf(rat_test_randn(RAT_SHAPE(4), 18))};
  rat_gradcheck("linear", call_linear, NULL, 3, lin, 1e-2, 2e-3, 2e-3);
  rat_gradgradcheck("linear", call_linear, NULL, 3, lin, 1e-2, 2e-3, 2e-3);
  rat_gradcheck("linear squared", call_linear_sq, NULL, 3, lin, 1e-3, 5e-3, 5e-3);
  rat_gradgradcheck("linear squared", call_linear_sq, NULL, 3, lin, 1e-3, 5e-3, 5e-3);
  rat_scope_pop(s);
}

/* Same bits on 1 and 2 threads: matrix-vector shapes (oneDNN splits K there), batched, folded. */
static void test_thread_determinism(void) {
  static const struct {
    RatShape a, b;
  } cases[] = {
      {RAT_SHAPE(1, 4096), RAT_SHAPE(4096, 64)},   {RAT_SHAPE(64, 4096), RAT_SHAPE(4096, 1)},
      {RAT_SHAPE(24, 50, 64), RAT_SHAPE(24, 64, 50)}, {RAT_SHAPE(4, 100, 256), RAT_SHAPE(256, 300)},
      {RAT_SHAPE(300, 2000), RAT_SHAPE(2000, 40)},  {RAT_SHAPE(3, 200, 300), RAT_SHAPE(3, 300, 200)},
  };
  int prev = rat_get_num_threads();
  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    RatScope s = rat_scope_push();
    RatTensor *a = rat_test_randn(cases[i].a, 30 + i), *b = rat_test_randn(cases[i].b, 40 + i);
    rat_set_num_threads(1);
    RatTensor *y1 = rat_matmul(a, b);
    rat_set_num_threads(2);
    RatTensor *y2 = rat_matmul(a, b);
    g_assert_cmpmem(rat_tensor_data(y1), rat_tensor_numel(y1) * 4, rat_tensor_data(y2), rat_tensor_numel(y2) * 4);
    rat_scope_pop(s);
  }
  rat_set_num_threads(prev);
}

static void test_bad_shapes(void) {
  if (g_test_subprocess()) {
    RatScope s = rat_scope_push();
    rat_matmul(rat_zeros(RAT_SHAPE(2, 3)), rat_zeros(RAT_SHAPE(4, 5)));
    rat_scope_pop(s);
    return;
  }
  g_test_trap_subprocess(NULL, 0, 0);
  g_test_trap_assert_failed();
  g_test_trap_assert_stderr("*matmul: shapes [2, 3] and [4, 5] do not fit*");
}

int main(int argc, char **argv) {
  rat_test_init(&argc, &argv);
  g_test_add_func("/matmul/golden", test_golden_matmul);
  g_test_add_func("/matmul/strided-operands", test_strided_operands);
  g_test_add_func("/matmul/gradcheck", test_gradcheck);
  g_test_add_func("/matmul/thread-determinism", test_thread_determinism);
  g_test_add_func("/matmul/bad-shapes", test_bad_shapes);
  return g_test_run();
}
