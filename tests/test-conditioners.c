/* Conditioner plugins against tools/reference/ref_conditioners.py: affine, cbn (train/eval, running stats),
 * cin, rat batch_sequence at B = 1, 3, 8, rat chained across a small two-DF-block test block (shared and
 * per-step cells, zero and noise initial state), shuffle_attention and conv_shuffle (train/eval). Forward,
 * gradients w.r.t. every parameter and input; then the batch-invariance classification of every module. */
#include "config.h"

#include "testutil.h"
#include <ratfw/batchcheck.h>
#include <ratfw/layers.h>

#include <string.h>
#include <math.h>

static RatRegistry *reg;

/* A parameterless root so children get paths "t.<name>" (the chained test block). */
static gboolean root_build(RatModule *m, const RatBuildContext *ctx, GError **error) { return TRUE; }
static const RatModuleType root_type = {.struct_size = sizeof(RatModuleType), .name = "test_root",
                                        .kind = RAT_KIND_BLOCK, .doc = "test root", .build = root_build};

static JsonObject *find_case(RatFixture *f, const char *name, guint *index) {
  for (guint i = 0; i < json_array_get_length(f->cases); i++) {
    JsonObject *o = json_array_get_object_element(f->cases, i);
    if (!strcmp(json_object_get_string_member(o, "name"), name)) {
      *index = i;
      return o;
    }
  }
  g_error("fixture case %s missing", name);
}

/* Copies every fixture parameter "c<i>.p.<name>" into "<prefix><name>" and checks that each trainable C
 * parameter got a value. Returns the list of (C tensor, fixture name) for the gradient comparison. */
static GPtrArray *load_params(RatFixture *f, guint ci, RatParams *params, const char *prefix) {
  GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
  char *head = g_strdup_printf("c%u.p.", ci);
  guint n = rat_safetensors_count(f->st), loaded = 0;
  for (guint i = 0; i < n; i++) {
    const char *fname = rat_safetensors_name(f->st, i);
    if (!g_str_has_prefix(fname, head)) continue;
    const char *rel = fname + strlen(head);
    char *cname = g_strdup_printf("%s%s", prefix, rel);
    RatTensor *t = rat_params_lookup(params, cname);
    if (!t) g_error("fixture parameter %s has no C counterpart %s", fname, cname);
    rat_tensor_copy_(t, rat_fixture_get(f, "%s", fname));
    g_ptr_array_add(names, g_strdup(rel));
    g_free(cname);
    loaded++;
  }
  guint trainable = 0;
  for (guint i = 0; i < rat_params_size(params); i++)
    if (rat_params_kind(params, i) == RAT_PARAM_TRAINABLE) trainable++;
  g_assert_cmpuint(loaded, ==, trainable);
  g_free(head);
  return names;
}

/* Largest |got - want| over the largest |want|: the error the float32 C code achieves against the float64
 * reference, on the scale of the tensor. */
static double scaled_error(RatTensor *got, RatTensor *want) {
  gint64 n = rat_tensor_numel(want);
  g_assert_cmpint(rat_tensor_numel(got), ==, n);
  float *a = g_new(float, n), *b = g_new(float, n);
  rat_tensor_read(got, a);
  rat_tensor_read(want, b);
  double err = 0, scale = 0;
  for (gint64 i = 0; i < n; i++) {
    err = fmax(err, fabs((double)a[i] - b[i]));
    scale = fmax(scale, fabs((double)b[i]));
    if (isnan(a[i])) err = INFINITY;
  }
  g_free(a);
  g_free(b);
  return scale > 0 ? err / scale : err;
}

static double worst_out, worst_grad;

/* Tolerance on the scaled error: the worst over every case of this file is 5.0e-7 on outputs and 5.9e-7 on
 * gradients (run with --verbose to print it); asserted at 5e-6, a 10x margin. A norm epsilon 10x off moves a
 * CBN/CIN output by about 5e-5 of its scale, a dropped term by far more. */
#define SCALED_TOL 5e-6
static void assert_scaled(RatTensor *got, RatTensor *want, double *worst, const char *what) {
  double err = scaled_error(got, want);
  *worst = fmax(*worst, err);
  if (g_test_verbose()) g_printerr("%s: %.3g\n", what, err);
  if (!(err <= SCALED_TOL)) g_error("%s: max |got - want| / max |want| = %.3g > %.1g", what, err, SCALED_TOL);
}

/* out vs fixture, then gradients of sum(out * R) w.r.t. the parameters and the named inputs. */
static void compare(RatFixture *f, guint ci, RatTensor *out, RatParams *params, const char *prefix, GPtrArray *pnames,
                    RatTensor **inputs, const char *const *input_names, guint n_inputs, const char *what) {
  assert_scaled(out, rat_fixture_get(f, "c%u.out", ci), &worst_out, what);
  RatTensor *L = rat_sum_all(rat_mul(out, rat_fixture_get(f, "c%u.R", ci)));
  guint np = pnames->len, n = np + n_inputs;
  RatTensor **wrt = g_new0(RatTensor *, n), **g = g_new0(RatTensor *, n);
  for (guint k = 0; k < np; k++) {
    char *cname = g_strdup_printf("%s%s", prefix, (char *)pnames->pdata[k]);
    wrt[k] = rat_params_lookup(params, cname);
    g_free(cname);
  }
  for (guint k = 0; k < n_inputs; k++) wrt[np + k] = inputs[k];
  GError *e = NULL;
  g_assert_true(rat_grad(&L, NULL, 1, wrt, n, g, FALSE, &e));
  for (guint k = 0; k < n; k++) {
    char *label = k < np ? g_strdup_printf("%s: grad %s", what, (char *)pnames->pdata[k])
                         : g_strdup_printf("%s: grad input %s", what, input_names[k - np]);
    RatTensor *want = k < np ? rat_fixture_get(f, "c%u.grad.p.%s", ci, (char *)pnames->pdata[k])
                             : rat_fixture_get(f, "c%u.grad.in.%s", ci, input_names[k - np]);
    assert_scaled(g[k], want, &worst_grad, label);
    g_free(label);
  }
  g_free(wrt);
  g_free(g);
}

typedef struct {
  RatRng rng;
  RatParams *params;
  RatBuildContext ctx;
} Env;

static void env_init(Env *env, gint64 channels, gint64 out_channels, gint64 cond_dim, gint64 z_dim) {
  rat_rng_init(&env->rng, 7);
  env->params = rat_params_new();
  env->ctx = (RatBuildContext){.params = env->params, .rng = &env->rng, .channels = channels,
                               .out_channels = out_channels, .cond_dim = cond_dim, .z_dim = z_dim};
}

static RatModule *build(Env *env, const char *type, const char *path, RatModuleKind kind, const char *const *ov) {
  GError *e = NULL;
  RatModule *m = rat_module_build_named(reg, type, path, kind, ov, &env->ctx, &e);
  if (!m) g_error("build %s: %s", type, e->message);
  return m;
}

/* Single conditioner cases: affine, cin, cbn_train, cbn_eval, rat_batch_sequence_b*. */
static void run_single(RatFixture *f, const char *name, const char *type, const char *const *ov, gboolean training) {
  RatScope s = rat_scope_push();
  guint ci;
  find_case(f, name, &ci);
  RatTensor *x = rat_test_leaf(rat_fixture_get(f, "c%u.in.x", ci));
  RatTensor *cond = rat_test_leaf(rat_fixture_get(f, "c%u.in.cond", ci));
  Env env;
  env_init(&env, x->shape[1], 0, cond->shape[1], 0);
  RatModule *m = build(&env, type, "c", RAT_KIND_CONDITIONER, ov);
  rat_params_finalize(env.params);
  GPtrArray *pn = load_params(f, ci, env.params, "c.");
  RatTensor *rm = rat_params_lookup(env.params, "c.bn.running_mean");
  RatTensor *rv = rat_params_lookup(env.params, "c.bn.running_var");
  if (rm) {
    rat_tensor_copy_(rm, rat_fixture_get(f, "c%u.running_mean_before", ci));
    rat_tensor_copy_(rv, rat_fixture_get(f, "c%u.running_var_before", ci));
  }
  rat_module_set_training(m, training);
  RatTensor *out = rat_conditioner_forward(m, x, cond, NULL);
  RatTensor *ins[2] = {x, cond};
  const char *in_names[2] = {"x", "cond"};
  compare(f, ci, out, env.params, "c.", pn, ins, in_names, 2, name);
  if (rm) {
    rat_assert_close(rm, rat_fixture_get(f, "c%u.running_mean_after", ci), 1e-5, 1e-4, "running mean");
    rat_assert_close(rv, rat_fixture_get(f, "c%u.running_var_after", ci), 1e-5, 1e-4, "running var");
  }
  g_ptr_array_unref(pn);
  rat_module_free(m);
  rat_params_free(env.params);
  rat_scope_pop(s);
}

static void test_affine_cin_cbn(void) {
  RatFixture *f = rat_fixture_open("conditioners");
  run_single(f, "affine", "affine", NULL, TRUE);
  run_single(f, "cin", "cin", NULL, TRUE);
  run_single(f, "cbn_train", "cbn", NULL, TRUE);
  run_single(f, "cbn_eval", "cbn", NULL, FALSE);
  rat_fixture_close(f);
}

static void test_rat_batch_sequence(void) {
  RatFixture *f = rat_fixture_open("conditioners");
  const char *const ov[] = {"hidden=6", "recurrence=batch_sequence", NULL};
  run_single(f, "rat_batch_sequence_b1", "rat", ov, TRUE);
  run_single(f, "rat_batch_sequence_b3", "rat", ov, TRUE);
  run_single(f, "rat_batch_sequence_b8", "rat", ov, TRUE);
  rat_fixture_close(f);
}

/* Two DF blocks (LReLU(A1(LReLU(A0(x))))) with a 3x3 conv between, all four affines chained RAT. */
static void run_chained(RatFixture *f, gboolean shared, gboolean noise) {
  RatScope s = rat_scope_push();
  char *name = g_strdup_printf("rat_chained_%s_%s", shared ? "shared" : "perstep", noise ? "noise" : "zero");
  guint ci;
  find_case(f, name, &ci);
  RatTensor *x = rat_test_leaf(rat_fixture_get(f, "c%u.in.x", ci));
  RatTensor *cond = rat_test_leaf(rat_fixture_get(f, "c%u.in.cond", ci));
  RatTensor *z = rat_test_leaf(rat_fixture_get(f, "c%u.in.z", ci));
  Env env;
  env_init(&env, x->shape[1], 0, cond->shape[1], z->shape[1]);
  GError *e = NULL;
  RatModule *root = rat_module_build_named(reg, "test_root", "t", RAT_KIND_BLOCK, NULL, &env.ctx, &e);
  g_assert_no_error(e);
  const char *ov[] = {"hidden=6", "recurrence=chained", shared ? "shared_cell=true" : "shared_cell=false",
                      noise ? "init_state=noise" : "init_state=zero", NULL};
  RatModule *aff[4];
  for (int k = 0; k < 4; k++) {
    char *cn = g_strdup_printf("a%d", k);
    aff[k] = rat_module_build_child_named(root, "rat", cn, ov, &env.ctx, &e);
    g_assert_no_error(e);
    g_free(cn);
  }
  RatTensor *w = rat_params_add(env.params, "t.conv.weight", RAT_SHAPE(x->shape[1], x->shape[1], 3, 3),
                                RAT_PARAM_TRAINABLE);
  (void)w;
  rat_params_finalize(env.params);
  GPtrArray *pn = load_params(f, ci, env.params, "t.");
  w = rat_params_lookup(env.params, "t.conv.weight");
  RatCondState *st = rat_cond_state_new();
  rat_cond_state_set_noise(st, z);
  RatTensor *y = x;
  for (int k = 0; k < 4; k++) {
    y = rat_leaky_relu(rat_conditioner_forward(aff[k], y, cond, st), 0.2f);
    if (k == 1) y = rat_conv2d(y, w, NULL, RAT_CONV_PARAMS(1, 1));
  }
  rat_cond_state_free(st);
  RatTensor *ins[3] = {x, cond, z};
  const char *in_names[3] = {"x", "cond", "z"};
  compare(f, ci, y, env.params, "t.", pn, ins, in_names, noise ? 3 : 2, name);
  g_ptr_array_unref(pn);
  rat_module_free(root);
  rat_params_free(env.params);
  g_free(name);
  rat_scope_pop(s);
}

static void test_rat_chained(void) {
  RatFixture *f = rat_fixture_open("conditioners");
  run_chained(f, TRUE, FALSE);
  run_chained(f, TRUE, TRUE);
  run_chained(f, FALSE, FALSE);
  run_chained(f, FALSE, TRUE);
  rat_fixture_close(f);
}

static void run_block(RatFixture *f, const char *name, const char *type, const char *const *ov, gint64 out_channels,
                      gboolean training, const char *bn_prefix) {
  RatScope s = rat_scope_push();
  guint ci;
  find_case(f, name, &ci);
  RatTensor *x = rat_test_leaf(rat_fixture_get(f, "c%u.in.x", ci));
  Env env;
  env_init(&env, x->shape[1], out_channels, 0, 0);
  RatModule *m = build(&env, type, "c", RAT_KIND_BLOCK, ov);
  rat_params_finalize(env.params);
  GPtrArray *pn = load_params(f, ci, env.params, "c.");
  RatTensor *rm = NULL, *rv = NULL;
  if (bn_prefix) {
    rm = rat_params_lookup(env.params, "c.bn.running_mean");
    rv = rat_params_lookup(env.params, "c.bn.running_var");
    rat_tensor_copy_(rm, rat_fixture_get(f, "c%u.running_mean_before", ci));
    rat_tensor_copy_(rv, rat_fixture_get(f, "c%u.running_var_before", ci));
  }
  rat_module_set_training(m, training);
  RatTensor *out = rat_block_forward(m, x);
  const char *in_names[1] = {"x"};
  compare(f, ci, out, env.params, "c.", pn, &x, in_names, 1, name);
  if (rm) {
    rat_assert_close(rm, rat_fixture_get(f, "c%u.running_mean_after", ci), 1e-5, 1e-4, "running mean");
    rat_assert_close(rv, rat_fixture_get(f, "c%u.running_var_after", ci), 1e-5, 1e-4, "running var");
  }
  g_ptr_array_unref(pn);
  rat_module_free(m);
  rat_params_free(env.params);
  rat_scope_pop(s);
}

static void test_shuffle_attention(void) {
  RatFixture *f = rat_fixture_open("conditioners");
  const char *g2[] = {"groups=2", NULL}, *g1[] = {"groups=1", NULL};
  run_block(f, "shuffle_attention_g2", "shuffle_attention", g2, 0, TRUE, NULL);
  run_block(f, "shuffle_attention_g1", "shuffle_attention", g1, 0, TRUE, NULL);
  run_block(f, "conv_shuffle_train", "conv_shuffle", g2, 16, TRUE, "bn");
  run_block(f, "conv_shuffle_eval", "conv_shuffle", g2, 16, FALSE, "bn");
  rat_fixture_close(f);
}

/* The classification docs/conditioners.md states: cbn, rat batch_sequence and conv_shuffle (training) depend on
 * the rest of the batch; everything else is per-sample. */
static void test_batch_invariance(void) {
  static const struct {
    const char *type;
    const char *ov[3];
    gboolean training, dependent;
  } cases[] = {
      {"affine", {NULL}, TRUE, FALSE},
      {"cin", {NULL}, TRUE, FALSE},
      {"cbn", {NULL}, TRUE, TRUE},
      {"cbn", {NULL}, FALSE, FALSE},
      {"rat", {"recurrence=batch_sequence", NULL}, TRUE, TRUE},
      {"rat", {"recurrence=batch_sequence", NULL}, FALSE, TRUE},
      {"rat", {"recurrence=chained", NULL}, TRUE, FALSE},
      {"rat", {"recurrence=chained", "init_state=noise", NULL}, TRUE, FALSE},
      {"rat", {"hidden=0", NULL}, TRUE, FALSE},
      {"shuffle_attention", {"groups=4", NULL}, TRUE, FALSE},
      {"conv_shuffle", {"groups=4", NULL}, TRUE, TRUE},
      {"conv_shuffle", {"groups=4", NULL}, FALSE, FALSE},
  };
  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    gboolean dep = FALSE;
    double change = 0;
    GError *e = NULL;
    g_assert_true(rat_check_batch_dependence(reg, cases[i].type, cases[i].ov, cases[i].training, &dep, &change, &e));
    g_assert_no_error(e);
    if (dep != cases[i].dependent)
      g_error("%s (%s, training %d): batch-dependent = %d (sample 0 moved by %g), expected %d", cases[i].type,
              cases[i].ov[0] ? cases[i].ov[0] : "defaults", cases[i].training, dep, change, cases[i].dependent);
  }
}

int main(int argc, char **argv) {
  rat_test_init(&argc, &argv);
  reg = rat_registry_new();
  GPtrArray *fail = g_ptr_array_new_with_free_func((GDestroyNotify)g_error_free);
  rat_registry_load_all(reg, fail);
  for (guint i = 0; i < fail->len; i++) g_printerr("plugin load failure: %s\n", ((GError *)fail->pdata[i])->message);
  GError *e = NULL;
  g_assert_true(rat_registry_add_type(reg, &root_type, &e));
  g_test_add_func("/conditioners/affine-cin-cbn", test_affine_cin_cbn);
  g_test_add_func("/conditioners/rat-batch-sequence", test_rat_batch_sequence);
  g_test_add_func("/conditioners/rat-chained", test_rat_chained);
  g_test_add_func("/conditioners/shuffle-attention", test_shuffle_attention);
  g_test_add_func("/conditioners/batch-invariance", test_batch_invariance);
  int rc = g_test_run();
  if (g_test_verbose()) g_printerr("worst scaled error: outputs %.3g, gradients %.3g\n", worst_out, worst_grad);
  return rc;
}
