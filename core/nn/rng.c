/* Counter-based random numbers: Philox4x32-10 (Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as easy
 * as 1, 2, 3", SC'11; constants and round function as Random123's philox.h). Each value is a pure function of
 * (seed, counter), so tensors are filled in parallel with bits independent of the thread count. */
#include "config.h"

#include "ratfw-private.h"
#include <ratfw/nn.h>

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

/* Stream tags in the fourth counter word keep differently used counters apart. */
#define STREAM_PLAIN 0u
#define STREAM_TRUNC 1u

void rat_philox4x32_10(const guint32 ctr[4], const guint32 key[2], guint32 out[4]) {
  guint32 c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
  guint32 k0 = key[0], k1 = key[1];
  for (int r = 0; r < 10; r++) {
    if (r) {
      k0 += PHILOX_W0;
      k1 += PHILOX_W1;
    }
    guint64 p0 = (guint64)PHILOX_M0 * c0, p1 = (guint64)PHILOX_M1 * c2;
    guint32 hi0 = (guint32)(p0 >> 32), lo0 = (guint32)p0, hi1 = (guint32)(p1 >> 32), lo1 = (guint32)p1;
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

/* Block @index (absolute counter) of the stream @tag, attempt @sub. */
static inline void block(guint64 seed, guint64 index, guint32 sub, guint32 tag, guint32 out[4]) {
  const guint32 ctr[4] = {(guint32)index, (guint32)(index >> 32), sub, tag};
  const guint32 key[2] = {(guint32)seed, (guint32)(seed >> 32)};
  rat_philox4x32_10(ctr, key, out);
}

void rat_rng_init(RatRng *rng, guint64 seed) {
  rng->seed = seed;
  rng->offset = 0;
}

void rat_rng_get_state(const RatRng *rng, guint64 *seed, guint64 *offset) {
  if (seed) *seed = rng->seed;
  if (offset) *offset = rng->offset;
}

void rat_rng_set_state(RatRng *rng, guint64 seed, guint64 offset) {
  rng->seed = seed;
  rng->offset = offset;
}

static void next_block(RatRng *rng, guint32 out[4]) { block(rng->seed, rng->offset++, 0, STREAM_PLAIN, out); }

guint32 rat_rng_u32(RatRng *rng) {
  guint32 b[4];
  next_block(rng, b);
  return b[0];
}

guint64 rat_rng_u64(RatRng *rng) {
  guint32 b[4];
  next_block(rng, b);
  return ((guint64)b[1] << 32) | b[0];
}

static inline double u64_to_double(guint64 x) { return (double)(x >> 11) * (1.0 / 9007199254740992.0); }

double rat_rng_double(RatRng *rng) { return u64_to_double(rat_rng_u64(rng)); }

static inline guint64 mul_hi64(guint64 a, guint64 b) { return (guint64)(((unsigned __int128)a * b) >> 64); }

guint64 rat_rng_below(RatRng *rng, guint64 n) {
  rat_check(n >= 1, "ratfw: rat_rng_below(0)");
  return mul_hi64(rat_rng_u64(rng), n);
}

/* ---- tensor fills ------------------------------------------------------------------------------------------ */

/* [0, 1) with 24 bits: exactly representable in float. */
static inline float u32_to_unit_float(guint32 x) { return (float)(x >> 8) * (1.0f / 16777216.0f); }
/* (0, 1) for logarithms: never 0. */
static inline double u32_to_open_unit(guint32 x) { return ((double)x + 0.5) * (1.0 / 4294967296.0); }

/* Two standard normals from two 32-bit words (Box-Muller). */
static inline void box_muller(guint32 a, guint32 b, double *z0, double *z1) {
  double r = sqrt(-2.0 * log(u32_to_open_unit(a)));
  double th = 2.0 * G_PI * u32_to_open_unit(b);
  *z0 = r * cos(th);
  *z1 = r * sin(th);
}

typedef enum { FILL_UNIFORM, FILL_NORMAL, FILL_TRUNC } FillKind;

/* Fills n values of logical index 0..n-1 into out; element i uses block base + i/4 (plain fills) or base + i
 * (truncated). Parallel over blocks; each block's values depend only on its index. */
static void fill_values(guint64 seed, guint64 base, gint64 n, FillKind kind, float a, float b, float *out) {
  if (kind == FILL_TRUNC) {
    int nt = rat_get_num_threads();
    const double bound = a;
#pragma omp parallel for schedule(static) num_threads(nt) if (n > 4096)
    for (gint64 i = 0; i < n; i++) {
      double v = 0.0;
      gboolean found = FALSE;
      /* P(|z| > 2) = 0.0455 per draw, four draws per attempt: 64 attempts fail with probability ~1e-343. */
      for (guint32 k = 0; k < 1024 && !found; k++) {
        guint32 w[4];
        double z[4];
        block(seed, base + (guint64)i, k, STREAM_TRUNC, w);
        box_muller(w[0], w[1], &z[0], &z[1]);
        box_muller(w[2], w[3], &z[2], &z[3]);
        for (int j = 0; j < 4 && !found; j++)
          if (fabs(z[j]) <= bound) {
            v = z[j];
            found = TRUE;
          }
      }
      out[i] = (float)v;
    }
    return;
  }
  gint64 nblocks = (n + 3) / 4;
  int nt = rat_get_num_threads();
#pragma omp parallel for schedule(static) num_threads(nt) if (nblocks > 2048)
  for (gint64 k = 0; k < nblocks; k++) {
    guint32 w[4];
    float v[4];
    block(seed, base + (guint64)k, 0, STREAM_PLAIN, w);
    if (kind == FILL_UNIFORM) {
      for (int j = 0; j < 4; j++) {
        float r = a + (b - a) * u32_to_unit_float(w[j]);
        v[j] = (r < b || a == b) ? r : nextafterf(b, a);
      }
    } else {
      double z[4];
      box_muller(w[0], w[1], &z[0], &z[1]);
      box_muller(w[2], w[3], &z[2], &z[3]);
      for (int j = 0; j < 4; j++) v[j] = (float)(a + (double)b * z[j]);
    }
    gint64 i0 = k * 4;
    for (int j = 0; j < 4 && i0 + j < n; j++) out[i0 + j] = v[j];
  }
}

static void fill_tensor(RatRng *rng, RatTensor *t, FillKind kind, float a, float b) {
  rat_check(t->dtype == RAT_DTYPE_F32, "ratfw: random fill of a non-f32 tensor");
  gint64 n = rat_tensor_numel(t);
  if (n == 0) return;
  guint64 base = rng->offset;
  rng->offset += kind == FILL_TRUNC ? (guint64)n : (guint64)((n + 3) / 4);
  if (rat_tensor_is_contiguous(t)) {
    fill_values(rng->seed, base, n, kind, a, b, rat_tensor_data(t));
    rat_tensor_bump_version(t);
  } else {
    float *tmp = g_new(float, n);
    fill_values(rng->seed, base, n, kind, a, b, tmp);
    rat_tensor_write(t, tmp); /* logical row-major order, whatever the strides */
    g_free(tmp);
  }
}

void rat_rng_fill_uniform_(RatRng *rng, RatTensor *t, float lo, float hi) {
  rat_check(lo <= hi, "ratfw: uniform fill with lo %g > hi %g", lo, hi);
  fill_tensor(rng, t, FILL_UNIFORM, lo, hi);
}

void rat_rng_fill_normal_(RatRng *rng, RatTensor *t, float mean, float std) {
  fill_tensor(rng, t, FILL_NORMAL, mean, std);
}

void rat_rng_truncated_normal_(RatRng *rng, RatTensor *t, float bound) {
  rat_check(bound >= 0.1f, "ratfw: truncated normal bound %g is too small for rejection sampling", bound);
  fill_tensor(rng, t, FILL_TRUNC, bound, 0);
}

RatTensor *rat_rand(RatRng *rng, RatShape shape) {
  RatTensor *t = rat_empty(shape);
  rat_rng_fill_uniform_(rng, t, 0.0f, 1.0f);
  return t;
}

RatTensor *rat_randn(RatRng *rng, RatShape shape) {
  RatTensor *t = rat_empty(shape);
  rat_rng_fill_normal_(rng, t, 0.0f, 1.0f);
  return t;
}

void rat_rng_permutation(RatRng *rng, gint64 n, gint64 *perm) {
  for (gint64 i = 0; i < n; i++) perm[i] = i;
  /* Two 64-bit draws per block: step j (i = n-1-j) uses block offset + j/2, words 2*(j%2), 2*(j%2)+1. */
  guint64 base = rng->offset;
  guint32 w[4];
  for (gint64 j = 0, i = n - 1; i > 0; j++, i--) {
    if (j % 2 == 0) block(rng->seed, base + (guint64)(j / 2), 0, STREAM_PLAIN, w);
    guint64 x = ((guint64)w[2 * (j % 2) + 1] << 32) | w[2 * (j % 2)];
    gint64 k = (gint64)mul_hi64(x, (guint64)(i + 1));
    gint64 tmp = perm[i];
    perm[i] = perm[k];
    perm[k] = tmp;
  }
  rng->offset += n > 1 ? (guint64)(n / 2) : 0; /* ceil((n-1)/2) blocks */
}

RatTensor *rat_randperm(RatRng *rng, gint64 n) {
  RatTensor *t = rat_empty_dtype(RAT_DTYPE_I32, RAT_SHAPE(n));
  rat_check(n <= G_MAXINT32, "ratfw: rat_randperm(%" G_GINT64_FORMAT ") exceeds the i32 range", n);
  gint64 *p = g_new(gint64, MAX(n, 1));
  rat_rng_permutation(rng, n, p);
  gint32 *d = rat_tensor_data_i32(t);
  for (gint64 i = 0; i < n; i++) d[i] = (gint32)p[i];
  g_free(p);
  return t;
}
