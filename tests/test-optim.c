/* Adam and SGD against torch.optim (tools/reference/ref_nn.py): every one of 5 steps' parameters over fixed
 * gradients, the final optimiser state, and a checkpoint resume through the exported state. */
#include "config.h"

#include "testutil.h"

#include <glib/gstdio.h>
#include <math.h>

static const char *member_str(JsonObject *c, const char *k) { return json_object_get_string_member(c, k); }
static float member_f(JsonObject *c, const char *k) { return (float)json_object_get_double_member(c, k); }

static RatOptim *make_optim(JsonObject *c, RatParams *p) {
  if (!strcmp(member_str(c, "kind"), "adam"))
    return rat_adam_new(p, member_f(c, "lr"), member_f(c, "beta1"), member_f(c, "beta2"), member_f(c, "eps"),
                        member_f(c, "weight_decay"));
  return rat_sgd_new(p, member_f(c, "lr"), member_f(c, "momentum"), member_f(c, "dampening"),
                     member_f(c, "weight_decay"), json_object_get_boolean_member(c, "nesterov"));
}

static RatParams *make_params(RatFixture *f, guint ci, JsonArray *names) {
  RatParams *p = rat_params_new();
  for (guint k = 0; k < json_array_get_length(names); k++) {
    const char *n = json_array_get_string_element(names, k);
    RatTensor *init = rat_fixture_get(f, "c%u.init.%s", ci, n);
    RatTensor *t = rat_params_add(p, n, rat_tensor_shape(init), RAT_PARAM_TRAINABLE);
    rat_tensor_copy_(t, init);
  }
  /* a frozen entry and a buffer must be left alone by the optimiser */
  rat_init_constant_(rat_params_add(p, "frozen", RAT_SHAPE(3), RAT_PARAM_FROZEN), 7.0f);
  rat_init_constant_(rat_params_add(p, "buffer", RAT_SHAPE(2), RAT_PARAM_BUFFER), 9.0f);
  rat_params_finalize(p);
  return p;
}

static void set_grads(RatFixture *f, guint ci, JsonArray *names, RatParams *p, gint64 k) {
  rat_params_zero_grad(p);
  for (guint j = 0; j < json_array_get_length(names); j++) {
    const char *n = json_array_get_string_element(names, j);
    RatTensor *t = rat_params_lookup(p, n);
    rat_tensor_copy_(t->grad, rat_fixture_get(f, "c%u.grad%" G_GINT64_FORMAT ".%s", ci, k, n));
  }
}

static void check_step(RatFixture *f, guint ci, JsonArray *names, RatParams *p, gint64 k, const char *what) {
  for (guint j = 0; j < json_array_get_length(names); j++) {
    const char *n = json_array_get_string_element(names, j);
    char *label = g_strdup_printf("%s: step %" G_GINT64_FORMAT " %s", what, k + 1, n);
    rat_assert_close(rat_params_lookup(p, n), rat_fixture_get(f, "c%u.after%" G_GINT64_FORMAT ".%s", ci, k, n), 1e-6,
                     1e-5, label);
    g_free(label);
  }
  float fr[3], bu[2];
  rat_tensor_read(rat_params_lookup(p, "frozen"), fr);
  rat_tensor_read(rat_params_lookup(p, "buffer"), bu);
  g_assert_cmpfloat(fr[1], ==, 7.0f);
  g_assert_cmpfloat(bu[1], ==, 9.0f);
}

static void test_golden(void) {
  RatFixture *f = rat_fixture_open("nn_optim");
  for (guint ci = 0; ci < json_array_get_length(f->cases); ci++) {
    RatScope s = rat_scope_push();
    JsonObject *c = json_array_get_object_element(f->cases, ci);
    const char *name = member_str(c, "name");
    JsonArray *names = json_object_get_array_member(c, "names");
    gint64 steps = json_object_get_int_member(c, "steps");
    RatParams *p = make_params(f, ci, names);
    RatOptim *o = make_optim(c, p);
    guint64 v0 = rat_params_flat(p)->storage->version;
    for (gint64 k = 0; k < steps; k++) {
      set_grads(f, ci, names, p, k);
      rat_optim_step(o);
      check_step(f, ci, names, p, k, name);
    }
    g_assert_cmpuint(rat_params_flat(p)->storage->version, >=, v0 + (guint64)steps);
    g_assert_cmpint(rat_optim_steps(o), ==, steps);
    /* final state equals torch's */
    GHashTable *st = rat_optim_state_to_map(o, "opt.");
    for (guint j = 0; j < json_array_get_length(names); j++) {
      const char *n = json_array_get_string_element(names, j);
      static const char *keys[] = {"exp_avg", "exp_avg_sq", "momentum_buffer"};
      for (int k = 0; k < 3; k++) {
        if (!rat_fixture_has(f, "c%u.%s.%s", ci, keys[k], n)) continue;
        char *sn = g_strdup_printf("opt.%s.%s", keys[k], n);
        RatTensor *mine = g_hash_table_lookup(st, sn);
        g_assert_nonnull(mine);
        rat_assert_close(mine, rat_fixture_get(f, "c%u.%s.%s", ci, keys[k], n), 1e-6, 1e-5, sn);
        g_free(sn);
      }
    }
    g_hash_table_destroy(st);
    rat_optim_free(o);
    rat_params_free(p);
    rat_scope_pop(s);
  }
  rat_fixture_close(f);
}

/* Run 2 steps, checkpoint (params + optimiser state to a safetensors file), resume in fresh objects, run the
 * remaining steps: the trajectory must still match torch's. */
static void test_resume(void) {
  RatFixture *f = rat_fixture_open("nn_optim");
  char *dir = g_dir_make_tmp("ratfw-optim-XXXXXX", NULL);
  char *path = g_build_filename(dir, "ckpt.safetensors", NULL);
  for (guint ci = 0; ci < json_array_get_length(f->cases); ci++) {
    RatScope s = rat_scope_push();
    JsonObject *c = json_array_get_object_element(f->cases, ci);
    JsonArray *names = json_object_get_array_member(c, "names");
    gint64 steps = json_object_get_int_member(c, "steps");
    RatParams *p = make_params(f, ci, names);
    RatOptim *o = make_optim(c, p);
    for (gint64 k = 0; k < 2; k++) {
      set_grads(f, ci, names, p, k);
      rat_optim_step(o);
    }
    GHashTable *all = rat_params_to_map(p, "model.");
    GHashTable *st = rat_optim_state_to_map(o, "optim.");
    GHashTableIter it;
    gpointer key, val;
    g_hash_table_iter_init(&it, st);
    while (g_hash_table_iter_next(&it, &key, &val)) g_hash_table_insert(all, g_strdup(key), val);
    GPtrArray *kn = g_ptr_array_new(), *kt = g_ptr_array_new();
    g_hash_table_iter_init(&it, all);
    while (g_hash_table_iter_next(&it, &key, &val)) {
      g_ptr_array_add(kn, key);
      g_ptr_array_add(kt, val);
    }
    GError *e = NULL;
    g_assert_true(rat_safetensors_save(path, kn->len, (const char *const *)kn->pdata, (RatTensor *const *)kt->pdata,
                                       NULL, &e));
    g_ptr_array_free(kn, TRUE);
    g_ptr_array_free(kt, TRUE);
    g_hash_table_destroy(all);
    g_hash_table_destroy(st);
    rat_optim_free(o);
    rat_params_free(p);

    RatSafetensors *ck = rat_safetensors_open(path, &e);
    g_assert_nonnull(ck);
    RatParams *p2 = make_params(f, ci, names);
    RatOptim *o2 = make_optim(c, p2);
    g_assert_true(rat_params_load(p2, ck, "model.", &e));
    g_assert_true(rat_optim_state_load(o2, ck, "optim.", &e));
    g_assert_cmpint(rat_optim_steps(o2), ==, 2);
    /* a wrong prefix names the missing state */
    g_assert_false(rat_optim_state_load(o2, ck, "optimD.", &e));
    g_assert_error(e, RAT_ERROR, RAT_ERROR_NOT_FOUND);
    g_assert_nonnull(strstr(e->message, "optimD.step"));
    g_clear_error(&e);
    for (gint64 k = 2; k < steps; k++) {
      set_grads(f, ci, names, p2, k);
      rat_optim_step(o2);
      check_step(f, ci, names, p2, k, "resumed");
    }
    rat_safetensors_close(ck);
    rat_optim_free(o2);
    rat_params_free(p2);
    rat_scope_pop(s);
  }
  g_unlink(path);
  g_rmdir(dir);
  g_free(path);
  g_free(dir);
  rat_fixture_close(f);
}

/* A large flat buffer (parallel path) gives the same bits at 1 and 2 threads; an lr change takes effect. Adam(W)'s
 * update, lr * (m_hat / (sqrt(v_hat) + eps) + wd * w), is proportional to lr, so the last step at lr 0.5 moves each
 * weight 500x as far as the same step at the constructor's 1e-3 would (run 3, 2 threads, lr left unchanged). */
static void test_threads(void) {
  RatScope s = rat_scope_push();
  float *res[3], *before[3];
  const gint64 N = 300001;
  const float lrs[3] = {0.5f, 0.5f, 1e-3f};
  for (int r = 0; r < 3; r++) {
    rat_set_num_threads(r == 0 ? 1 : 2);
    RatRng rng;
    rat_rng_init(&rng, 4);
    RatParams *p = rat_params_new();
    rat_init_normal_(&rng, rat_params_add(p, "w", RAT_SHAPE(N), RAT_PARAM_TRAINABLE), 0, 1);
    rat_params_finalize(p);
    RatOptim *o = rat_adam_new(p, 1e-3f, 0.0f, 0.9f, 1e-8f, 0.01f);
    for (int k = 0; k < 3; k++) {
      rat_params_zero_grad(p);
      rat_rng_fill_normal_(&rng, rat_params_lookup(p, "w")->grad, 0, 1);
      rat_optim_step(o);
    }
    if (lrs[r] != 1e-3f) rat_optim_set_lr(o, lrs[r]);
    g_assert_cmpfloat(rat_optim_get_lr(o), ==, lrs[r]);
    before[r] = g_new(float, N);
    rat_tensor_read(rat_params_lookup(p, "w"), before[r]);
    rat_optim_step(o);
    res[r] = g_new(float, N);
    rat_tensor_read(rat_params_lookup(p, "w"), res[r]);
    rat_optim_free(o);
    rat_params_free(p);
  }
  rat_set_num_threads(2);
  g_assert_cmpmem(res[0], N * 4, res[1], N * 4);
  /* the least-squares slope of the last step's displacement at lr 0.5 against the one at lr 1e-3 is 500: each
   * displacement is read back from float32 weights of magnitude ~1, so single entries carry up to ~1e-2 relative
   * rounding, while the slope over 300,001 entries is exact to 7e-9 relative (measured); asserted at 1e-6 */
  double sxy = 0, sxx = 0;
  for (gint64 i = 0; i < N; i++) {
    double d_hi = (double)res[1][i] - before[1][i], d_lo = (double)res[2][i] - before[2][i];
    g_assert_cmpfloat(before[1][i], ==, before[2][i]);
    sxy += d_hi * d_lo;
    sxx += d_lo * d_lo;
  }
  double rel = fabs(sxy / sxx / 500.0 - 1.0);
  if (g_test_verbose()) g_printerr("lr 0.5 / 1e-3 displacement slope: relative error %.3g\n", rel);
  g_assert_cmpfloat(rel, <, 1e-6);
  for (int r = 0; r < 3; r++) {
    g_free(res[r]);
    g_free(before[r]);
  }
  rat_scope_pop(s);
}

int main(int argc, char **argv) {
  rat_test_init(&argc, &argv);
  g_test_add_func("/optim/golden", test_golden);
  g_test_add_func("/optim/resume", test_resume);
  g_test_add_func("/optim/threads", test_threads);
  return g_test_run();
}
