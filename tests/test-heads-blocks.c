/* The generator_block types (galip_block, dfgan_block) and discriminator_head types (galip_netc, dfgan_netc,
 * projection with sum and mean pooling, unconditional) against tools/reference/ref_heads_blocks.py: forward and the
 * gradients of <out, R> w.r.t. every parameter and input; for the heads also MA-GP (k 2, p 6) through a double
 * backward and its gradient w.r.t. every head parameter. Then finite differences: first order for the blocks; for
 * the heads first and second order of the logits w.r.t. features, sentence and parameters, and first order of
 * MA-GP w.r.t. the same (the parameter gradient the discriminator trains on). Last, the build contexts are
 * required: a block or head built outside a generator or discriminator is a configuration error. */
#include "config.h"

#include "testutil.h"
#include <ratfw/gan.h>

#include <math.h>
#include <string.h>

static RatRegistry *reg;

static guint find_case(RatFixture *f, const char *name) {
  for (guint i = 0; i < json_array_get_length(f->cases); i++)
    if (!strcmp(json_object_get_string_member(json_array_get_object_element(f->cases, i), "name"), name)) return i;
  g_error("fixture case %s missing", name);
}

/* The achieved error (max |got - want|), logged so that the tolerances below can be read against it. */
static void log_error(const char *what, RatTensor *got, RatTensor *want) {
  char *rep = NULL;
  double err = rat_check_close(got, want, 0, 0, &rep);
  g_test_message("%s: max |diff| %.3g", what, MAX(err, 0));
  g_free(rep);
}

typedef struct {
  RatModule *m;
  RatParams *params;
  RatRng rng;
  GPtrArray *pnames; /* fixture names (relative), in fixture order */
  GPtrArray *ptensors; /* the C parameters of those names */
} Built;

/* Builds @type as "t" with @user as the typed context, then copies every fixture parameter c<i>.p.<name> into
 * t.<name>, checking that each trainable C parameter got one. */
static void build(Built *b, RatFixture *f, guint ci, const char *type, RatModuleKind kind, const char *const *ov,
                  gpointer user, gint64 channels) {
  rat_rng_init(&b->rng, 5);
  b->params = rat_params_new();
  RatBuildContext ctx = {.params = b->params, .rng = &b->rng, .channels = channels, .user = user};
  GError *e = NULL;
  b->m = rat_module_build_named(reg, type, "t", kind, ov, &ctx, &e);
  if (!b->m) g_error("build %s: %s", type, e->message);
  rat_params_finalize(b->params);
  b->pnames = g_ptr_array_new_with_free_func(g_free);
  b->ptensors = g_ptr_array_new();
  char *head = g_strdup_printf("c%u.p.", ci);
  for (guint i = 0; i < rat_safetensors_count(f->st); i++) {
    const char *fname = rat_safetensors_name(f->st, i);
    if (!g_str_has_prefix(fname, head)) continue;
    char *cname = g_strdup_printf("t.%s", fname + strlen(head));
    RatTensor *t = rat_params_lookup(b->params, cname);
    if (!t) g_error("%s: fixture parameter %s has no C counterpart %s", type, fname, cname);
    rat_tensor_copy_(t, rat_fixture_get(f, "%s", fname));
    g_ptr_array_add(b->pnames, g_strdup(fname + strlen(head)));
    g_ptr_array_add(b->ptensors, t);
    g_free(cname);
  }
  g_free(head);
  guint trainable = 0;
  for (guint i = 0; i < rat_params_size(b->params); i++) trainable += rat_params_kind(b->params, i) == RAT_PARAM_TRAINABLE;
  g_assert_cmpuint(b->ptensors->len, ==, trainable);
}

static void built_free(Built *b) {
  rat_module_free(b->m);
  rat_params_free(b->params);
  g_ptr_array_unref(b->pnames);
  g_ptr_array_unref(b->ptensors);
}

/* out vs the fixture, then the gradients of sum(out * R) w.r.t. the parameters and the inputs. Tolerances: the
 * largest errors measured (float32 against float64 references; run with --verbose to see each) are 1.3e-6 on
 * outputs and gradients of magnitude 1-30, so atol 1e-5 + rtol 1e-4 (outputs) and 5e-5 + 5e-4 (gradients) leave a
 * margin of 8x or more; a slope of 0.21 instead of 0.2 in NetC or a projection term scaled by 1.001 fails. */
static void compare(RatFixture *f, guint ci, const char *what, RatTensor *out, Built *b, RatTensor **in,
                    const char *const *in_names, guint n_in) {
  log_error(what, out, rat_fixture_get(f, "c%u.out", ci));
  rat_assert_close(out, rat_fixture_get(f, "c%u.out", ci), 1e-5, 1e-4, what);
  RatTensor *L = rat_sum_all(rat_mul(out, rat_fixture_get(f, "c%u.R", ci)));
  guint np = b->ptensors->len, n = np + n_in;
  RatTensor **wrt = g_new0(RatTensor *, n), **g = g_new0(RatTensor *, n);
  for (guint k = 0; k < np; k++) wrt[k] = b->ptensors->pdata[k];
  for (guint k = 0; k < n_in; k++) wrt[np + k] = in[k];
  GError *e = NULL;
  g_assert_true(rat_grad(&L, NULL, 1, wrt, n, g, FALSE, &e));
  for (guint k = 0; k < n; k++) {
    char *label = k < np ? g_strdup_printf("%s: grad %s", what, (char *)b->pnames->pdata[k])
                         : g_strdup_printf("%s: grad input %s", what, in_names[k - np]);
    RatTensor *want = k < np ? rat_fixture_get(f, "c%u.grad.p.%s", ci, (char *)b->pnames->pdata[k])
                             : rat_fixture_get(f, "c%u.grad.in.%s", ci, in_names[k - np]);
    log_error(label, g[k], want);
    rat_assert_close(g[k], want, 5e-5, 5e-4, label);
    g_free(label);
  }
  g_free(wrt);
  g_free(g);
}

static double max_abs(RatTensor *t) {
  RatTensor *c = rat_contiguous(t);
  const float *d = rat_tensor_data(c);
  double m = 0;
  for (gint64 i = 0; i < rat_tensor_numel(c); i++) m = MAX(m, fabs(d[i]));
  return m;
}

/* ---- heads -------------------------------------------------------------------------------------------------------- */

typedef struct {
  RatModule *head;
  gboolean gp; /* return MA-GP (k 2, p 6) instead of the logits */
} HeadFn;

static RatTensor *head_fn(RatTensor *const *in, gpointer user) {
  HeadFn *h = user;
  RatTensor *l = rat_discriminator_head_logits(h->head, in[0], in[1]);
  if (!h->gp) return l;
  gboolean cond = rat_discriminator_head_conditional(h->head);
  return rat_ma_gp(l, in[0], cond ? in[1] : NULL, 2.0, 6.0);
}

static void run_head(RatFixture *f, const char *name, const char *type, const char *const *ov, gboolean conditional) {
  RatScope s = rat_scope_push();
  guint ci = find_case(f, name);
  RatTensor *x = rat_test_leaf(rat_fixture_get(f, "c%u.in.f", ci));
  RatTensor *sent = rat_test_leaf(rat_fixture_get(f, "c%u.in.s", ci));
  RatDiscriminatorHeadContext hc = {.magic = RAT_DISCRIMINATOR_HEAD_CONTEXT_MAGIC, .channels = x->shape[1],
                                    .grid = x->shape[2], .sentence_dim = sent->shape[1], .nf = 2};
  Built b;
  build(&b, f, ci, type, RAT_KIND_DISCRIMINATOR_HEAD, ov, &hc, x->shape[1]);
  g_assert_cmpint(rat_discriminator_head_conditional(b.m), ==, conditional);
  HeadFn hf = {.head = b.m};
  RatTensor *in[2] = {x, sent};
  const char *in_names[2] = {"f", "s"};
  compare(f, ci, name, head_fn(in, &hf), &b, in, in_names, 2);

  /* MA-GP and its parameter gradient (double backward) against torch's */
  hf.gp = TRUE;
  RatTensor *gp = head_fn(in, &hf);
  /* measured relative error of the penalty <= 3e-7 (it is a cube of squared gradient norms, up to 9e5 here) */
  log_error("MA-GP", rat_reshape(gp, RAT_SHAPE(1)), rat_fixture_get(f, "c%u.gp", ci));
  rat_assert_close(rat_reshape(gp, RAT_SHAPE(1)), rat_fixture_get(f, "c%u.gp", ci), 0, 2e-5, "MA-GP");
  guint np = b.ptensors->len;
  RatTensor **g = g_new0(RatTensor *, np);
  GError *e = NULL;
  g_assert_true(rat_grad(&gp, NULL, 1, (RatTensor *const *)b.ptensors->pdata, np, g, FALSE, &e));
  for (guint k = 0; k < np; k++) {
    char *label = g_strdup_printf("%s: MA-GP gradient %s", name, (char *)b.pnames->pdata[k]);
    RatTensor *want = rat_fixture_get(f, "c%u.gp_grad.%s", ci, (char *)b.pnames->pdata[k]);
    double scale = max_abs(want);
    g_test_message("%s: largest entry %.3g", label, scale);
    log_error(label, g[k], want);
    /* measured worst error <= 3e-7 of the largest entry (e.g. 2.3e-5 of 82, 0.25 of 2.8e6): margin ~30x */
    rat_assert_close(g[k], want, 1e-5 * scale + 1e-7, 1e-5, label);
    g_free(label);
  }
  g_free(g);

  /* finite differences over features, sentence and every parameter (the parameters are the module's own
   * tensors, so perturbing them perturbs the head) */
  guint n = 2 + np;
  RatTensor **all = g_new0(RatTensor *, n);
  all[0] = x;
  all[1] = sent;
  for (guint k = 0; k < np; k++) all[2 + k] = b.ptensors->pdata[k];
  hf.gp = FALSE;
  char *what = g_strdup_printf("%s logits", name);
  rat_gradcheck(what, head_fn, &hf, n, all, 1e-3, 2e-3, 1e-2);
  rat_gradgradcheck(what, head_fn, &hf, n, all, 1e-3, 3e-3, 2e-2);
  g_free(what);
  hf.gp = TRUE;
  what = g_strdup_printf("%s MA-GP", name);
  rat_gradcheck(what, head_fn, &hf, n, all, 1e-3, 3e-3, 2e-2);
  g_free(what);
  g_free(all);
  built_free(&b);
  rat_scope_pop(s);
}

static void test_heads(void) {
  RatFixture *f = rat_fixture_open("heads_blocks");
  static const char *const mean[] = {"pool=mean", NULL};
  run_head(f, "galip_netc", "galip_netc", NULL, TRUE);
  run_head(f, "dfgan_netc", "dfgan_netc", NULL, TRUE);
  run_head(f, "projection", "projection", NULL, TRUE);
  run_head(f, "projection_mean", "projection", mean, TRUE);
  run_head(f, "unconditional", "unconditional", NULL, FALSE);
  rat_fixture_close(f);
}

/* ---- blocks ------------------------------------------------------------------------------------------------------- */

static RatTensor *block_fn(RatTensor *const *in, gpointer user) {
  return rat_generator_block_forward(user, in[0], in[1], NULL);
}

static void run_block(RatFixture *f, const char *type, gint64 cout, gint64 size) {
  RatScope s = rat_scope_push();
  guint ci = find_case(f, type);
  RatTensor *h = rat_test_leaf(rat_fixture_get(f, "c%u.in.h", ci));
  RatTensor *cond = rat_test_leaf(rat_fixture_get(f, "c%u.in.cond", ci));
  RatModuleSpec *fusion = rat_module_spec_new("affine", NULL), *conv = rat_module_spec_new("conv", NULL);
  RatGeneratorBlockContext bc = {.magic = RAT_GENERATOR_BLOCK_CONTEXT_MAGIC, .n_stages = 1,
                                 .in_channels = h->shape[1], .out_channels = cout, .in_size = h->shape[2],
                                 .size = size, .cond_dim = cond->shape[1], .fusion = fusion, .conv = conv};
  Built b;
  build(&b, f, ci, type, RAT_KIND_GENERATOR_BLOCK, NULL, &bc, h->shape[1]);
  RatTensor *in[2] = {h, cond};
  const char *in_names[2] = {"h", "cond"};
  compare(f, ci, type, block_fn(in, b.m), &b, in, in_names, 2);
  /* eps 2e-4: cond moves every pre-activation of the block, and a wider step crosses LeakyReLU kinks */
  rat_gradcheck(type, block_fn, b.m, 2, in, 2e-4, 5e-3, 2e-2);
  built_free(&b);
  rat_module_spec_free(fusion);
  rat_module_spec_free(conv);
  rat_scope_pop(s);
}

static void test_blocks(void) {
  RatFixture *f = rat_fixture_open("heads_blocks");
  run_block(f, "galip_block", 4, 5);
  run_block(f, "dfgan_block", 4, 6);
  rat_fixture_close(f);
}

/* A block or head needs its typed context; dfgan_block refuses a stage that does not double. */
static void test_contexts(void) {
  RatRng rng;
  rat_rng_init(&rng, 1);
  RatParams *p = rat_params_new();
  RatBuildContext ctx = {.params = p, .rng = &rng, .channels = 8, .out_channels = 8, .cond_dim = 4};
  GError *e = NULL;
  g_assert_null(rat_module_build_named(reg, "galip_block", "b", RAT_KIND_GENERATOR_BLOCK, NULL, &ctx, &e));
  g_assert_nonnull(strstr(e->message, "built by a generator"));
  g_clear_error(&e);
  g_assert_null(rat_module_build_named(reg, "projection", "h", RAT_KIND_DISCRIMINATOR_HEAD, NULL, &ctx, &e));
  g_assert_nonnull(strstr(e->message, "built by a discriminator"));
  g_clear_error(&e);
  RatModuleSpec *fusion = rat_module_spec_new("affine", NULL), *conv = rat_module_spec_new("conv", NULL);
  RatGeneratorBlockContext bc = {.magic = RAT_GENERATOR_BLOCK_CONTEXT_MAGIC, .n_stages = 1, .in_channels = 8,
                                 .out_channels = 8, .in_size = 4, .size = 12, .cond_dim = 4, .fusion = fusion,
                                 .conv = conv};
  ctx.user = &bc;
  g_assert_null(rat_module_build_named(reg, "dfgan_block", "b", RAT_KIND_GENERATOR_BLOCK, NULL, &ctx, &e));
  g_assert_nonnull(strstr(e->message, "dfgan_block doubles its input (4) but the stage ends at 12"));
  g_clear_error(&e);
  rat_module_spec_free(fusion);
  rat_module_spec_free(conv);
  rat_params_free(p);
}

int main(int argc, char **argv) {
  rat_test_init(&argc, &argv);
  reg = rat_registry_new();
  GPtrArray *fail = g_ptr_array_new_with_free_func((GDestroyNotify)g_error_free);
  rat_registry_load_all(reg, fail);
  for (guint i = 0; i < fail->len; i++) g_printerr("plugin load failure: %s\n", ((GError *)fail->pdata[i])->message);
  g_test_add_func("/heads-blocks/heads", test_heads);
  g_test_add_func("/heads-blocks/blocks", test_blocks);
  g_test_add_func("/heads-blocks/contexts", test_contexts);
  return g_test_run();
}
