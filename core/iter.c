/* Strided elementwise iteration with broadcasting, dimension reordering and merging, parallel over rows.
 * Every elementwise kernel in core/ops/ is an inner loop handed to rat_iter_run(). */
#include "config.h"

#include "ratfw-private.h"

gboolean rat_broadcast_shape(RatShape a, RatShape b, RatShape *out) {
  int n = MAX(a.ndim, b.ndim);
  RatShape r = {.ndim = n};
  for (int i = 0; i < n; i++) {
    gint64 da = i < n - a.ndim ? 1 : a.d[i - (n - a.ndim)];
    gint64 db = i < n - b.ndim ? 1 : b.d[i - (n - b.ndim)];
    if (da != db && da != 1 && db != 1) return FALSE;
    r.d[i] = da == 1 ? db : da;
  }
  *out = r;
  return TRUE;
}

void rat_broadcast_strides(const RatTensor *t, int ndim, const gint64 *shape, gint64 *st) {
  int lead = ndim - t->ndim;
  g_assert(lead >= 0);
  for (int i = 0; i < ndim; i++) {
    if (i < lead) {
      st[i] = 0;
      continue;
    }
    gint64 d = t->shape[i - lead];
    rat_check(d == shape[i] || d == 1, "ratfw: cannot broadcast dim %d of size %" G_GINT64_FORMAT " to %" G_GINT64_FORMAT,
              i - lead, d, shape[i]);
    st[i] = (d == 1 && shape[i] != 1) ? 0 : t->stride[i - lead];
  }
}

static gint64 absl(gint64 x) { return x < 0 ? -x : x; }

void rat_iter_init(RatIter *it, int n_ops, RatTensor *const *ops, const gint64 (*strides)[RAT_MAX_DIMS], int ndim,
                   const gint64 *shape) {
  g_assert(n_ops >= 1 && n_ops <= RAT_ITER_MAX);
  memset(it, 0, sizeof(*it));
  it->n_ops = n_ops;
  for (int k = 0; k < n_ops; k++) {
    it->esize[k] = 4;
    it->base[k] = (char *)ops[k]->storage->data + ops[k]->offset * 4;
  }
  /* Keep dims of size != 1, then sort by operand 0's stride (descending; ties: operand 1). */
  int dims[RAT_MAX_DIMS], n = 0;
  gboolean empty = FALSE;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] == 0) empty = TRUE;
    if (shape[i] != 1) dims[n++] = i;
  }
  for (int i = 1; i < n; i++) {
    int d = dims[i], j = i - 1;
    while (j >= 0) {
      gint64 s0 = absl(strides[0][dims[j]]), t0 = absl(strides[0][d]);
      gboolean swap = s0 < t0;
      if (s0 == t0 && n_ops > 1) swap = absl(strides[1][dims[j]]) < absl(strides[1][d]);
      if (!swap) break;
      dims[j + 1] = dims[j];
      j--;
    }
    dims[j + 1] = d;
  }
  /* Merge inner into outer when contiguous for every operand. */
  int m = 0;
  for (int i = 0; i < n; i++) {
    int d = dims[i];
    if (m > 0) {
      gboolean ok = TRUE;
      for (int k = 0; k < n_ops; k++)
        if (it->stride[k][m - 1] != strides[k][d] * shape[d]) ok = FALSE;
      if (ok) {
        it->shape[m - 1] *= shape[d];
        for (int k = 0; k < n_ops; k++) it->stride[k][m - 1] = strides[k][d];
        continue;
      }
    }
    it->shape[m] = shape[d];
    for (int k = 0; k < n_ops; k++) it->stride[k][m] = strides[k][d];
    m++;
  }
  if (m == 0) {
    it->shape[0] = 1;
    m = 1;
  }
  if (empty) it->shape[0] = 0;
  it->ndim = m;
  it->outer = 1;
  for (int i = 0; i < m - 1; i++) it->outer *= it->shape[i];
  if (empty) it->outer = 0;
}

static void run_rows(const RatIter *it, gint64 r0, gint64 r1, RatIterFunc fn, gpointer user) {
  int m = it->ndim, K = it->n_ops;
  gint64 idx[RAT_MAX_DIMS] = {0};
  gint64 rem = r0;
  for (int i = m - 2; i >= 0; i--) {
    idx[i] = rem % it->shape[i];
    rem /= it->shape[i];
  }
  char *ptr[RAT_ITER_MAX];
  gint64 step[RAT_ITER_MAX];
  for (int k = 0; k < K; k++) step[k] = it->stride[k][m - 1];
  gint64 inner = it->shape[m - 1];
  for (gint64 r = r0; r < r1; r++) {
    for (int k = 0; k < K; k++) {
      gint64 off = 0;
      for (int i = 0; i < m - 1; i++) off += idx[i] * it->stride[k][i];
      ptr[k] = it->base[k] + off * it->esize[k];
    }
    fn(inner, ptr, step, user);
    for (int i = m - 2; i >= 0; i--) {
      if (++idx[i] < it->shape[i]) break;
      idx[i] = 0;
    }
  }
}

void rat_iter_run(const RatIter *it, RatIterFunc fn, gpointer user) {
  gint64 rows = it->outer, inner = it->shape[it->ndim - 1];
  if (rows == 0 || inner == 0) return;
  gint64 total = rows * inner;
  int nt = rat_get_num_threads();
  if (nt <= 1 || total < 32768) {
    run_rows(it, 0, rows, fn, user);
    return;
  }
  if (rows == 1) { /* split the inner dimension instead */
#pragma omp parallel num_threads(nt)
    {
#ifdef _OPENMP
      int t = omp_get_thread_num(), T = omp_get_num_threads();
#else
      int t = 0, T = 1;
#endif
      gint64 a = inner * t / T, b = inner * (t + 1) / T;
      if (b > a) {
        char *ptr[RAT_ITER_MAX];
        for (int k = 0; k < it->n_ops; k++) ptr[k] = it->base[k] + a * it->stride[k][it->ndim - 1] * it->esize[k];
        gint64 step[RAT_ITER_MAX];
        for (int k = 0; k < it->n_ops; k++) step[k] = it->stride[k][it->ndim - 1];
        fn(b - a, ptr, step, user);
      }
    }
    return;
  }
#pragma omp parallel num_threads(nt)
  {
#ifdef _OPENMP
    int t = omp_get_thread_num(), T = omp_get_num_threads();
#else
    int t = 0, T = 1;
#endif
    gint64 a = rows * t / T, b = rows * (t + 1) / T;
    if (b > a) run_rows(it, a, b, fn, user);
  }
}
