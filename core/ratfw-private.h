/* Internal helpers shared by the core's op implementations: strided iteration, parallel loops, checks.
 * Not installed; plugins use the public headers. */
#pragma once

#include <ratfw/ops.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

G_BEGIN_DECLS

#define RAT_ALIGN 64

/* Elementwise iteration over up to RAT_ITER_MAX operands of one shape (operand 0 is usually the output;
 * inputs may have stride 0 on broadcast dims). Dimensions are reordered so the innermost loop has the
 * smallest stride of operand 0, and adjacent dimensions are merged when every operand allows it. */
#define RAT_ITER_MAX 4
typedef struct {
  int n_ops;
  int ndim;                                  /* after merging; the last dim is the inner loop */
  gint64 shape[RAT_MAX_DIMS];
  gint64 stride[RAT_ITER_MAX][RAT_MAX_DIMS]; /* in elements */
  char *base[RAT_ITER_MAX];                  /* data + offset, as bytes */
  int esize[RAT_ITER_MAX];
  gint64 outer; /* product of shape[0..ndim-1) */
} RatIter;

/* Inner loop: n elements; ptr[k] points at operand k's first element; step[k] its stride in elements. */
typedef void (*RatIterFunc)(gint64 n, char **ptr, const gint64 *step, gpointer user);

/* All operands must have exactly @shape (use rat__broadcast_strides for inputs that broadcast). */
void rat_iter_init(RatIter *it, int n_ops, RatTensor *const *ops, const gint64 (*strides)[RAT_MAX_DIMS],
                   int ndim, const gint64 *shape);
void rat_iter_run(const RatIter *it, RatIterFunc fn, gpointer user); /* parallel over outer rows */

/* Broadcast shape of a and b (numpy rules); returns FALSE when incompatible. */
gboolean rat_broadcast_shape(RatShape a, RatShape b, RatShape *out);
/* Strides of @t viewed with broadcast @shape (0 where @t has size 1 or is missing). */
void rat_broadcast_strides(const RatTensor *t, int ndim, const gint64 *shape, gint64 *stride_out);

/* Dense strides of @shape following the dim order of @like (dense) or row-major when @like is NULL/not dense. */
void rat_strides_like(RatShape shape, const RatTensor *like, gint64 *stride_out);
void rat_strides_contiguous(RatShape shape, gint64 *stride_out);
RatTensor *rat_empty_strided(RatDType dtype, RatShape shape, const gint64 *stride);

/* Number of fixed-size chunks (independent of thread count) for deterministic parallel reductions. */
#define RAT_REDUCE_CHUNK 4096


char *rat_tensor_describe(const RatTensor *t); /* "f32[2, 3] strides [3, 1]" */
int rat_norm_axis(int axis, int ndim);

G_END_DECLS
