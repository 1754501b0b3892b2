/* Ops benchmark (not a test): GFLOP/s of conv2d forward / backward-data / backward-weights at the RATLIP generator
 * shapes (reference section 2.5, batch 8) and of linear layers at RATLIP/CLIP shapes, next to the machine's sgemm
 * peak (dnnl_sgemm 2048^3) measured in the same run, at the thread count from OMP_NUM_THREADS.
 * Usage: bench-ops [--tsv] [--quick]. bench/bench_ops.py prints the same rows for PyTorch. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <ratfw/ops.h>

#include "ops/dnnl-private.h"

static gboolean tsv, quick;

/* Best (minimum) wall time of @fn over repeats after one warm-up: the machine is shared, noise only adds time. */
typedef void (*BenchFn)(gpointer user);
static double time_best(BenchFn fn, gpointer user, double flop) {
  RatScope s = rat_scope_push();
  fn(user);
  rat_scope_pop(s);
  double best = G_MAXDOUBLE, total = 0;
  int min_reps = quick ? 2 : 3;
  double budget = quick ? 0.3 : 1.0;
  for (int r = 0; r < 50 && (r < min_reps || total < budget); r++) {
    s = rat_scope_push();
    gint64 t0 = g_get_monotonic_time();
    fn(user);
    double dt = (g_get_monotonic_time() - t0) * 1e-6;
    rat_scope_pop(s);
    total += dt;
    if (dt < best) best = dt;
  }
  (void)flop;
  return best;
}

static double peak_gflops;

static void row(const char *op, const char *shape, double sec, double flop, const char *impl) {
  double gf = flop / sec * 1e-9;
  if (tsv)
    printf("%s\t%s\t%.3f\t%.1f\n", op, shape, sec * 1e3, gf);
  else
    printf("%-22s %-34s %9.3f %9.1f %6.0f%%  %s\n", op, shape, sec * 1e3, gf, 100.0 * gf / peak_gflops, impl ? impl : "");
  fflush(stdout);
}

/* ---- sgemm peak ------------------------------------------------------------------------------------------------- */

typedef struct {
  gint64 M, N, K;
  float *a, *b, *c;
} Gemm;

static void run_sgemm(gpointer user) {
  Gemm *g = user;
  dnnl_sgemm('N', 'N', g->M, g->N, g->K, 1.0f, g->a, g->K, g->b, g->N, 0.0f, g->c, g->N);
}

static float *filled(gint64 n, float v) {
  float *p = g_new(float, n);
  for (gint64 i = 0; i < n; i++) p[i] = v * (float)((i * 7919) % 1000) / 1000.0f;
  return p;
}

/* ---- convolution ------------------------------------------------------------------------------------------------ */

typedef struct {
  RatTensor *x, *w, *b, *gy;
  RatConvParams p;
} Conv;

static void run_fwd(gpointer user) {
  Conv *c = user;
  rat_conv2d(c->x, c->w, c->b, c->p);
}
static void run_bwd_data(gpointer user) {
  Conv *c = user;
  rat_conv2d_backward_data(c->gy, c->w, rat_tensor_shape(c->x), c->p);
}
static void run_bwd_weight(gpointer user) {
  Conv *c = user;
  rat_conv2d_backward_weight(c->x, c->gy, rat_tensor_shape(c->w), c->p);
}

static RatTensor *nhwc_filled(RatShape s, float v) {
  RatTensor *t = rat_empty_nhwc(s);
  rat_tensor_fill_(t, v);
  return t;
}

static void bench_conv(gint64 B, gint64 Ci, gint64 Co, gint64 S, int k, int pad) {
  RatScope s = rat_scope_push();
  Conv c = {.p = RAT_CONV_PARAMS(1, pad)};
  RatShape xs = RAT_SHAPE(B, Ci, S, S), ws = RAT_SHAPE(Co, Ci, k, k);
  c.x = nhwc_filled(xs, 0.5f);
  float *wd = filled(Co * Ci * k * k, 0.01f);
  c.w = rat_from_data(ws, wd);
  g_free(wd);
  c.b = rat_full(RAT_SHAPE(Co), 0.1f);
  gint64 OS = S + 2 * pad - k + 1;
  c.gy = nhwc_filled(RAT_SHAPE(B, Co, OS, OS), 0.25f);
  double flop = 2.0 * B * Co * OS * OS * Ci * k * k;
  char shape[64];
  g_snprintf(shape, sizeof(shape), "%" G_GINT64_FORMAT "x%" G_GINT64_FORMAT "->%" G_GINT64_FORMAT " %" G_GINT64_FORMAT
             "px k%d", B, Ci, Co, S, k);
  static const char *names[3] = {"conv2d fwd", "conv2d bwd_data", "conv2d bwd_weights"};
  BenchFn fns[3] = {run_fwd, run_bwd_data, run_bwd_weight};
  for (int which = 0; which < 3; which++) {
    const char *impl = rat_conv2d_impl_name(xs, ws, TRUE, c.p, which);
    row(names[which], shape, time_best(fns[which], &c, flop), flop, impl);
  }
  rat_scope_pop(s);
}

/* ---- linear ------------------------------------------------------------------------------------------------------- */

typedef struct {
  RatTensor *x, *w, *b;
} Lin;

static void run_linear(gpointer user) {
  Lin *l = user;
  rat_linear(l->x, l->w, l->b);
}

static void bench_linear(const char *what, gint64 M, gint64 N, gint64 K) {
  RatScope s = rat_scope_push();
  Lin l;
  float *xd = filled(M * K, 0.5f), *wd = filled(N * K, 0.01f);
  l.x = rat_from_data(RAT_SHAPE(M, K), xd);
  l.w = rat_from_data(RAT_SHAPE(N, K), wd);
  l.b = rat_full(RAT_SHAPE(N), 0.1f);
  g_free(xd);
  g_free(wd);
  char shape[64];
  g_snprintf(shape, sizeof(shape), "%" G_GINT64_FORMAT "x%" G_GINT64_FORMAT "->%" G_GINT64_FORMAT " %s", M, K, N, what);
  double flop = 2.0 * M * N * K;
  row("linear", shape, time_best(run_linear, &l, flop), flop, NULL);
  rat_scope_pop(s);
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--tsv")) tsv = TRUE;
    else if (!strcmp(argv[i], "--quick")) quick = TRUE;
    else {
      fprintf(stderr, "usage: %s [--tsv] [--quick]\n", argv[0]);
      return 2;
    }
  }
  rat_init();
  rat_scope_push();
  rat_set_grad_enabled(FALSE);
  int nt = rat_get_num_threads();

  Gemm g = {2048, 2048, 2048, NULL, NULL, NULL};
  g.a = filled(g.M * g.K, 1.0f);
  g.b = filled(g.K * g.N, 1.0f);
  g.c = g_new0(float, g.M * g.N);
  double flop = 2.0 * g.M * g.N * g.K;
  double t = time_best(run_sgemm, &g, flop);
  peak_gflops = flop / t * 1e-9;
  if (!tsv) {
    printf("ratfw ops benchmark, %d threads (OMP_NUM_THREADS); best of repeats; %% = share of the sgemm peak\n", nt);
    printf("%-22s %-34s %9s %9s %7s  %s\n", "op", "shape", "ms", "GFLOP/s", "peak", "oneDNN implementation");
  }
  row("sgemm (peak)", "2048x2048x2048", t, flop, "dnnl_sgemm");
  g_free(g.a);
  g_free(g.b);
  g_free(g.c);

  /* RATLIP generator: G_Blocks (3x3 pad 1) and the CLIP adapter's 5x5 768->512 at 7x7 */
  bench_conv(8, 512, 512, 8, 3, 1);
  bench_conv(8, 512, 512, 16, 3, 1);
  bench_conv(8, 512, 512, 32, 3, 1);
  bench_conv(8, 512, 256, 64, 3, 1);
  bench_conv(8, 256, 128, 128, 3, 1);
  bench_conv(8, 128, 64, 224, 3, 1);
  bench_conv(8, 768, 512, 7, 5, 2);

  /* linear layers: fc_code, fc_prompt (reference 2.3-2.4), CLIP ViT-B/32 qkv and MLP on 8 x 50 tokens */
  bench_linear("fc_code", 8, 3136, 100);
  bench_linear("fc_prompt", 8, 6144, 612);
  bench_linear("clip qkv", 400, 2304, 768);
  bench_linear("clip mlp up", 400, 3072, 768);
  bench_linear("clip mlp down", 400, 768, 3072);
  return 0;
}
