/* The Frechet distance of two Gaussians in float64 (eval.h), as pytorch-fid's calculate_frechet_distance and
 * reference §9.1:  FID = ||mu1 - mu2||^2 + Tr(S1) + Tr(S2) - 2 Tr(sqrtm(S1 S2)).
 * scipy's sqrtm works on the non-symmetric product; here Tr(sqrtm(S1 S2)) = sum_i sqrt(lambda_i) with lambda the
 * eigenvalues of the symmetric positive semi-definite B^T S2 B, S1 = V diag(w) V^T, B = V diag(sqrt(w)): the
 * product is similar to S1^(1/2) S2 S1^(1/2). LAPACK's dsyevd and BLAS (OpenBLAS, OpenMP build) do the work.
 * pytorch-fid's fallback is kept: when the first attempt is not finite, 1e-6 I is added to both covariances. */
#include "config.h"

#include <ratfw/error.h>
#include <ratfw/eval.h>
#include <ratfw/npz.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* Fortran BLAS / LAPACK (OpenBLAS); the trailing size_t are the hidden lengths of the character arguments. */
extern void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
                    double *work, const int *lwork, int *iwork, const int *liwork, int *info, size_t, size_t);
extern void dgemm_(const char *ta, const char *tb, const int *m, const int *n, const int *k, const double *alpha,
                   const double *a, const int *lda, const double *b, const int *ldb, const double *beta, double *c,
                   const int *ldc, size_t, size_t);
extern void dsyrk_(const char *uplo, const char *trans, const int *n, const int *k, const double *alpha,
                   const double *a, const int *lda, const double *beta, double *c, const int *ldc, size_t, size_t);

#define FID_EPS 1e-6 /* pytorch-fid's default eps */

/* ---- accumulation ------------------------------------------------------------------------------------------- */

struct _RatFeatureStats {
  gint64 dim, n;
  double *shift; /* [D] mean of the first batch: sums of x - shift lose less to cancellation than sums of x */
  double *sum;   /* [D] sum of (x - shift) */
  double *outer; /* [D, D] sum of (x - shift)(x - shift)^T, lower triangle (row-major) filled by dsyrk */
  double *tmp;   /* [chunk, D] centred rows */
  gint64 chunk;
};

RatFeatureStats *rat_feature_stats_new(gint64 dim) {
  g_return_val_if_fail(dim > 0, NULL);
  RatFeatureStats *s = g_new0(RatFeatureStats, 1);
  s->dim = dim;
  s->shift = g_new0(double, dim);
  s->sum = g_new0(double, dim);
  s->outer = g_new0(double, (gsize)dim * dim);
  s->chunk = 256;
  s->tmp = g_new(double, (gsize)s->chunk * dim);
  return s;
}

void rat_feature_stats_free(RatFeatureStats *s) {
  if (!s) return;
  g_free(s->shift);
  g_free(s->sum);
  g_free(s->outer);
  g_free(s->tmp);
  g_free(s);
}

gint64 rat_feature_stats_dim(const RatFeatureStats *s) { return s->dim; }
gint64 rat_feature_stats_count(const RatFeatureStats *s) { return s->n; }

/* Adds rows already widened to float64 in s->tmp (centred in place). */
static void add_rows(RatFeatureStats *s, gint64 rows) {
  const gint64 D = s->dim;
  if (s->n == 0) {
    for (gint64 j = 0; j < D; j++) {
      double acc = 0;
      for (gint64 i = 0; i < rows; i++) acc += s->tmp[i * D + j];
      s->shift[j] = acc / (double)rows;
    }
  }
  for (gint64 i = 0; i < rows; i++)
    for (gint64 j = 0; j < D; j++) {
      double v = s->tmp[i * D + j] - s->shift[j];
      s->tmp[i * D + j] = v;
      s->sum[j] += v;
    }
  /* column-major view: tmp is A = X^T [D, rows] with lda D; C += A A^T is sum_i x_i x_i^T. 'U' in column-major
   * is the lower triangle of the row-major matrix. */
  const int n = (int)D, k = (int)rows, lda = (int)D;
  const double one = 1.0;
  dsyrk_("U", "N", &n, &k, &one, s->tmp, &lda, &one, s->outer, &n, 1, 1);
  s->n += rows;
}

void rat_feature_stats_add(RatFeatureStats *s, const float *x, gint64 n) {
  for (gint64 r0 = 0; r0 < n; r0 += s->chunk) {
    gint64 rows = MIN(s->chunk, n - r0);
    for (gint64 i = 0; i < rows * s->dim; i++) s->tmp[i] = x[r0 * s->dim + i];
    add_rows(s, rows);
  }
}

void rat_feature_stats_add_f64(RatFeatureStats *s, const double *x, gint64 n) {
  for (gint64 r0 = 0; r0 < n; r0 += s->chunk) {
    gint64 rows = MIN(s->chunk, n - r0);
    memcpy(s->tmp, x + r0 * s->dim, sizeof(double) * (gsize)(rows * s->dim));
    add_rows(s, rows);
  }
}

gboolean rat_feature_stats_finish(const RatFeatureStats *s, gboolean allow_rank_deficient, const char *what,
                                  double **mu_out, double **sigma_out, GError **error) {
  const gint64 D = s->dim, N = s->n;
  if (N < 2) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_SHAPE,
                "%s: %" G_GINT64_FORMAT " sample%s: a covariance needs at least 2 (np.cov divides by N - 1; pytorch-fid "
                "would get NaN from it and scipy's sqrtm would then stop with 'array must not contain infs or NaNs')",
                what, N, N == 1 ? "" : "s");
    return FALSE;
  }
  if (N < D && !allow_rank_deficient) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_SHAPE,
                "%s: %" G_GINT64_FORMAT " samples of %" G_GINT64_FORMAT "-d features: the covariance has rank at most %"
                G_GINT64_FORMAT " < %" G_GINT64_FORMAT ", so it is singular and the FID measures the sample size more "
                "than the images. Use at least %" G_GINT64_FORMAT " samples (the papers use about 30,000), or allow "
                "it explicitly (eval.fid.allow_rank_deficient=true for ratfw eval, --allow-rank-deficient for eval "
                "fid and eval stats): pytorch-fid computes it without a warning", what, N, D, N - 1, D, D);
    return FALSE;
  }
  double *mu = g_new(double, D), *sigma = g_new(double, (gsize)D * D);
  for (gint64 j = 0; j < D; j++) mu[j] = s->shift[j] + s->sum[j] / (double)N;
  /* sigma = (sum (x-c)(x-c)^T - sum(x-c) sum(x-c)^T / N) / (N - 1); the lower triangle holds the sums */
  for (gint64 i = 0; i < D; i++)
    for (gint64 j = 0; j <= i; j++) {
      double v = (s->outer[i * D + j] - s->sum[i] * s->sum[j] / (double)N) / (double)(N - 1);
      sigma[i * D + j] = sigma[j * D + i] = v;
    }
  *mu_out = mu;
  *sigma_out = sigma;
  return TRUE;
}

/* ---- checks ----------------------------------------------------------------------------------------------- */

gboolean rat_fid_check_sigma(const char *what, gint64 D, const double *sigma, GError **error) {
  double big = 0;
  for (gint64 i = 0; i < D * D; i++) {
    if (!isfinite(sigma[i])) {
      g_set_error(error, RAT_ERROR, RAT_ERROR_NUMERIC, "%s: sigma[%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "] is %g: a "
                  "covariance must be finite", what, i / D, i % D, sigma[i]);
      return FALSE;
    }
    big = MAX(big, fabs(sigma[i]));
  }
  for (gint64 i = 0; i < D; i++) {
    if (sigma[i * D + i] < 0) {
      g_set_error(error, RAT_ERROR, RAT_ERROR_NUMERIC, "%s: sigma[%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "] = %g is "
                  "negative: not a covariance", what, i, i, sigma[i * D + i]);
      return FALSE;
    }
    for (gint64 j = 0; j < i; j++) {
      double a = sigma[i * D + j], b = sigma[j * D + i];
      if (fabs(a - b) > 1e-9 * big) {
        g_set_error(error, RAT_ERROR, RAT_ERROR_NUMERIC, "%s: sigma is not symmetric: [%" G_GINT64_FORMAT ", %"
                    G_GINT64_FORMAT "] = %.17g but [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "] = %.17g (a covariance "
                    "is symmetric; was the file written transposed or in another layout?)", what, i, j, a, j, i, b);
        return FALSE;
      }
    }
  }
  return TRUE;
}

/* An eigenvalue @lo of a matrix whose largest is @hi is a real departure from positive semi-definiteness, not
 * round-off: its square root (the imaginary part it gives sqrtm) exceeds pytorch-fid's 1e-3 and it is more than
 * 1e-9 of the largest. */
static gboolean clearly_negative(double lo, double hi) { return lo < 0 && sqrt(-lo) > 1e-3 && -lo > 1e-9 * MAX(hi, 0.0); }

/* ---- the distance ----------------------------------------------------------------------------------------- */

/* Eigenvalues (ascending) of the symmetric [n, n] @a, which is overwritten by the eigenvectors when @vectors
 * (column k of the column-major result = row k of the row-major buffer). Returns LAPACK's info. */
static int syevd(int n, double *a, double *w, gboolean vectors) {
  const char *jobz = vectors ? "V" : "N";
  int lwork = -1, liwork = -1, info = 0, iw = 0;
  double wq = 0;
  dsyevd_(jobz, "L", &n, a, &n, w, &wq, &lwork, &iw, &liwork, &info, 1, 1);
  if (info != 0) return info;
  lwork = (int)wq + 1;
  liwork = MAX(iw, 1);
  double *work = g_new(double, lwork);
  int *iwork = g_new(int, liwork);
  dsyevd_(jobz, "L", &n, a, &n, w, work, &lwork, iwork, &liwork, &info, 1, 1);
  g_free(work);
  g_free(iwork);
  return info;
}

/* Tr(sqrtm(S1 S2)) (symmetric inputs). FALSE when LAPACK fails or something is not finite; @min_lambda gets the
 * most negative eigenvalue of the product (round-off for positive semi-definite inputs). */
static gboolean trace_sqrt_product(int D, const double *s1, const double *s2, double eps, double *out,
                                   double *min_lambda, double *max_lambda, double *min_w1, double *max_w1) {
  gsize DD = (gsize)D * D;
  double *v = g_new(double, DD), *w = g_new(double, D), *t = g_new(double, DD), *m = g_new(double, DD);
  memcpy(v, s1, DD * sizeof(double));
  if (eps > 0)
    for (int i = 0; i < D; i++) v[(gsize)i * D + i] += eps;
  gboolean ok = syevd(D, v, w, TRUE) == 0;
  if (ok) {
    *min_w1 = w[0];
    *max_w1 = w[D - 1];
    /* B = V diag(sqrt(max(w, 0))): in column-major the eigenvectors are the columns of v; scale column k */
    for (int k = 0; k < D; k++) {
      double r = sqrt(MAX(w[k], 0.0));
      for (int i = 0; i < D; i++) v[(gsize)k * D + i] *= r;
    }
    /* t = (S2 + eps I) B, m = B^T t (column-major; S2 symmetric, so its row-major buffer is itself) */
    const double *s2e = s2;
    double *s2copy = NULL;
    if (eps > 0) {
      s2copy = g_memdup2(s2, DD * sizeof(double));
      for (int i = 0; i < D; i++) s2copy[(gsize)i * D + i] += eps;
      s2e = s2copy;
    }
    const double one = 1.0, zero = 0.0;
    dgemm_("N", "N", &D, &D, &D, &one, s2e, &D, v, &D, &zero, t, &D, 1, 1);
    dgemm_("T", "N", &D, &D, &D, &one, v, &D, t, &D, &zero, m, &D, 1, 1);
    g_free(s2copy);
    for (int i = 0; i < D; i++)
      for (int j = 0; j < i; j++) {
        double a = 0.5 * (m[(gsize)i * D + j] + m[(gsize)j * D + i]);
        m[(gsize)i * D + j] = m[(gsize)j * D + i] = a;
      }
    ok = syevd(D, m, w, FALSE) == 0;
  }
  if (ok) {
    double tr = 0;
    *min_lambda = w[0];
    *max_lambda = w[D - 1];
    for (int k = 0; k < D; k++) tr += sqrt(MAX(w[k], 0.0));
    *out = tr;
    ok = isfinite(tr) && isfinite(w[0]) && isfinite(w[D - 1]);
  }
  g_free(v);
  g_free(w);
  g_free(t);
  g_free(m);
  return ok;
}

gboolean rat_frechet_distance(gint64 dim, const double *mu1, const double *sigma1, const double *mu2,
                              const double *sigma2, RatFrechet *out, GError **error) {
  memset(out, 0, sizeof *out);
  if (dim > G_MAXINT / 2) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_UNSUPPORTED, "features of width %" G_GINT64_FORMAT " are too wide", dim);
    return FALSE;
  }
  const int D = (int)dim;
  double mt = 0, t1 = 0, t2 = 0;
  for (int i = 0; i < D; i++) {
    if (!isfinite(mu1[i]) || !isfinite(mu2[i])) {
      g_set_error(error, RAT_ERROR, RAT_ERROR_NUMERIC, "mu%d[%d] is not finite", isfinite(mu1[i]) ? 2 : 1, i);
      return FALSE;
    }
    double d = mu1[i] - mu2[i];
    mt += d * d;
    t1 += sigma1[(gsize)i * D + i];
    t2 += sigma2[(gsize)i * D + i];
  }
  double tr = 0, lo = 0, hi = 0, lo1 = 0, hi1 = 0;
  gboolean ok = trace_sqrt_product(D, sigma1, sigma2, 0.0, &tr, &lo, &hi, &lo1, &hi1);
  if (!ok) {
    /* pytorch-fid: "fid calculation produces singular product; adding eps to diagonal of cov estimates" */
    out->regularized = TRUE;
    ok = trace_sqrt_product(D, sigma1, sigma2, FID_EPS, &tr, &lo, &hi, &lo1, &hi1);
  }
  /* The route takes sqrt(max(w, 0)) of S1's eigenvalues, which would hide an indefinite S1 (an indefinite S2 shows
   * in the product's eigenvalues below): refuse it as scipy's sqrtm of the product would. */
  if (ok && clearly_negative(lo1, hi1)) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_NUMERIC, "sigma1 has the eigenvalue %g: it is not positive semi-definite, "
                "so it is not a covariance (pytorch-fid would stop with 'Imaginary component')", lo1);
    return FALSE;
  }
  if (!ok) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_NUMERIC, "the square root of the covariance product failed even with %g "
                "added to the diagonals (are the covariances finite?)", FID_EPS);
    return FALSE;
  }
  /* A negative eigenvalue of the product gives sqrtm an imaginary part of about sqrt(-lambda); pytorch-fid stops when
   * the imaginary part of the diagonal exceeds 1e-3. Round-off of a positive semi-definite product stays far below. */
  if (clearly_negative(lo, hi)) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_NUMERIC, "the covariance product has the eigenvalue %g: a sigma is not "
                "positive semi-definite, so it is not a covariance (pytorch-fid would stop with 'Imaginary component')",
                lo);
    return FALSE;
  }
  out->mean_term = mt;
  out->trace1 = t1;
  out->trace2 = t2;
  out->trace_sqrt = tr;
  out->fid = mt + t1 + t2 - 2.0 * tr;
  return TRUE;
}

/* ---- files -------------------------------------------------------------------------------------------------- */

char *rat_file_sha256(const char *path, GError **error) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_IO, "cannot read %s: %s", path, g_strerror(errno));
    return NULL;
  }
  GChecksum *c = g_checksum_new(G_CHECKSUM_SHA256);
  guint8 *buf = g_malloc(1 << 20);
  size_t r;
  while ((r = fread(buf, 1, 1 << 20, f)) > 0) g_checksum_update(c, buf, r);
  gboolean bad = ferror(f);
  fclose(f);
  g_free(buf);
  char *hex = bad ? NULL : g_strdup(g_checksum_get_string(c));
  g_checksum_free(c);
  if (bad) g_set_error(error, RAT_ERROR, RAT_ERROR_IO, "cannot read %s", path);
  return hex;
}

/* A sigma read from a file is positive semi-definite up to round-off (one eigenvalue pass, jobz N: about a second
 * at D = 2048). Statistics computed from features are by construction. */
static gboolean check_psd(const char *path, gint64 dim, const double *sigma, GError **error) {
  if (dim > G_MAXINT / 2) return TRUE; /* rat_frechet_distance refuses it */
  const int D = (int)dim;
  double *a = g_memdup2(sigma, sizeof(double) * (gsize)D * D), *w = g_new(double, D);
  int info = syevd(D, a, w, FALSE);
  double lo = w[0], hi = w[D - 1];
  g_free(a);
  g_free(w);
  if (info != 0) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_NUMERIC, "%s: the eigenvalues of sigma did not converge (LAPACK dsyevd "
                "info %d)", path, info);
    return FALSE;
  }
  if (clearly_negative(lo, hi)) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_NUMERIC, "%s: sigma has the eigenvalue %g (the largest is %g): it is not "
                "positive semi-definite, so it is not a covariance (pytorch-fid would stop with 'Imaginary component')",
                path, lo, hi);
    return FALSE;
  }
  return TRUE;
}

gboolean rat_fid_stats_load(const char *path, gboolean allow_rank_deficient, gint64 *dim, double **mu_out,
                            double **sigma_out, gint64 *n_out, GError **error) {
  RatNpz *z = rat_npz_open(path, error);
  if (!z) return FALSE;
  gboolean ok = FALSE;
  double *mu = NULL, *sigma = NULL, *feat = NULL;
  int nd = 0;
  gint64 sh[RAT_NPY_MAX_DIMS];
  *n_out = 0;
  if (rat_npz_has(z, "mu") || rat_npz_has(z, "sigma")) {
    if (!(mu = rat_npz_read_f64(z, "mu", &nd, sh, error))) goto out;
    if (nd != 1 || sh[0] < 1) {
      g_set_error(error, RAT_ERROR, RAT_ERROR_SHAPE, "%s: mu has %d dimensions%s; expected a vector [D]", path, nd,
                  nd == 2 ? " (a [N, D] feature set goes in 'features')" : "");
      goto out;
    }
    gint64 D = sh[0];
    if (!(sigma = rat_npz_read_f64(z, "sigma", &nd, sh, error))) goto out;
    if (nd != 2 || sh[0] != D || sh[1] != D) {
      char *d = rat_npy_describe(&(RatNpyArray){.ndim = nd, .shape = {sh[0], sh[1], sh[2]}, .dtype = RAT_NPY_F64});
      g_set_error(error, RAT_ERROR, RAT_ERROR_SHAPE, "%s: sigma is %s but mu has %" G_GINT64_FORMAT " entries: expected "
                  "sigma [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "]", path, d, D, D, D);
      g_free(d);
      goto out;
    }
    for (gint64 i = 0; i < D; i++)
      if (!isfinite(mu[i])) {
        g_set_error(error, RAT_ERROR, RAT_ERROR_NUMERIC, "%s: mu[%" G_GINT64_FORMAT "] is %g: it must be finite", path, i,
                    mu[i]);
        goto out;
      }
    if (!rat_fid_check_sigma(path, D, sigma, error) || !check_psd(path, D, sigma, error)) goto out;
    *dim = D;
  } else if (rat_npz_has(z, "features")) {
    if (!(feat = rat_npz_read_f64(z, "features", &nd, sh, error))) goto out;
    if (nd != 2 || sh[1] < 1) {
      g_set_error(error, RAT_ERROR, RAT_ERROR_SHAPE, "%s: features has %d dimensions: expected [N, D] (one row per "
                  "image)", path, nd);
      goto out;
    }
    for (gint64 i = 0; i < sh[0] * sh[1]; i++)
      if (!isfinite(feat[i])) {
        g_set_error(error, RAT_ERROR, RAT_ERROR_NUMERIC, "%s: features[%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "] is %g: "
                    "features must be finite", path, i / sh[1], i % sh[1], feat[i]);
        goto out;
      }
    RatFeatureStats *s = rat_feature_stats_new(sh[1]);
    rat_feature_stats_add_f64(s, feat, sh[0]);
    gboolean fin = rat_feature_stats_finish(s, allow_rank_deficient, path, &mu, &sigma, error);
    rat_feature_stats_free(s);
    if (!fin) goto out;
    *dim = sh[1];
    *n_out = sh[0];
  } else {
    GString *all = g_string_new(NULL);
    for (guint k = 0; k < rat_npz_count(z); k++) g_string_append_printf(all, "%s%s", k ? ", " : "", rat_npz_name(z, k));
    g_set_error(error, RAT_ERROR, RAT_ERROR_NOT_FOUND, "%s: holds neither 'mu' + 'sigma' nor 'features' (it holds: %s)",
                path, all->len ? all->str : "nothing");
    g_string_free(all, TRUE);
    goto out;
  }
  ok = TRUE;
out:
  rat_npz_close(z);
  g_free(feat);
  if (ok) {
    *mu_out = mu;
    *sigma_out = sigma;
  } else {
    g_free(mu);
    g_free(sigma);
  }
  return ok;
}

gboolean rat_fid_stats_save(const char *path, gint64 dim, const double *mu, const double *sigma, GError **error) {
  RatNpyArray a[2] = {{.dtype = RAT_NPY_F64, .ndim = 1, .shape = {dim}, .data = (gpointer)mu},
                      {.dtype = RAT_NPY_F64, .ndim = 2, .shape = {dim, dim}, .data = (gpointer)sigma}};
  const char *names[2] = {"mu", "sigma"};
  return rat_npz_write(path, 2, names, a, FALSE, error);
}
