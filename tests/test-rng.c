/* RatRng and the initialisers: Philox4x32-10 against Random123's known answers and ref_nn.py's vectors, the exact
 * value mappings (uniform, normal, truncated normal, permutation), thread-count invariance, moments of 1e6
 * samples, checkpointable state, and the bounds and moments of the PyTorch default initialisers. */
#include "config.h"

#include "testutil.h"

#include <math.h>

static void parse_hex(const char *s, guint32 *out, int n) {
  char **parts = g_strsplit(s, " ", -1);
  g_assert_cmpuint(g_strv_length(parts), ==, (guint)n);
  for (int i = 0; i < n; i++) out[i] = (guint32)g_ascii_strtoull(parts[i], NULL, 16);
  g_strfreev(parts);
}

static void test_philox_vectors(void) {
  RatFixture *f = rat_fixture_open("nn_rng");
  guint n_kat = 0, n = 0;
  for (guint i = 0; i < json_array_get_length(f->cases); i++) {
    JsonObject *c = json_array_get_object_element(f->cases, i);
    if (strcmp(json_object_get_string_member(c, "op"), "philox")) continue;
    guint32 ctr[4], key[2], want[4], got[4];
    parse_hex(json_object_get_string_member(c, "ctr"), ctr, 4);
    parse_hex(json_object_get_string_member(c, "key"), key, 2);
    parse_hex(json_object_get_string_member(c, "out"), want, 4);
    rat_philox4x32_10(ctr, key, got);
    for (int k = 0; k < 4; k++) g_assert_cmphex(got[k], ==, want[k]);
    if (g_str_has_prefix(json_object_get_string_member(c, "source"), "Random123")) n_kat++;
    n++;
  }
  g_assert_cmpuint(n_kat, ==, 3);
  g_assert_cmpuint(n, >=, 11);
  /* Published answer, hard-coded too (independent of the fixture). */
  const guint32 ctr[4] = {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, key[2] = {0xa4093822, 0x299f31d0};
  guint32 out[4];
  rat_philox4x32_10(ctr, key, out);
  g_assert_cmphex(out[0], ==, 0xd16cfe09);
  g_assert_cmphex(out[3], ==, 0x24126ea1);
  rat_fixture_close(f);
}

/* The mapping from counters to values, as ref_nn.py computes it independently. */
static void test_sequence(void) {
  RatScope s = rat_scope_push();
  RatFixture *f = rat_fixture_open("nn_rng");
  JsonObject *c = NULL;
  guint idx = 0;
  for (guint i = 0; i < json_array_get_length(f->cases); i++) {
    JsonObject *o = json_array_get_object_element(f->cases, i);
    if (!strcmp(json_object_get_string_member(o, "op"), "sequence")) {
      c = o;
      idx = i;
    }
  }
  g_assert_nonnull(c);
  RatRng rng;
  rat_rng_set_state(&rng, g_ascii_strtoull(json_object_get_string_member(c, "seed"), NULL, 10),
                    (guint64)json_object_get_int_member(c, "offset"));
  RatTensor *u = rat_empty(RAT_SHAPE(13));
  rat_rng_fill_uniform_(&rng, u, -1.0f, 2.0f);
  rat_assert_close(u, rat_fixture_get(f, "c%u.uniform", idx), 1e-7, 0, "uniform");
  RatTensor *n = rat_empty(RAT_SHAPE(10));
  rat_rng_fill_normal_(&rng, n, 0.5f, 2.0f);
  rat_assert_close(n, rat_fixture_get(f, "c%u.normal", idx), 2e-6, 1e-6, "normal");
  RatTensor *t = rat_empty(RAT_SHAPE(9));
  rat_rng_truncated_normal_(&rng, t, 2.0f);
  rat_assert_close(t, rat_fixture_get(f, "c%u.truncated", idx), 1e-6, 1e-6, "truncated normal");
  gint64 perm[10];
  rat_rng_permutation(&rng, 10, perm);
  RatTensor *want = rat_fixture_get(f, "c%u.perm", idx);
  for (int i = 0; i < 10; i++) g_assert_cmpint(perm[i], ==, rat_tensor_data_i32(want)[i]);
  g_assert_cmpuint(rng.offset, ==, (guint64)json_object_get_int_member(c, "final_offset"));
  rat_fixture_close(f);
  rat_scope_pop(s);
}

static void fill_all(guint64 seed, RatTensor *a, RatTensor *b, RatTensor *c) {
  RatRng rng;
  rat_rng_init(&rng, seed);
  rat_rng_fill_uniform_(&rng, a, -3.0f, 5.0f);
  rat_rng_fill_normal_(&rng, b, 0.0f, 1.0f);
  rat_rng_truncated_normal_(&rng, c, 2.0f);
}

static void test_thread_invariance(void) {
  RatScope s = rat_scope_push();
  const gint64 N = 1000003; /* not a multiple of 4 */
  RatTensor *a1 = rat_empty(RAT_SHAPE(N)), *b1 = rat_empty(RAT_SHAPE(N)), *c1 = rat_empty(RAT_SHAPE(N / 10));
  RatTensor *a2 = rat_empty(RAT_SHAPE(N)), *b2 = rat_empty(RAT_SHAPE(N)), *c2 = rat_empty(RAT_SHAPE(N / 10));
  int prev = rat_get_num_threads();
  rat_set_num_threads(1);
  fill_all(77, a1, b1, c1);
  rat_set_num_threads(2);
  fill_all(77, a2, b2, c2);
  rat_set_num_threads(prev);
  g_assert_cmpmem(rat_tensor_data(a1), N * 4, rat_tensor_data(a2), N * 4);
  g_assert_cmpmem(rat_tensor_data(b1), N * 4, rat_tensor_data(b2), N * 4);
  g_assert_cmpmem(rat_tensor_data(c1), (N / 10) * 4, rat_tensor_data(c2), (N / 10) * 4);
  /* Different seeds differ. */
  RatRng r;
  rat_rng_init(&r, 78);
  rat_rng_fill_uniform_(&r, a2, -3.0f, 5.0f);
  g_assert_true(memcmp(rat_tensor_data(a1), rat_tensor_data(a2), 64) != 0);
  rat_scope_pop(s);
}

static void moments(RatTensor *t, double *mean, double *var, double *lo, double *hi) {
  gint64 n = rat_tensor_numel(t);
  const float *p = rat_tensor_data(t);
  double m = 0, v = 0;
  *lo = G_MAXDOUBLE;
  *hi = -G_MAXDOUBLE;
  for (gint64 i = 0; i < n; i++) {
    m += p[i];
    *lo = MIN(*lo, p[i]);
    *hi = MAX(*hi, p[i]);
  }
  m /= n;
  for (gint64 i = 0; i < n; i++) v += (p[i] - m) * (p[i] - m);
  *mean = m;
  *var = v / (n - 1);
}

static void test_moments(void) {
  RatScope s = rat_scope_push();
  RatRng rng;
  rat_rng_init(&rng, 2024);
  const gint64 N = 1000000;
  double m, v, lo, hi;
  /* Bounds are about 5 standard errors: se(mean) = sd/1000, se(var) ~ var*sqrt(2/N) (normal). */
  RatTensor *u = rat_rand(&rng, RAT_SHAPE(1000, 1000));
  moments(u, &m, &v, &lo, &hi);
  g_assert_cmpfloat(fabs(m - 0.5), <, 0.0015);
  g_assert_cmpfloat(fabs(v - 1.0 / 12), <, 0.0004);
  g_assert_cmpfloat(lo, >=, 0.0);
  g_assert_cmpfloat(hi, <, 1.0);
  RatTensor *z = rat_randn(&rng, RAT_SHAPE(N));
  moments(z, &m, &v, &lo, &hi);
  g_assert_cmpfloat(fabs(m), <, 0.005);
  g_assert_cmpfloat(fabs(v - 1.0), <, 0.0075);
  g_assert_cmpfloat(hi, >, 4.0); /* tails exist: P(max of 1e6 < 4) ~ e^-32 */
  g_assert_cmpfloat(lo, <, -4.0);
  /* fourth moment of N(0,1) is 3 */
  double k4 = 0;
  for (gint64 i = 0; i < N; i++) k4 += pow(rat_tensor_data(z)[i], 4);
  g_assert_cmpfloat(fabs(k4 / N - 3.0), <, 0.05);
  RatTensor *t = rat_empty(RAT_SHAPE(N));
  rat_rng_truncated_normal_(&rng, t, 2.0f);
  moments(t, &m, &v, &lo, &hi);
  /* Var of N(0,1) truncated to [-2,2]: 1 - 2*2*phi(2) / (2*Phi(2) - 1). */
  double phi2 = exp(-2.0) / sqrt(2 * G_PI), mass = erf(2.0 / sqrt(2.0));
  double tvar = 1.0 - 4.0 * phi2 / mass;
  g_assert_cmpfloat(fabs(m), <, 0.0045);
  g_assert_cmpfloat(fabs(v - tvar), <, 0.005);
  g_assert_cmpfloat(lo, >=, -2.0);
  g_assert_cmpfloat(hi, <=, 2.0);
  g_assert_cmpfloat(hi, >, 1.99);
  /* mean/std parameters */
  RatTensor *w = rat_empty(RAT_SHAPE(N));
  rat_rng_fill_normal_(&rng, w, 3.0f, 0.5f);
  moments(w, &m, &v, &lo, &hi);
  g_assert_cmpfloat(fabs(m - 3.0), <, 0.0025);
  g_assert_cmpfloat(fabs(v - 0.25), <, 0.002);
  rat_scope_pop(s);
}

static void test_state_and_scalars(void) {
  RatScope s = rat_scope_push();
  RatRng rng;
  rat_rng_init(&rng, 5);
  rat_rng_u32(&rng);
  guint64 seed, off;
  rat_rng_get_state(&rng, &seed, &off);
  g_assert_cmpuint(seed, ==, 5);
  g_assert_cmpuint(off, ==, 1);
  RatTensor *a = rat_randn(&rng, RAT_SHAPE(3, 7));
  guint64 x = rat_rng_u64(&rng);
  double d = rat_rng_double(&rng);
  g_assert_cmpuint(rng.offset, ==, 1 + 6 + 1 + 1);
  RatRng back;
  rat_rng_set_state(&back, seed, off);
  RatTensor *b = rat_randn(&back, RAT_SHAPE(3, 7));
  g_assert_cmpmem(rat_tensor_data(a), 21 * 4, rat_tensor_data(b), 21 * 4);
  g_assert_cmpuint(rat_rng_u64(&back), ==, x);
  g_assert_cmpfloat(rat_rng_double(&back), ==, d);
  g_assert_cmpfloat(d, >=, 0.0);
  g_assert_cmpfloat(d, <, 1.0);
  /* u32 is word 0 of the block at the current offset (key = seed) */
  guint32 ctr[4] = {9, 0, 0, 0}, key[2] = {5, 0}, out[4];
  rat_philox4x32_10(ctr, key, out);
  rat_rng_set_state(&back, 5, 9);
  g_assert_cmphex(rat_rng_u32(&back), ==, out[0]);
  /* a strided (channels-last) tensor gets the same values in logical order as a contiguous one */
  RatTensor *nhwc = rat_empty_nhwc(RAT_SHAPE(2, 3, 4, 5)), *plain = rat_empty(RAT_SHAPE(2, 3, 4, 5));
  rat_rng_init(&back, 8);
  rat_rng_fill_uniform_(&back, nhwc, -1, 1);
  rat_rng_init(&back, 8);
  rat_rng_fill_uniform_(&back, plain, -1, 1);
  rat_assert_close(nhwc, plain, 0, 0, "NHWC fill in logical order");
  /* bounded integers */
  for (int i = 0; i < 1000; i++) g_assert_cmpuint(rat_rng_below(&back, 7), <, 7);
  g_assert_cmpuint(rat_rng_below(&back, 1), ==, 0);
  rat_scope_pop(s);
}

static void test_permutation(void) {
  RatRng rng;
  rat_rng_init(&rng, 99);
  gint64 p[1000];
  rat_rng_permutation(&rng, 1000, p);
  gboolean seen[1000] = {FALSE};
  int fixed = 0;
  for (int i = 0; i < 1000; i++) {
    g_assert_true(p[i] >= 0 && p[i] < 1000 && !seen[p[i]]);
    seen[p[i]] = TRUE;
    fixed += p[i] == i;
  }
  g_assert_cmpint(fixed, <, 10); /* expected 1 fixed point */
  /* uniform over the 6 permutations of 3 */
  int count[6] = {0};
  const int R = 60000;
  for (int r = 0; r < R; r++) {
    gint64 q[3];
    rat_rng_permutation(&rng, 3, q);
    count[q[0] * 2 + (q[1] > q[2])]++;
  }
  for (int k = 0; k < 6; k++) g_assert_cmpfloat(fabs(count[k] / (double)R - 1.0 / 6), <, 0.008);
  RatScope s = rat_scope_push();
  RatTensor *t = rat_randperm(&rng, 17);
  g_assert_cmpint(t->dtype, ==, RAT_DTYPE_I32);
  gint64 sum = 0;
  for (int i = 0; i < 17; i++) sum += rat_tensor_data_i32(t)[i];
  g_assert_cmpint(sum, ==, 17 * 16 / 2);
  rat_scope_pop(s);
}

/* ---- initialisers ----------------------------------------------------------------------------------------- */

static void test_fans(void) {
  gint64 fi, fo;
  rat_init_fans(RAT_SHAPE(64, 32, 3, 3), &fi, &fo);
  g_assert_cmpint(fi, ==, 288);
  g_assert_cmpint(fo, ==, 576);
  rat_init_fans(RAT_SHAPE(10, 20), &fi, &fo);
  g_assert_cmpint(fi, ==, 20);
  g_assert_cmpint(fo, ==, 10);
  rat_init_fans(RAT_SHAPE(8, 4 / 2, 5, 5), &fi, NULL); /* grouped conv weight [O, I/groups, KH, KW] */
  g_assert_cmpint(fi, ==, 50);
}

static void check_uniform(RatTensor *t, double bound, const char *what) {
  double m, v, lo, hi;
  moments(t, &m, &v, &lo, &hi);
  gint64 n = rat_tensor_numel(t);
  if (!(lo >= -bound && hi <= bound)) g_error("%s: range [%g, %g] exceeds +-%g", what, lo, hi, bound);
  if (!(hi > bound * 0.99 && lo < -bound * 0.99))
    g_error("%s: range [%g, %g] does not reach +-%g", what, lo, hi, bound);
  double var = bound * bound / 3, se = var * sqrt(0.8 / n); /* Var of U(-b,b) and its sampling error */
  if (fabs(v - var) > 6 * se) g_error("%s: variance %g, expected %g", what, v, var);
  if (fabs(m) > 6 * sqrt(var / n)) g_error("%s: mean %g", what, m);
}

static void test_init(void) {
  RatScope s = rat_scope_push();
  RatRng rng;
  rat_rng_init(&rng, 1);
  RatTensor *w = rat_empty(RAT_SHAPE(256, 64, 3, 3)), *b = rat_empty(RAT_SHAPE(256));
  rat_init_torch_default_(&rng, w, b);
  check_uniform(w, 1.0 / sqrt(64 * 9), "conv weight kaiming_uniform(a=sqrt(5))");
  double m, v, lo, hi;
  moments(b, &m, &v, &lo, &hi);
  g_assert_cmpfloat(lo, >=, -1.0 / 24);
  g_assert_cmpfloat(hi, <=, 1.0 / 24);
  g_assert_cmpfloat(hi - lo, >, 1.8 / 24);
  RatTensor *lw = rat_empty(RAT_SHAPE(500, 300));
  rat_init_kaiming_uniform_(&rng, lw, 0.0); /* relu gain sqrt(2): bound sqrt(6/fan_in) */
  check_uniform(lw, sqrt(6.0 / 300), "kaiming_uniform(a=0)");
  rat_init_xavier_uniform_(&rng, lw, 1.0);
  check_uniform(lw, sqrt(6.0 / 800), "xavier_uniform");
  RatTensor *lstm = rat_empty(RAT_SHAPE(4 * 256, 300));
  rat_init_lstm_(&rng, lstm, 256);
  check_uniform(lstm, 1.0 / 16, "LSTM");
  rat_init_uniform_(&rng, lstm, 2.0f, 3.0f);
  moments(lstm, &m, &v, &lo, &hi);
  g_assert_cmpfloat(lo, >=, 2.0);
  g_assert_cmpfloat(hi, <, 3.0);
  rat_init_normal_(&rng, lstm, -1.0f, 0.02f);
  moments(lstm, &m, &v, &lo, &hi);
  g_assert_cmpfloat(fabs(m + 1.0), <, 1e-4);
  g_assert_cmpfloat(fabs(sqrt(v) - 0.02), <, 2e-4);
  rat_init_constant_(lstm, 0.25f);
  moments(lstm, &m, &v, &lo, &hi);
  g_assert_cmpfloat(lo, ==, 0.25);
  g_assert_cmpfloat(hi, ==, 0.25);
  rat_scope_pop(s);
}

int main(int argc, char **argv) {
  rat_test_init(&argc, &argv);
  g_test_add_func("/rng/philox-known-answers", test_philox_vectors);
  g_test_add_func("/rng/sequence", test_sequence);
  g_test_add_func("/rng/thread-invariance", test_thread_invariance);
  g_test_add_func("/rng/moments", test_moments);
  g_test_add_func("/rng/state-and-scalars", test_state_and_scalars);
  g_test_add_func("/rng/permutation", test_permutation);
  g_test_add_func("/init/fans", test_fans);
  g_test_add_func("/init/bounds-and-moments", test_init);
  return g_test_run();
}
