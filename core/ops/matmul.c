/* Matrix products through oneDNN's row-major dnnl_sgemm: rat_matmul (torch.matmul: 1-D promotion, batch
 * broadcasting) and rat_linear (y = x W^T + b, torch.nn.functional.linear). Transposed views go to sgemm as
 * transposition flags, never copied. Backward (differentiable): gA = gC B^T, gB = A^T gC, summed over broadcast
 * batch dims; linear: gx = gy W, gW = gy^T x over all leading dims, gb = sum(gy). */
#include "config.h"

#include "ratfw-private.h"
#include <ratfw/module.h>

#include <oneapi/dnnl/dnnl.h>

/* Per-matrix work (2MNK flops) below which a batch is split across threads, one single-threaded sgemm each. */
#define BATCH_PARALLEL_FLOPS (1 << 22)

/* dnnl_sgemm, deterministic in the thread count: its matrix-vector path (M or N = 1) splits K across threads,
 * so those run on one thread. Everything else was checked bit-identical between 1 and 2 threads. */
static void sgemm(char ta, char tb, gint64 M, gint64 N, gint64 K, float alpha, const float *A, gint64 lda,
                  const float *B, gint64 ldb, float beta, float *C, gint64 ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    for (gint64 i = 0; i < M; i++)
      for (gint64 j = 0; j < N; j++) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
    return;
  }
#ifdef _OPENMP
  gboolean serial = (M == 1 || N == 1) && !omp_in_parallel();
  int prev = omp_get_max_threads();
  if (serial) omp_set_num_threads(1);
#endif
  dnnl_status_t st = dnnl_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  rat_flops_add((guint64)(2.0 * (double)M * (double)N * (double)K));
#ifdef _OPENMP
  if (serial) omp_set_num_threads(prev);
#endif
  rat_check(st == dnnl_success,
            "ratfw: dnnl_sgemm(%c, %c, M=%" G_GINT64_FORMAT ", N=%" G_GINT64_FORMAT ", K=%" G_GINT64_FORMAT
            ", lda=%" G_GINT64_FORMAT ", ldb=%" G_GINT64_FORMAT ") failed with status %d",
            ta, tb, M, N, K, lda, ldb, (int)st);
}

/* How to pass the [R, C] matrix with element strides (rs, cs) to sgemm: 'N' with ld = rs when each row is
 * contiguous, 'T' with ld = cs when each column is. FALSE when neither (the caller copies). */
static gboolean gemm_layout(gint64 R, gint64 C, gint64 rs, gint64 cs, char *trans, gint64 *ld) {
  if ((C == 1 || cs == 1) && (R == 1 || rs >= MAX(C, 1))) {
    *trans = 'N';
    *ld = R == 1 ? MAX(C, 1) : rs;
    return TRUE;
  }
  if ((R == 1 || rs == 1) && (C == 1 || cs >= MAX(R, 1))) {
    *trans = 'T';
    *ld = C == 1 ? MAX(R, 1) : cs;
    return TRUE;
  }
  return FALSE;
}

static RatTensor *dense_copy(RatTensor *t) {
  RatTensor *c;
  RAT_NO_GRAD_BEGIN
  c = rat_contiguous(t);
  RAT_NO_GRAD_END
  return c;
}

/* Strides of @t's leading (batch) dims broadcast to @batch (0 where broadcast). @t has nb_t = t->ndim - 2. */
static void batch_strides(const RatTensor *t, RatShape batch, gint64 *st) {
  int lead = batch.ndim - (t->ndim - 2);
  for (int i = 0; i < batch.ndim; i++) {
    if (i < lead) {
      st[i] = 0;
      continue;
    }
    gint64 d = t->shape[i - lead];
    st[i] = (d == 1 && batch.d[i] != 1) ? 0 : t->stride[i - lead];
  }
}

/* Can the batch dims (strides st) and the row dim (size M, stride rs) be walked as one row index of stride rs? */
static gboolean rows_fold(RatShape batch, const gint64 *st, gint64 M, gint64 rs) {
  gint64 expect = rs * M;
  for (int i = batch.ndim - 1; i >= 0; i--) {
    if (batch.d[i] == 1) continue;
    if (st[i] != expect) return FALSE;
    expect *= batch.d[i];
  }
  return TRUE;
}

/* y[batch..., M, N] (contiguous) = a[..., M, K] @ b[..., K, N]; both at least 2-D. No autograd. */
static RatTensor *bmm_kernel(RatTensor *a, RatTensor *b) {
  gint64 M = a->shape[a->ndim - 2], K = a->shape[a->ndim - 1], N = b->shape[b->ndim - 1];
  RatShape ab = {.ndim = a->ndim - 2}, bb = {.ndim = b->ndim - 2}, batch;
  for (int i = 0; i < ab.ndim; i++) ab.d[i] = a->shape[i];
  for (int i = 0; i < bb.ndim; i++) bb.d[i] = b->shape[i];
  if (b->shape[b->ndim - 2] != K || !rat_broadcast_shape(ab, bb, &batch) || batch.ndim + 2 > RAT_MAX_DIMS) {
    char *x = rat_shape_to_string(rat_tensor_shape(a)), *y = rat_shape_to_string(rat_tensor_shape(b));
    g_error("ratfw: matmul: shapes %s and %s do not fit (need [..., M, K] @ [..., K, N], broadcastable batch)", x, y);
  }
  RatShape ys = batch;
  ys.d[ys.ndim++] = M;
  ys.d[ys.ndim++] = N;
  RatTensor *y = rat_empty(ys);
  gint64 nbatch = rat_shape_numel(batch);
  if (nbatch == 0 || M == 0 || N == 0) return y;

  char ta, tb;
  gint64 lda, ldb;
  if (!gemm_layout(M, K, a->stride[a->ndim - 2], a->stride[a->ndim - 1], &ta, &lda)) {
    a = dense_copy(a);
    gemm_layout(M, K, a->stride[a->ndim - 2], a->stride[a->ndim - 1], &ta, &lda);
  }
  if (!gemm_layout(K, N, b->stride[b->ndim - 2], b->stride[b->ndim - 1], &tb, &ldb)) {
    b = dense_copy(b);
    gemm_layout(K, N, b->stride[b->ndim - 2], b->stride[b->ndim - 1], &tb, &ldb);
  }
  gint64 sa[RAT_MAX_DIMS], sb[RAT_MAX_DIMS];
  batch_strides(a, batch, sa);
  batch_strides(b, batch, sb);
  const float *A = rat_tensor_data(a), *B = rat_tensor_data(b);
  float *C = rat_tensor_data(y);

  /* b shared by the whole batch and a's batch rows evenly strided: one GEMM with M' = batch * M. */
  gboolean b_shared = TRUE;
  for (int i = 0; i < batch.ndim; i++)
    if (batch.d[i] != 1 && sb[i] != 0) b_shared = FALSE;
  if (nbatch == 1 || (b_shared && ta == 'N' && rows_fold(batch, sa, M, lda))) {
    sgemm(ta, tb, nbatch * M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, N);
    return y;
  }
  gint64 *oa = g_new(gint64, nbatch), *ob = g_new(gint64, nbatch);
  gint64 idx[RAT_MAX_DIMS] = {0};
  for (gint64 p = 0; p < nbatch; p++) {
    oa[p] = ob[p] = 0;
    for (int i = 0; i < batch.ndim; i++) {
      oa[p] += idx[i] * sa[i];
      ob[p] += idx[i] * sb[i];
    }
    for (int i = batch.ndim - 1; i >= 0; i--) {
      if (++idx[i] < batch.d[i]) break;
      idx[i] = 0;
    }
  }
  gboolean par = rat_get_num_threads() > 1 && 2.0 * M * N * K < BATCH_PARALLEL_FLOPS;
#pragma omp parallel for schedule(static) if (par)
  for (gint64 p = 0; p < nbatch; p++)
    sgemm(ta, tb, M, N, K, 1.0f, A + oa[p], lda, B + ob[p], ldb, 0.0f, C + p * M * N, N);
  g_free(oa);
  g_free(ob);
  return y;
}

/* ---- matmul -------------------------------------------------------------------------------------------------- */

static void matmul_backward(RatNode *n, RatTensor *const *gy, RatTensor **gx) {
  RatTensor *a = rat_node_saved(n, 0), *b = rat_node_saved(n, 1), *g = gy[0];
  if (rat_node_needs_grad(n, 0)) gx[0] = rat_sum_to(rat_matmul(g, rat_transpose(b, -1, -2)), rat_tensor_shape(a));
  if (rat_node_needs_grad(n, 1)) {
    gint64 K = a->shape[a->ndim - 1], N = b->shape[b->ndim - 1];
    if (b->ndim == 2 && a->ndim > 2) /* shared right operand: one GEMM over all batch rows */
      gx[1] = rat_matmul(rat_transpose(rat_reshape(a, RAT_SHAPE(-1, K)), 0, 1), rat_reshape(g, RAT_SHAPE(-1, N)));
    else
      gx[1] = rat_sum_to(rat_matmul(rat_transpose(a, -1, -2), g), rat_tensor_shape(b));
  }
}
static const RatOpDef op_matmul = {.name = "matmul", .n_inputs = 2, .backward = matmul_backward};

RatTensor *rat_matmul(RatTensor *a, RatTensor *b) {
  rat_check(a->dtype == RAT_DTYPE_F32 && b->dtype == RAT_DTYPE_F32, "ratfw: matmul needs f32 operands");
  rat_check(a->ndim >= 1 && b->ndim >= 1, "ratfw: matmul of a 0-d tensor");
  RatTensor *a2 = a->ndim == 1 ? rat_unsqueeze(a, 0) : a;
  RatTensor *b2 = b->ndim == 1 ? rat_unsqueeze(b, 1) : b;
  RatTensor *y = bmm_kernel(a2, b2);
  RatTensor *in[2] = {a2, b2};
  RatNode *n = rat_record(&op_matmul, &y, 1, in, 2);
  if (n) {
    rat_node_save(n, a2);
    rat_node_save(n, b2);
  }
  if (a->ndim == 1) y = rat_squeeze(y, -2);
  if (b->ndim == 1) y = rat_squeeze(y, -1);
  return y;
}

/* ---- linear ------------------------------------------------------------------------------------------------- */

static void linear_backward(RatNode *n, RatTensor *const *gy, RatTensor **gx) {
  RatTensor *x = rat_node_saved(n, 0), *w = rat_node_saved(n, 1), *g = gy[0];
  gint64 out = w->shape[0], in = w->shape[1];
  if (rat_node_needs_grad(n, 0)) gx[0] = rat_matmul(g, w);
  if (rat_node_needs_grad(n, 1))
    gx[1] = rat_matmul(rat_transpose(rat_reshape(g, RAT_SHAPE(-1, out)), 0, 1), rat_reshape(x, RAT_SHAPE(-1, in)));
  if (rat_node_needs_grad(n, 2)) gx[2] = g->ndim == 1 ? g : rat_sum(g, (1u << (g->ndim - 1)) - 1u, FALSE);
}
static const RatOpDef op_linear = {.name = "linear", .n_inputs = 3, .backward = linear_backward};

RatTensor *rat_linear(RatTensor *x, RatTensor *w, RatTensor *bias) {
  rat_check(x->dtype == RAT_DTYPE_F32 && w->dtype == RAT_DTYPE_F32, "ratfw: linear needs f32 operands");
  if (w->ndim != 2 || x->ndim < 1 || x->shape[x->ndim - 1] != w->shape[1] ||
      (bias && (bias->ndim != 1 || bias->shape[0] != w->shape[0]))) {
    char *xs = rat_shape_to_string(rat_tensor_shape(x)), *ws = rat_shape_to_string(rat_tensor_shape(w));
    char *bs = bias ? rat_shape_to_string(rat_tensor_shape(bias)) : g_strdup("none");
    g_error("ratfw: linear: input %s, weight %s, bias %s do not fit (need [..., In], [Out, In], [Out])", xs, ws, bs);
  }
  gint64 out = w->shape[0], in = w->shape[1];
  gint64 rows = in ? rat_tensor_numel(x) / in : 0;
  RatShape ys = rat_tensor_shape(x);
  ys.d[ys.ndim - 1] = out;
  RatTensor *y = rat_empty(ys);

  /* x as [rows, In]: leading dims must fold into one evenly strided row index with unit column stride */
  RatTensor *xd = x;
  RatShape lead = {.ndim = x->ndim - 1};
  for (int i = 0; i < lead.ndim; i++) lead.d[i] = x->shape[i];
  gint64 ldx = x->ndim >= 2 ? x->stride[x->ndim - 2] : in;
  gint64 m_last = x->ndim >= 2 ? x->shape[x->ndim - 2] : 1;
  RatShape outer = lead;
  if (outer.ndim) outer.ndim--;
  if (!((in <= 1 || x->stride[x->ndim - 1] == 1) && (rows <= 1 || ldx >= in) &&
        rows_fold(outer, x->stride, m_last, ldx))) {
    xd = dense_copy(x);
    ldx = in;
  }
  if (rows <= 1) ldx = MAX(in, 1);
  /* op(B) = W^T: a row-major W [Out, In] is passed as 'T'; a transposed view of a row-major [In, Out] as 'N' */
  char tw;
  gint64 ldw;
  RatTensor *wd = w;
  if (!gemm_layout(out, in, w->stride[0], w->stride[1], &tw, &ldw)) {
    wd = dense_copy(w);
    gemm_layout(out, in, wd->stride[0], wd->stride[1], &tw, &ldw);
  }
  char tb = tw == 'N' ? 'T' : 'N';
  float *Y = rat_tensor_data(y);
  float beta = 0.0f;
  if (bias && rows > 0) {
    float *bv = g_new(float, MAX(out, 1));
    rat_tensor_read(bias, bv);
#pragma omp parallel for schedule(static) if (rows * out > 65536)
    for (gint64 r = 0; r < rows; r++) memcpy(Y + r * out, bv, out * sizeof(float));
    g_free(bv);
    beta = 1.0f;
  }
  sgemm('N', tb, rows, out, in, 1.0f, rat_tensor_data(xd), ldx, rat_tensor_data(wd), ldw, beta, Y, out);
  RatTensor *inputs[3] = {x, w, bias};
  RatNode *n = rat_record(&op_linear, &y, 1, inputs, 3);
  if (n) {
    rat_node_save(n, x);
    rat_node_save(n, w);
  }
  return y;
}
