/* oneDNN plumbing shared by the ops that call it (convolution now; matmul, norms, pooling may follow): one CPU
 * engine and one stream for the process, a lock around execution, a grow-only user scratchpad, and the name of
 * the implementation oneDNN picked (to check it is a jit:avx512 kernel and not a reference one). Not installed. */
#pragma once

#include <ratfw/ops.h>

#include <oneapi/dnnl/dnnl.h>

G_BEGIN_DECLS

#define RAT_DNNL_CHECK(call)                                                                                  \
  do {                                                                                                        \
    dnnl_status_t rat_st_ = (call);                                                                           \
    if (G_UNLIKELY(rat_st_ != dnnl_success))                                                                  \
      g_error("ratfw: oneDNN call %s failed with status %d (%s:%d)", #call, (int)rat_st_, __FILE__, __LINE__); \
  } while (0)

dnnl_engine_t rat_dnnl_engine(void);
dnnl_stream_t rat_dnnl_stream(void);
/* Serialises use of cached oneDNN memory objects and of the scratchpad (execution itself is OpenMP-parallel). */
void rat_dnnl_lock(void);
void rat_dnnl_unlock(void);
/* A buffer of at least @size bytes, valid until the next call; only while holding the lock. */
gpointer rat_dnnl_scratchpad(gsize size);
/* Implementation name of a primitive descriptor ("jit:avx512_core", "gemm:jit", "ref:any", ...). */
const char *rat_dnnl_impl_name(const_dnnl_primitive_desc_t pd);

/* Which implementation rat_conv2d uses at these shapes: @which 0 forward, 1 backward-data, 2 backward-weights.
 * The string lives as long as the process (primitives are cached). For tests and benchmarks. */
const char *rat_conv2d_impl_name(RatShape x_shape, RatShape w_shape, gboolean bias, RatConvParams p, int which);
/* Number of weight reorders done so far (a cache hit does none). For tests. */
guint64 rat_conv2d_weight_reorders(void);

G_END_DECLS
