/* softmax, log_softmax, cross_entropy, layer_norm, embedding, attention, LSTM cell (one step and unrolled over a
 * sequence against torch.nn.LSTM), cosine similarity: golden values and gradients of every input against
 * tools/reference/ref_nnops.py (nnops.safetensors), finite-difference checks of first and second order, the fused
 * (no-graph) and composite (create_graph) backward paths agreeing, thread-count determinism, bad ids. */
#include "config.h"

#include <stdio.h>

#include "testutil.h"

#include <math.h>
#include <string.h>

#define ATOL 2e-5
#define RTOL 2e-5

static JsonObject *case_obj(RatFixture *f, guint i) { return json_array_get_object_element(f->cases, i); }
static gboolean case_bool(JsonObject *o, const char *key) {
  return json_object_has_member(o, key) && json_object_get_boolean_member(o, key);
}

static void expect(RatTensor *got, RatFixture *f, guint c, const char *key, const char *what) {
  RatTensor *want = rat_fixture_get(f, "c%u.%s", c, key);
  char *msg = g_strdup_printf("case %u (%s): %s", c, what, key);
  if (got->ndim != want->ndim || rat_tensor_numel(got) != rat_tensor_numel(want))
    g_error("%s: shape %s, expected %s", msg, rat_shape_to_string(rat_tensor_shape(got)),
            rat_shape_to_string(rat_tensor_shape(want)));
  rat_assert_close(got, want, ATOL, RTOL, msg);
  g_free(msg);
}

/* Gradients of sum_k <gy_k, y_k> w.r.t. inputs compared with the fixture (NULL key: skip). */
static void expect_grads(guint n_out, RatTensor **y, RatTensor **gy, guint n, RatTensor *const *inputs,
                         const char *const *keys, RatFixture *f, guint c, const char *what) {
  RatTensor *g[8];
  GError *e = NULL;
  g_assert_true(rat_grad(y, gy, n_out, inputs, n, g, FALSE, &e));
  for (guint k = 0; k < n; k++)
    if (keys[k]) expect(g[k], f, c, keys[k], what);
}

static RatTensor *leaf_of(RatFixture *f, guint c, const char *key) {
  return rat_test_leaf(rat_fixture_get(f, "c%u.%s", c, key));
}
static RatTensor *get(RatFixture *f, guint c, const char *key) { return rat_fixture_get(f, "c%u.%s", c, key); }

/* q, k, v of H heads from a packed [B, L, 3E] projection: views [B, H, L, D] */
static RatTensor *packed_head(RatTensor *p, int which, int H) {
  gint64 B = p->shape[0], L = p->shape[1], E = p->shape[2] / 3;
  int perm[4] = {0, 2, 1, 3};
  return rat_permute(rat_reshape(rat_slice(p, 2, which * E, (which + 1) * E), RAT_SHAPE(B, L, H, E / H)), perm);
}

static void run_case(RatFixture *f, guint c, const char *op, JsonObject *o) {
  if (g_str_equal(op, "softmax") || g_str_equal(op, "log_softmax")) {
    int axis = (int)json_object_get_int_member(o, "axis");
    RatTensor *X = leaf_of(f, c, "x");
    RatTensor *x = case_bool(o, "tx") ? rat_transpose(X, -1, -2) : X;
    RatTensor *y = g_str_equal(op, "softmax") ? rat_softmax(x, axis) : rat_log_softmax(x, axis);
    expect(y, f, c, "y", op);
    RatTensor *gy = get(f, c, "gy");
    const char *keys[1] = {"gx"};
    expect_grads(1, &y, &gy, 1, &X, keys, f, c, op);
  } else if (g_str_equal(op, "cross_entropy")) {
    RatTensor *X = leaf_of(f, c, "x");
    RatTensor *y = rat_cross_entropy(X, get(f, c, "t"));
    g_assert_cmpint(y->ndim, ==, 0);
    expect(y, f, c, "y", op);
    RatTensor *gy = get(f, c, "gy");
    const char *keys[1] = {"gx"};
    expect_grads(1, &y, &gy, 1, &X, keys, f, c, op);
  } else if (g_str_equal(op, "layer_norm")) {
    gboolean affine = case_bool(o, "affine");
    RatTensor *X = leaf_of(f, c, "x");
    RatTensor *W = affine ? leaf_of(f, c, "w") : NULL, *B = affine ? leaf_of(f, c, "b") : NULL;
    RatTensor *y = rat_layer_norm(X, W, B, (float)json_object_get_double_member(o, "eps"));
    expect(y, f, c, "y", op);
    RatTensor *gy = get(f, c, "gy");
    RatTensor *in[3] = {X, W, B};
    const char *keys[3] = {"gx", "gw", "gb"};
    expect_grads(1, &y, &gy, affine ? 3 : 1, in, keys, f, c, op);
  } else if (g_str_equal(op, "embedding")) {
    RatTensor *W = leaf_of(f, c, "w");
    RatTensor *y = rat_embedding(W, get(f, c, "ids"));
    expect(y, f, c, "y", op);
    RatTensor *gy = get(f, c, "gy");
    const char *keys[1] = {"gw"};
    expect_grads(1, &y, &gy, 1, &W, keys, f, c, op);
  } else if (g_str_equal(op, "attention")) {
    RatTensor *in[3] = {leaf_of(f, c, "q"), leaf_of(f, c, "k"), leaf_of(f, c, "v")};
    RatTensor *y = rat_scaled_dot_product_attention(in[0], in[1], in[2], case_bool(o, "causal"),
                                                    (float)json_object_get_double_member(o, "scale"));
    expect(y, f, c, "y", op);
    RatTensor *gy = get(f, c, "gy");
    const char *keys[3] = {"gq", "gk", "gv"};
    expect_grads(1, &y, &gy, 3, in, keys, f, c, op);
  } else if (g_str_equal(op, "attention_packed")) {
    int H = (int)json_object_get_int_member(o, "heads");
    RatTensor *P = leaf_of(f, c, "p");
    RatTensor *q = packed_head(P, 0, H), *k = packed_head(P, 1, H), *v = packed_head(P, 2, H);
    g_assert_false(rat_tensor_is_contiguous(q));
    RatTensor *y = rat_scaled_dot_product_attention(q, k, v, case_bool(o, "causal"),
                                                    (float)json_object_get_double_member(o, "scale"));
    expect(y, f, c, "y", op);
    RatTensor *gy = get(f, c, "gy");
    const char *keys[1] = {"gp"};
    expect_grads(1, &y, &gy, 1, &P, keys, f, c, op);
  } else if (g_str_equal(op, "lstm_cell")) {
    static const char *names[7] = {"x", "h", "c", "w_ih", "w_hh", "b_ih", "b_hh"};
    RatTensor *in[7];
    for (int i = 0; i < 7; i++) in[i] = leaf_of(f, c, names[i]);
    RatTensor *y[2];
    rat_lstm_cell(in[0], in[1], in[2], in[3], in[4], in[5], in[6], &y[0], &y[1]);
    expect(y[0], f, c, "h1", op);
    expect(y[1], f, c, "c1", op);
    RatTensor *gy[2] = {get(f, c, "gh"), get(f, c, "gc")};
    const char *keys[7] = {"gx", "gh0", "gc0", "gw_ih", "gw_hh", "gb_ih", "gb_hh"};
    expect_grads(2, y, gy, 7, in, keys, f, c, op);
  } else if (g_str_equal(op, "lstm_seq")) {
    static const char *names[7] = {"x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh"};
    RatTensor *in[7];
    for (int i = 0; i < 7; i++) in[i] = leaf_of(f, c, names[i]);
    int T = (int)json_object_get_int_member(o, "steps");
    RatTensor *yref = get(f, c, "y"), *gy = get(f, c, "gy"), *h = in[1], *cc = in[2], *loss = NULL;
    for (int t = 0; t < T; t++) {
      rat_lstm_cell(rat_select(in[0], 1, t), h, cc, in[3], in[4], in[5], in[6], &h, &cc);
      char *what = g_strdup_printf("%s step %d", op, t);
      rat_assert_close(h, rat_select(yref, 1, t), ATOL, RTOL, what);
      g_free(what);
      RatTensor *term = rat_sum_all(rat_mul(h, rat_select(gy, 1, t)));
      loss = loss ? rat_add(loss, term) : term;
    }
    expect(cc, f, c, "cn", op);
    const char *keys[7] = {"gx", "gh0", "gc0", "gw_ih", "gw_hh", "gb_ih", "gb_hh"};
    expect_grads(1, &loss, NULL, 7, in, keys, f, c, op);
  } else if (g_str_equal(op, "cosine")) {
    RatTensor *in[2] = {leaf_of(f, c, "a"), leaf_of(f, c, "b")};
    RatTensor *y = rat_cosine_similarity(in[0], in[1], (int)json_object_get_int_member(o, "axis"),
                                         (float)json_object_get_double_member(o, "eps"));
    expect(y, f, c, "y", op);
    RatTensor *gy = get(f, c, "gy");
    const char *keys[2] = {"ga", "gb"};
    expect_grads(1, &y, &gy, 2, in, keys, f, c, op);
  } else {
    g_error("unknown case op %s", op);
  }
}

static void test_golden(void) {
  RatFixture *f = rat_fixture_open("nnops");
  GHashTable *seen = g_hash_table_new(g_str_hash, g_str_equal);
  for (guint c = 0; c < json_array_get_length(f->cases); c++) {
    RatScope s = rat_scope_push();
    JsonObject *o = case_obj(f, c);
    const char *op = json_object_get_string_member(o, "op");
    run_case(f, c, op, o);
    g_hash_table_add(seen, (gpointer)op);
    rat_scope_pop(s);
  }
  g_assert_cmpuint(json_array_get_length(f->cases), ==, 23);
  g_assert_cmpuint(g_hash_table_size(seen), ==, 10);
  g_hash_table_destroy(seen);
  rat_fixture_close(f);
}

/* ---- finite differences ------------------------------------------------------------------------------------- */

static RatTensor *call_softmax(RatTensor *const *in, gpointer user) {
  return rat_softmax(in[0], GPOINTER_TO_INT(user));
}
static RatTensor *call_log_softmax(RatTensor *const *in, gpointer user) {
  return rat_log_softmax(in[0], GPOINTER_TO_INT(user));
}
static RatTensor *call_ce(RatTensor *const *in, gpointer user) { return rat_cross_entropy(in[0], user); }
static RatTensor *call_layer_norm(RatTensor *const *in, gpointer user) {
  return rat_layer_norm(in[0], in[1], in[2], 1e-5f);
}
static RatTensor *call_embedding(RatTensor *const *in, gpointer user) { return rat_embedding(in[0], user); }
static RatTensor *call_attention(RatTensor *const *in, gpointer user) {
  return rat_scaled_dot_product_attention(in[0], in[1], in[2], GPOINTER_TO_INT(user), 0.7f);
}
static RatTensor *call_cosine(RatTensor *const *in, gpointer user) {
  return rat_cosine_similarity(in[0], in[1], -1, 1e-8f);
}
/* both outputs of the cell enter the checked scalar */
static RatTensor *call_lstm(RatTensor *const *in, gpointer user) {
  RatTensor *h, *c;
  rat_lstm_cell(in[0], in[1], in[2], in[3], in[4], in[5], in[6], &h, &c);
  return rat_add(h, rat_mul_scalar(c, 0.5f));
}

static void test_gradcheck(void) {
  RatScope s = rat_scope_push();
  RatTensor *x = rat_test_leaf(rat_test_randn(RAT_SHAPE(3, 4, 5), 1));
  for (int axis = 0; axis < 3; axis += 2) {
    rat_gradcheck("softmax", call_softmax, GINT_TO_POINTER(axis), 1, &x, 1e-2, 1e-3, 1e-2);
    rat_gradgradcheck("softmax", call_softmax, GINT_TO_POINTER(axis), 1, &x, 1e-2, 2e-3, 2e-2);
    rat_gradcheck("log_softmax", call_log_softmax, GINT_TO_POINTER(axis), 1, &x, 1e-2, 1e-3, 1e-2);
    rat_gradgradcheck("log_softmax", call_log_softmax, GINT_TO_POINTER(axis), 1, &x, 1e-2, 2e-3, 2e-2);
  }
  gint32 tv[4] = {2, 0, 4, 4};
  RatTensor *t = rat_from_i32(RAT_SHAPE(4), tv), *logits = rat_test_leaf(rat_test_randn(RAT_SHAPE(4, 5), 2));
  rat_gradcheck("cross_entropy", call_ce, t, 1, &logits, 1e-2, 1e-3, 1e-2);
  rat_gradgradcheck("cross_entropy", call_ce, t, 1, &logits, 1e-2, 1e-3, 1e-2);

  RatTensor *ln[3] = {rat_test_leaf(rat_test_randn(RAT_SHAPE(2, 3, 8), 3)),
                      rat_test_leaf(rat_test_uniform(RAT_SHAPE(8), 0.5f, 1.5f, 4)),
                      rat_test_leaf(rat_test_randn(RAT_SHAPE(8), 5))};
  rat_gradcheck("layer_norm", call_layer_norm, NULL, 3, ln, 1e-2, 2e-3, 2e-2);
  rat_gradgradcheck("layer_norm", call_layer_norm, NULL, 3, ln, 1e-2, 5e-3, 5e-2);

  gint32 iv[6] = {1, 3, 3, 0, 5, 1};
  RatTensor *ids = rat_from_i32(RAT_SHAPE(2, 3), iv), *emb = rat_test_leaf(rat_test_randn(RAT_SHAPE(6, 4), 6));
  rat_gradcheck("embedding", call_embedding, ids, 1, &emb, 1e-2, 1e-3, 1e-2);
  rat_gradgradcheck("embedding", call_embedding, ids, 1, &emb, 1e-2, 1e-3, 1e-2);

  RatTensor *qkv[3] = {rat_test_leaf(rat_test_randn(RAT_SHAPE(2, 2, 4, 3), 7)),
                       rat_test_leaf(rat_test_randn(RAT_SHAPE(2, 2, 4, 3), 8)),
                       rat_test_leaf(rat_test_randn(RAT_SHAPE(2, 2, 4, 3), 9))};
  for (int causal = 0; causal < 2; causal++) {
    rat_gradcheck("attention", call_attention, GINT_TO_POINTER(causal), 3, qkv, 1e-2, 2e-3, 2e-2);
    rat_gradgradcheck("attention", call_attention, GINT_TO_POINTER(causal), 3, qkv, 1e-2, 5e-3, 5e-2);
  }

  RatTensor *cs[2] = {rat_test_leaf(rat_test_randn(RAT_SHAPE(3, 1, 5), 10)),
                      rat_test_leaf(rat_test_randn(RAT_SHAPE(4, 5), 11))};
  rat_gradcheck("cosine", call_cosine, NULL, 2, cs, 1e-2, 1e-3, 1e-2);
  rat_gradgradcheck("cosine", call_cosine, NULL, 2, cs, 1e-2, 2e-3, 2e-2);

  RatTensor *lstm[7] = {rat_test_leaf(rat_test_randn(RAT_SHAPE(3, 4), 12)),
                        rat_test_leaf(rat_test_randn(RAT_SHAPE(3, 2), 13)),
                        rat_test_leaf(rat_test_randn(RAT_SHAPE(3, 2), 14)),
                        rat_test_leaf(rat_test_uniform(RAT_SHAPE(8, 4), -0.7f, 0.7f, 15)),
                        rat_test_leaf(rat_test_uniform(RAT_SHAPE(8, 2), -0.7f, 0.7f, 16)),
                        rat_test_leaf(rat_test_uniform(RAT_SHAPE(8), -0.7f, 0.7f, 17)),
                        rat_test_leaf(rat_test_uniform(RAT_SHAPE(8), -0.7f, 0.7f, 18))};
  rat_gradcheck("lstm_cell", call_lstm, NULL, 7, lstm, 1e-2, 1e-3, 1e-2);
  rat_gradgradcheck("lstm_cell", call_lstm, NULL, 7, lstm, 1e-2, 2e-3, 2e-2);
  rat_scope_pop(s);
}

/* The fused backward (grad mode off) and the composite one (create_graph) give the same first derivatives. */
static void test_fused_matches_composite(void) {
  RatScope s = rat_scope_push();
  RatTensor *x = rat_test_leaf(rat_test_randn(RAT_SHAPE(70, 48), 20));
  RatTensor *w = rat_test_leaf(rat_test_randn(RAT_SHAPE(48), 21));
  RatTensor *b = rat_test_leaf(rat_test_randn(RAT_SHAPE(48), 22)), *gy = rat_test_randn(RAT_SHAPE(70, 48), 23);
  RatTensor *in[3] = {x, w, b}, *g1[3], *g2[3];
  GError *e = NULL;
  RatTensor *y = rat_layer_norm(x, w, b, 1e-5f);
  g_assert_true(rat_grad(&y, &gy, 1, in, 3, g1, FALSE, &e));
  y = rat_layer_norm(x, w, b, 1e-5f);
  g_assert_true(rat_grad(&y, &gy, 1, in, 3, g2, TRUE, &e));
  for (int k = 0; k < 3; k++) rat_assert_close(g1[k], g2[k], 1e-5, 1e-4, "layer_norm fused vs composite");

  RatTensor *z = rat_test_leaf(rat_test_randn(RAT_SHAPE(6, 33), 24)), *gz = rat_test_randn(RAT_SHAPE(6, 33), 25);
  for (int log = 0; log < 2; log++) {
    RatTensor *a, *c;
    y = log ? rat_log_softmax(z, 1) : rat_softmax(z, 1);
    g_assert_true(rat_grad(&y, &gz, 1, &z, 1, &a, FALSE, &e));
    y = log ? rat_log_softmax(z, 1) : rat_softmax(z, 1);
    g_assert_true(rat_grad(&y, &gz, 1, &z, 1, &c, TRUE, &e));
    rat_assert_close(a, c, 1e-6, 1e-5, "softmax fused vs composite");
  }
  rat_scope_pop(s);
}

/* Bits independent of the thread count: layer-norm parameter gradients and embedding scatter over many rows. */
static void test_thread_determinism(void) {
  int prev = rat_get_num_threads();
  RatScope s = rat_scope_push();
  RatTensor *x = rat_test_leaf(rat_test_randn(RAT_SHAPE(1000, 64), 30));
  RatTensor *w = rat_test_leaf(rat_test_randn(RAT_SHAPE(64), 31));
  RatTensor *gy = rat_test_randn(RAT_SHAPE(1000, 64), 32);
  gint32 *iv = g_new(gint32, 1000);
  for (int i = 0; i < 1000; i++) iv[i] = (i * 7919) % 50;
  RatTensor *ids = rat_from_i32(RAT_SHAPE(1000), iv);
  g_free(iv);
  RatTensor *tab = rat_test_leaf(rat_test_randn(RAT_SHAPE(50, 64), 33));
  RatTensor *g[2][3];
  for (int r = 0; r < 2; r++) {
    rat_set_num_threads(r + 1);
    GError *e = NULL;
    RatTensor *in[2] = {x, w};
    RatTensor *y = rat_layer_norm(x, w, NULL, 1e-5f);
    g_assert_true(rat_grad(&y, &gy, 1, in, 2, g[r], FALSE, &e));
    y = rat_embedding(tab, ids);
    g_assert_true(rat_grad(&y, &gy, 1, &tab, 1, &g[r][2], FALSE, &e));
  }
  rat_set_num_threads(prev);
  for (int k = 0; k < 3; k++)
    g_assert_cmpmem(rat_tensor_data(g[0][k]), rat_tensor_numel(g[0][k]) * 4, rat_tensor_data(g[1][k]),
                    rat_tensor_numel(g[1][k]) * 4);
  rat_scope_pop(s);
}

/* Numerically stable: huge logits give finite softmax and log_softmax. */
static void test_stability(void) {
  RatScope s = rat_scope_push();
  float v[3] = {1000.0f, 999.0f, -1000.0f};
  RatTensor *x = rat_from_data(RAT_SHAPE(3), v);
  float y[3], l[3];
  rat_tensor_read(rat_softmax(x, 0), y);
  rat_tensor_read(rat_log_softmax(x, 0), l);
  g_assert_cmpfloat_with_epsilon(y[0], 1.0 / (1.0 + exp(-1.0)), 1e-6);
  g_assert_cmpfloat_with_epsilon(l[1], -1.0 - log1p(exp(-1.0)), 1e-5);
  g_assert_cmpfloat_with_epsilon(y[2], 0.0, 1e-30);
  g_assert_true(isfinite(l[2]));
  rat_scope_pop(s);
}

static void test_bad_id(void) {
  if (g_test_subprocess()) {
    RatScope s = rat_scope_push();
    gint32 iv[3] = {0, 7, 2};
    rat_embedding(rat_zeros(RAT_SHAPE(5, 2)), rat_from_i32(RAT_SHAPE(3), iv));
    rat_scope_pop(s);
    return;
  }
  g_test_trap_subprocess(NULL, 0, 0);
  g_test_trap_assert_failed();
  g_test_trap_assert_stderr("*embedding: id 7 (element 1 of the ids) is out of range for a table of 5 rows*");
}

int main(int argc, char **argv) {
  rat_test_init(&argc, &argv);
  g_test_add_func("/nnops/golden", test_golden);
  g_test_add_func("/nnops/gradcheck", test_gradcheck);
  g_test_add_func("/nnops/fused-matches-composite", test_fused_matches_composite);
  g_test_add_func("/nnops/thread-determinism", test_thread_determinism);
  g_test_add_func("/nnops/stability", test_stability);
  g_test_add_func("/nnops/bad-id", test_bad_id);
  return g_test_run();
}
