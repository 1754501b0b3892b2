/* 2-D convolution (torch.nn.functional.conv2d semantics: stride, padding, dilation, groups, optional bias) through
 * oneDNN 2.6 on channels-last activations, with weights reordered into the primitive's blocked layout and cached.
 * Backward (differentiable, as torch/csrc/autograd/FunctionsManual.cpp _convolution_double_backward):
 *   y = conv(x, w) + b:       gx = conv_bwd_data(gy, w)   gw = conv_bwd_weight(x, gy)   gb = sum_{B,H,W} gy
 *   gx = conv_bwd_data(g, w):  dG -> conv(G, w)            dw -> conv_bwd_weight(G, g)
 *   gw = conv_bwd_weight(x, g): dx -> conv_bwd_data(g, G)  dg -> conv(x, G) */
#include "config.h"

#include "ratfw-private.h"
#include <ratfw/module.h>
#include "dnnl-private.h"

/* ---- process-wide oneDNN state ------------------------------------------------------------------------------ */

static dnnl_engine_t engine;
static dnnl_stream_t stream;
static GMutex dnnl_mutex;
static gpointer scratch_buf;
static gsize scratch_size;

static void dnnl_init_once(void) {
  static gsize once = 0;
  if (g_once_init_enter(&once)) {
    RAT_DNNL_CHECK(dnnl_engine_create(&engine, dnnl_cpu, 0));
    RAT_DNNL_CHECK(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags));
    g_once_init_leave(&once, 1);
  }
}

dnnl_engine_t rat_dnnl_engine(void) {
  dnnl_init_once();
  return engine;
}

dnnl_stream_t rat_dnnl_stream(void) {
  dnnl_init_once();
  return stream;
}

void rat_dnnl_lock(void) { g_mutex_lock(&dnnl_mutex); }
void rat_dnnl_unlock(void) { g_mutex_unlock(&dnnl_mutex); }

/* Grow-only aligned buffer. */
static gpointer grow(gpointer *buf, gsize *have, gsize size) {
  if (size > *have) {
    free(*buf);
    gsize n = (size + 4095) & ~(gsize)4095;
    *buf = aligned_alloc(RAT_ALIGN, n);
    if (!*buf) g_error("ratfw: out of memory allocating a %" G_GSIZE_FORMAT "-byte oneDNN buffer", n);
    *have = n;
  }
  return *buf;
}

gpointer rat_dnnl_scratchpad(gsize size) { return grow(&scratch_buf, &scratch_size, MAX(size, 1)); }

const char *rat_dnnl_impl_name(const_dnnl_primitive_desc_t pd) {
  const char *s = NULL;
  if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &s) != dnnl_success || !s) return "unknown";
  return s;
}

/* ---- geometry ------------------------------------------------------------------------------------------------- */

enum { K_FWD = 0, K_BWD_DATA = 1, K_BWD_WEIGHTS = 2 };

static int deterministic_threads(void) {
#ifdef _OPENMP
  static int n = 0;
  if (!n) n = MAX(omp_get_num_procs(), 1);
  return n;
#else
  return 1;
#endif
}

/* Sets the OpenMP thread count oneDNN sees while creating or running a primitive; returns the previous one. */
static int threads_enter(const gint64 threads) {
  int prev = rat_get_num_threads();
  if (prev != threads) rat_set_num_threads((int)threads);
  return prev;
}

static void threads_leave(int prev, const gint64 threads) {
  if (prev != threads) rat_set_num_threads(prev);
}

/* Everything that defines a primitive; all gint64 so the key hashes as an array. Activations are always dense
 * NHWC and user weights plain goihw, so the layouts are implied by the sizes. oneDNN fixes the work split for the
 * thread count current when a primitive is created, so that count is part of the key. Forward and backward-data
 * sum each output element in one thread (bits independent of the count); backward-weights splits the batch over
 * threads and adds the partial sums, so its bits would change with the count: it is always created and run with
 * a fixed count, the number of processors (deterministic_threads), whatever rat_set_num_threads says. */
typedef struct {
  gint64 kind, bias, threads;
  gint64 B, Ci, H, W, Co, KH, KW, OH, OW;
  gint64 sh, sw, ph, pw, dh, dw, g;
} ConvKey;
#define KEY_LEN (sizeof(ConvKey) / sizeof(gint64))

static guint key_hash(gconstpointer p) {
  const gint64 *k = p;
  guint64 h = 1469598103934665603ull;
  for (gsize i = 0; i < KEY_LEN; i++) h = (h ^ (guint64)k[i]) * 1099511628211ull;
  return (guint)(h ^ (h >> 32));
}

static gboolean key_equal(gconstpointer a, gconstpointer b) { return memcmp(a, b, sizeof(ConvKey)) == 0; }

static gint64 out_size(gint64 in, gint64 k, gint64 s, gint64 p, gint64 d) { return (in + 2 * p - d * (k - 1) - 1) / s + 1; }

/* Validates x [B,Ci,H,W] and w [Co,Ci/g,KH,KW] against @p; fills the geometry part of @k. */
static void geometry(ConvKey *k, RatShape xs, RatShape ws, RatConvParams p, const char *what) {
  memset(k, 0, sizeof(*k));
  gboolean ok = xs.ndim == 4 && ws.ndim == 4 && p.groups >= 1 && p.stride[0] >= 1 && p.stride[1] >= 1 &&
                p.dilation[0] >= 1 && p.dilation[1] >= 1 && p.padding[0] >= 0 && p.padding[1] >= 0;
  if (ok) ok = ws.d[0] % p.groups == 0 && xs.d[1] == ws.d[1] * p.groups;
  k->B = xs.d[0], k->Ci = xs.d[1], k->H = xs.d[2], k->W = xs.d[3];
  k->Co = ws.d[0], k->KH = ws.d[2], k->KW = ws.d[3];
  k->sh = p.stride[0], k->sw = p.stride[1], k->ph = p.padding[0], k->pw = p.padding[1];
  k->dh = p.dilation[0], k->dw = p.dilation[1], k->g = p.groups;
  k->threads = rat_get_num_threads(); /* replaced for backward-weights, see deterministic_threads() */
  if (ok) {
    k->OH = out_size(k->H, k->KH, k->sh, k->ph, k->dh);
    k->OW = out_size(k->W, k->KW, k->sw, k->pw, k->dw);
    ok = k->OH >= 1 && k->OW >= 1 && k->H + 2 * k->ph >= k->dh * (k->KH - 1) + 1 &&
         k->W + 2 * k->pw >= k->dw * (k->KW - 1) + 1 && k->B >= 1 && k->Co >= 1 && k->Ci >= 1;
  }
  if (!ok) {
    char *a = rat_shape_to_string(xs), *b = rat_shape_to_string(ws);
    g_error("ratfw: %s: input %s and weight %s do not fit stride (%d, %d), padding (%d, %d), dilation (%d, %d), "
            "groups %d (need input channels = weight dim 1 * groups, output channels divisible by groups, kernel "
            "no larger than the padded input)",
            what, a, b, p.stride[0], p.stride[1], p.padding[0], p.padding[1], p.dilation[0], p.dilation[1], p.groups);
  }
}

/* ---- cached primitives ------------------------------------------------------------------------------------------ */

typedef struct {
  ConvKey key;
  dnnl_primitive_desc_t pd;
  dnnl_primitive_t prim;
  const char *impl;
  dnnl_memory_desc_t user_wmd, wmd; /* plain goihw, and the primitive's (maybe blocked) weights layout */
  gboolean w_plain;                 /* wmd == user_wmd: no reorder needed */
  dnnl_primitive_t w_reorder;       /* user -> prim (fwd, bwd data) or prim -> user (bwd weights) */
  dnnl_memory_t m_a, m_w, m_b, m_c, m_scratch, m_wuser; /* a: src/diff_src, c: dst/diff_dst */
  gsize scratch_bytes, w_bytes;
} ConvPrim;

static GHashTable *prims; /* ConvKey -> ConvPrim (the key is the first member) */

static void md_act(dnnl_memory_desc_t *md, gint64 B, gint64 C, gint64 H, gint64 W) {
  dnnl_dims_t d = {B, C, H, W};
  RAT_DNNL_CHECK(dnnl_memory_desc_init_by_tag(md, 4, d, dnnl_f32, dnnl_nhwc));
}

static void md_weights(dnnl_memory_desc_t *md, const ConvKey *k, dnnl_format_tag_t any_or_plain) {
  if (k->g == 1) {
    dnnl_dims_t d = {k->Co, k->Ci, k->KH, k->KW};
    RAT_DNNL_CHECK(dnnl_memory_desc_init_by_tag(md, 4, d, dnnl_f32, any_or_plain == dnnl_format_tag_any ? any_or_plain : dnnl_oihw));
  } else {
    dnnl_dims_t d = {k->g, k->Co / k->g, k->Ci / k->g, k->KH, k->KW};
    RAT_DNNL_CHECK(dnnl_memory_desc_init_by_tag(md, 5, d, dnnl_f32, any_or_plain == dnnl_format_tag_any ? any_or_plain : dnnl_goihw));
  }
}

static dnnl_memory_t mem_for(const dnnl_memory_desc_t *md) {
  dnnl_memory_t m;
  RAT_DNNL_CHECK(dnnl_memory_create(&m, md, engine, DNNL_MEMORY_NONE));
  return m;
}

static ConvPrim *prim_get(const ConvKey *k) {
  dnnl_init_once();
  if (!prims) prims = g_hash_table_new(key_hash, key_equal);
  ConvPrim *cp = g_hash_table_lookup(prims, k);
  if (cp) return cp;
  cp = g_new0(ConvPrim, 1);
  cp->key = *k;
  int prev_threads = threads_enter(k->threads);

  dnnl_memory_desc_t src, dst, wany, bias;
  md_act(&src, k->B, k->Ci, k->H, k->W);
  md_act(&dst, k->B, k->Co, k->OH, k->OW);
  md_weights(&wany, k, dnnl_format_tag_any);
  md_weights(&cp->user_wmd, k, dnnl_format_tag_undef);
  dnnl_dims_t bd = {k->Co};
  RAT_DNNL_CHECK(dnnl_memory_desc_init_by_tag(&bias, 1, bd, dnnl_f32, dnnl_a));
  /* oneDNN: dilation counts the gaps (torch d - 1); padding_r is whatever makes the output size come out, which
   * is smaller than padding_l (possibly negative) when the last window does not reach the padded edge. */
  dnnl_dims_t strides = {k->sh, k->sw}, dil = {k->dh - 1, k->dw - 1}, pl = {k->ph, k->pw};
  dnnl_dims_t pr = {(k->OH - 1) * k->sh + k->dh * (k->KH - 1) + 1 - k->H - k->ph,
                    (k->OW - 1) * k->sw + k->dw * (k->KW - 1) + 1 - k->W - k->pw};

  dnnl_primitive_attr_t attr;
  RAT_DNNL_CHECK(dnnl_primitive_attr_create(&attr));
  RAT_DNNL_CHECK(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));

  dnnl_convolution_desc_t fd;
  RAT_DNNL_CHECK(dnnl_dilated_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct, &src,
                                                             &wany, k->bias ? &bias : NULL, &dst, strides, dil, pl, pr));
  dnnl_primitive_desc_t fwd_pd;
  RAT_DNNL_CHECK(dnnl_primitive_desc_create(&fwd_pd, &fd, attr, engine, NULL));
  dnnl_query_t wq = dnnl_query_weights_md;
  if (k->kind == K_FWD) {
    cp->pd = fwd_pd;
  } else if (k->kind == K_BWD_DATA) {
    dnnl_convolution_desc_t bd_desc;
    RAT_DNNL_CHECK(dnnl_dilated_convolution_backward_data_desc_init(&bd_desc, dnnl_convolution_direct, &src, &wany, &dst,
                                                                     strides, dil, pl, pr));
    RAT_DNNL_CHECK(dnnl_primitive_desc_create(&cp->pd, &bd_desc, attr, engine, fwd_pd));
    dnnl_primitive_desc_destroy(fwd_pd);
  } else {
    dnnl_convolution_desc_t bw_desc;
    RAT_DNNL_CHECK(dnnl_dilated_convolution_backward_weights_desc_init(&bw_desc, dnnl_convolution_direct, &src, &wany,
                                                                        NULL, &dst, strides, dil, pl, pr));
    RAT_DNNL_CHECK(dnnl_primitive_desc_create(&cp->pd, &bw_desc, attr, engine, fwd_pd));
    dnnl_primitive_desc_destroy(fwd_pd);
    wq = dnnl_query_diff_weights_md;
  }
  dnnl_primitive_attr_destroy(attr);
  RAT_DNNL_CHECK(dnnl_primitive_create(&cp->prim, cp->pd));
  cp->impl = rat_dnnl_impl_name(cp->pd);

  cp->wmd = *dnnl_primitive_desc_query_md(cp->pd, wq, 0);
  cp->w_bytes = dnnl_memory_desc_get_size(&cp->wmd);
  cp->w_plain = dnnl_memory_desc_equal(&cp->wmd, &cp->user_wmd);
  cp->m_w = mem_for(&cp->wmd);
  cp->m_wuser = mem_for(&cp->user_wmd);
  if (!cp->w_plain) {
    dnnl_primitive_desc_t rpd;
    const dnnl_memory_desc_t *from = k->kind == K_BWD_WEIGHTS ? &cp->wmd : &cp->user_wmd;
    const dnnl_memory_desc_t *to = k->kind == K_BWD_WEIGHTS ? &cp->user_wmd : &cp->wmd;
    RAT_DNNL_CHECK(dnnl_reorder_primitive_desc_create(&rpd, from, engine, to, engine, NULL));
    RAT_DNNL_CHECK(dnnl_primitive_create(&cp->w_reorder, rpd));
    dnnl_primitive_desc_destroy(rpd);
  }
  cp->m_a = mem_for(&src);
  cp->m_c = mem_for(&dst);
  if (k->kind == K_FWD && k->bias) cp->m_b = mem_for(&bias);
  const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(cp->pd, dnnl_query_scratchpad_md, 0);
  cp->scratch_bytes = smd ? dnnl_memory_desc_get_size(smd) : 0;
  if (cp->scratch_bytes) cp->m_scratch = mem_for(smd);
  g_hash_table_insert(prims, &cp->key, cp);
  threads_leave(prev_threads, k->threads);
  return cp;
}

/* ---- weight cache ---------------------------------------------------------------------------------------------
 * Reordered copies of weight tensors keyed on (storage, offset, shape, strides, target layout), valid while the
 * storage version is unchanged (optimisers bump it). An entry holds a storage reference so the pointer cannot be
 * recycled under it; entries whose storage nobody else holds any more are dropped on the next miss. */

typedef struct {
  RatStorage *storage;
  gint64 offset, shape[4], stride[4];
  dnnl_memory_desc_t md;
  guint64 version;
  gpointer buf;
  gsize bytes;
  guint64 last_use;
} WEntry;

static GPtrArray *wcache;
static guint64 wcache_clock, n_reorders;
static gsize wcache_bytes;
#define WCACHE_MAX_ENTRIES 512
#define WCACHE_MAX_BYTES ((gsize)1 << 30)

static gpointer wtmp_buf; /* reorder target for weights that are not worth caching (gradients) */
static gsize wtmp_size;

static void wentry_free(WEntry *e) {
  wcache_bytes -= e->bytes;
  rat_storage_unref(e->storage);
  free(e->buf);
  g_free(e);
}

static void wcache_sweep(void) {
  for (guint i = 0; i < wcache->len;) {
    WEntry *e = wcache->pdata[i];
    if (g_atomic_int_get(&e->storage->ref) == 1) {
      wentry_free(e);
      g_ptr_array_remove_index_fast(wcache, i);
    } else {
      i++;
    }
  }
  while (wcache->len && (wcache->len >= WCACHE_MAX_ENTRIES || wcache_bytes > WCACHE_MAX_BYTES)) {
    guint oldest = 0;
    for (guint i = 1; i < wcache->len; i++)
      if (((WEntry *)wcache->pdata[i])->last_use < ((WEntry *)wcache->pdata[oldest])->last_use) oldest = i;
    wentry_free(wcache->pdata[oldest]);
    g_ptr_array_remove_index_fast(wcache, oldest);
  }
}

static void reorder_run(dnnl_primitive_t r, dnnl_memory_t from, dnnl_memory_t to) {
  dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
  RAT_DNNL_CHECK(dnnl_primitive_execute(r, stream, 2, args));
  RAT_DNNL_CHECK(dnnl_stream_wait(stream));
}

/* Weights of @w in the layout of @cp (lock held). @w must be [Co, Ci/g, KH, KW]. */
static gpointer weights_for(ConvPrim *cp, RatTensor *w) {
  RatTensor *wc = NULL;
  if (cp->w_plain) {
    RAT_NO_GRAD_BEGIN
    wc = rat_contiguous(w);
    RAT_NO_GRAD_END
    return rat_tensor_data(wc);
  }
  WEntry *e = NULL;
  gboolean cache = w->grad_fn == NULL; /* computed tensors are fresh every call */
  if (cache) {
    if (!wcache) wcache = g_ptr_array_new();
    for (guint i = 0; i < wcache->len && !e; i++) {
      WEntry *c = wcache->pdata[i];
      if (c->storage == w->storage && c->offset == w->offset && !memcmp(c->shape, w->shape, sizeof(c->shape)) &&
          !memcmp(c->stride, w->stride, sizeof(c->stride)) && dnnl_memory_desc_equal(&c->md, &cp->wmd))
        e = c;
    }
    if (e && e->version == w->storage->version) {
      e->last_use = ++wcache_clock;
      return e->buf;
    }
    if (!e) {
      wcache_sweep();
      e = g_new0(WEntry, 1);
      e->storage = rat_storage_ref(w->storage);
      e->offset = w->offset;
      memcpy(e->shape, w->shape, sizeof(e->shape));
      memcpy(e->stride, w->stride, sizeof(e->stride));
      e->md = cp->wmd;
      e->bytes = cp->w_bytes;
      e->buf = aligned_alloc(RAT_ALIGN, (cp->w_bytes + RAT_ALIGN - 1) & ~(gsize)(RAT_ALIGN - 1));
      if (!e->buf) g_error("ratfw: out of memory caching conv weights");
      wcache_bytes += e->bytes;
      g_ptr_array_add(wcache, e);
    }
    e->version = w->storage->version;
    e->last_use = ++wcache_clock;
  }
  RAT_NO_GRAD_BEGIN
  wc = rat_contiguous(w);
  RAT_NO_GRAD_END
  gpointer dst = e ? e->buf : grow(&wtmp_buf, &wtmp_size, cp->w_bytes);
  RAT_DNNL_CHECK(dnnl_memory_set_data_handle(cp->m_wuser, rat_tensor_data(wc)));
  RAT_DNNL_CHECK(dnnl_memory_set_data_handle(cp->m_w, dst));
  reorder_run(cp->w_reorder, cp->m_wuser, cp->m_w);
  n_reorders++;
  return dst;
}

guint64 rat_conv2d_weight_reorders(void) { return n_reorders; }

/* Runs the primitive: a = src / diff_src, c = dst / diff_dst (both NHWC data pointers). Lock held. */
static void prim_run(ConvPrim *cp, float *a, gpointer wbuf, const float *bias, float *c) {
  dnnl_exec_arg_t args[5];
  int n = 0;
  RAT_DNNL_CHECK(dnnl_memory_set_data_handle(cp->m_a, a));
  RAT_DNNL_CHECK(dnnl_memory_set_data_handle(cp->m_w, wbuf));
  RAT_DNNL_CHECK(dnnl_memory_set_data_handle(cp->m_c, c));
  switch ((int)cp->key.kind) {
  case K_FWD:
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SRC, cp->m_a};
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, cp->m_w};
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_DST, cp->m_c};
    if (cp->m_b) {
      RAT_DNNL_CHECK(dnnl_memory_set_data_handle(cp->m_b, (gpointer)bias));
      args[n++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, cp->m_b};
    }
    break;
  case K_BWD_DATA:
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_SRC, cp->m_a};
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, cp->m_w};
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_DST, cp->m_c};
    break;
  default:
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SRC, cp->m_a};
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_WEIGHTS, cp->m_w};
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_DST, cp->m_c};
    break;
  }
  if (cp->m_scratch) {
    RAT_DNNL_CHECK(dnnl_memory_set_data_handle(cp->m_scratch, rat_dnnl_scratchpad(cp->scratch_bytes)));
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, cp->m_scratch};
  }
  int prev = threads_enter(cp->key.threads);
  RAT_DNNL_CHECK(dnnl_primitive_execute(cp->prim, stream, n, args));
  RAT_DNNL_CHECK(dnnl_stream_wait(stream));
  threads_leave(prev, cp->key.threads);
}

const char *rat_conv2d_impl_name(RatShape xs, RatShape ws, gboolean bias, RatConvParams p, int which) {
  ConvKey k;
  geometry(&k, xs, ws, p, "rat_conv2d_impl_name");
  k.kind = which;
  k.bias = which == K_FWD && bias;
  if (which == K_BWD_WEIGHTS) k.threads = deterministic_threads();
  rat_dnnl_lock();
  const char *s = prim_get(&k)->impl;
  rat_dnnl_unlock();
  return s;
}

static RatTensor *nhwc_input(RatTensor *t) {
  rat_check(t->dtype == RAT_DTYPE_F32, "ratfw: convolution of a non-f32 tensor");
  RatTensor *r;
  RAT_NO_GRAD_BEGIN
  r = rat_to_nhwc(t);
  RAT_NO_GRAD_END
  return r;
}

static void save_params(RatNode *n, RatConvParams p) {
  n->i[0] = p.stride[0], n->i[1] = p.stride[1], n->i[2] = p.padding[0], n->i[3] = p.padding[1];
  n->i[4] = p.dilation[0], n->i[5] = p.dilation[1], n->i[6] = p.groups;
}

static RatConvParams node_params(const RatNode *n) {
  RatConvParams p = {.stride = {(int)n->i[0], (int)n->i[1]},
                     .padding = {(int)n->i[2], (int)n->i[3]},
                     .dilation = {(int)n->i[4], (int)n->i[5]},
                     .groups = (int)n->i[6]};
  return p;
}

static RatShape out_shape(const ConvKey *k) { return RAT_SHAPE(k->B, k->Co, k->OH, k->OW); }

/* ---- forward ------------------------------------------------------------------------------------------------------ */

static void conv_backward(RatNode *n, RatTensor *const *gy, RatTensor **gx) {
  RatConvParams p = node_params(n);
  RatTensor *x = rat_node_saved(n, 0), *w = rat_node_saved(n, 1);
  if (rat_node_needs_grad(n, 0)) gx[0] = rat_conv2d_backward_data(gy[0], w, n->in_shape[0], p);
  if (rat_node_needs_grad(n, 1)) gx[1] = rat_conv2d_backward_weight(x, gy[0], n->in_shape[1], p);
  if (rat_node_needs_grad(n, 2)) gx[2] = rat_sum(gy[0], RAT_AXIS(0) | RAT_AXIS(2) | RAT_AXIS(3), FALSE);
}
static const RatOpDef op_conv = {.name = "conv2d", .n_inputs = 3, .backward = conv_backward};

RatTensor *rat_conv2d(RatTensor *x, RatTensor *w, RatTensor *bias, RatConvParams p) {
  ConvKey k;
  geometry(&k, rat_tensor_shape(x), rat_tensor_shape(w), p, "rat_conv2d");
  if (bias)
    rat_check(bias->ndim == 1 && bias->shape[0] == k.Co, "ratfw: rat_conv2d: bias of %" G_GINT64_FORMAT
              " elements for %" G_GINT64_FORMAT " output channels", rat_tensor_numel(bias), k.Co);
  k.kind = K_FWD;
  k.bias = bias != NULL;
  RatTensor *y = rat_empty_nhwc(out_shape(&k));
  RatScope s = rat_scope_push();
  RatTensor *xn = nhwc_input(x), *bc = NULL;
  if (bias) {
    RAT_NO_GRAD_BEGIN
    bc = rat_contiguous(bias);
    RAT_NO_GRAD_END
  }
  rat_dnnl_lock();
  ConvPrim *cp = prim_get(&k);
  gpointer wb = weights_for(cp, w);
  prim_run(cp, rat_tensor_data(xn), wb, bc ? rat_tensor_data(bc) : NULL, rat_tensor_data(y));
  rat_dnnl_unlock();
  rat_flops_add((guint64)(2.0 * (double)rat_tensor_numel(y) * (double)(w->shape[1] * w->shape[2] * w->shape[3])));
  rat_scope_pop(s);
  RatTensor *in[3] = {x, w, bias};
  RatNode *n = rat_record(&op_conv, &y, 1, in, 3);
  if (n) {
    save_params(n, p);
    rat_node_save(n, x);
    rat_node_save(n, w);
  }
  return y;
}

/* ---- backward data ------------------------------------------------------------------------------------------------- */

static void bwd_data_backward(RatNode *n, RatTensor *const *gy, RatTensor **gx) {
  RatConvParams p = node_params(n);
  RatTensor *g = rat_node_saved(n, 0), *w = rat_node_saved(n, 1);
  if (rat_node_needs_grad(n, 0)) gx[0] = rat_conv2d(gy[0], w, NULL, p);
  if (rat_node_needs_grad(n, 1)) gx[1] = rat_conv2d_backward_weight(gy[0], g, n->in_shape[1], p);
}
static const RatOpDef op_bwd_data = {.name = "conv2d_backward_data", .n_inputs = 2, .backward = bwd_data_backward};

RatTensor *rat_conv2d_backward_data(RatTensor *gy, RatTensor *w, RatShape in_shape, RatConvParams p) {
  ConvKey k;
  geometry(&k, in_shape, rat_tensor_shape(w), p, "rat_conv2d_backward_data");
  if (!rat_shape_equal(rat_tensor_shape(gy), out_shape(&k))) {
    char *a = rat_shape_to_string(rat_tensor_shape(gy)), *b = rat_shape_to_string(out_shape(&k));
    g_error("ratfw: rat_conv2d_backward_data: gradient of shape %s, the convolution's output is %s", a, b);
  }
  k.kind = K_BWD_DATA;
  RatTensor *gx = rat_empty_nhwc(in_shape);
  RatScope s = rat_scope_push();
  RatTensor *gn = nhwc_input(gy);
  rat_dnnl_lock();
  ConvPrim *cp = prim_get(&k);
  gpointer wb = weights_for(cp, w);
  prim_run(cp, rat_tensor_data(gx), wb, NULL, rat_tensor_data(gn));
  rat_dnnl_unlock();
  rat_scope_pop(s);
  RatTensor *in[2] = {gy, w};
  RatNode *n = rat_record(&op_bwd_data, &gx, 1, in, 2);
  if (n) {
    save_params(n, p);
    rat_node_save(n, gy);
    rat_node_save(n, w);
  }
  return gx;
}

/* ---- backward weights --------------------------------------------------------------------------------------------- */

static gpointer dw_buf; /* the primitive's blocked diff-weights, before the reorder to OIHW */
static gsize dw_size;

static void bwd_weight_backward(RatNode *n, RatTensor *const *gy, RatTensor **gx) {
  RatConvParams p = node_params(n);
  RatTensor *x = rat_node_saved(n, 0), *g = rat_node_saved(n, 1);
  if (rat_node_needs_grad(n, 0)) gx[0] = rat_conv2d_backward_data(g, gy[0], n->in_shape[0], p);
  if (rat_node_needs_grad(n, 1)) gx[1] = rat_conv2d(x, gy[0], NULL, p);
}
static const RatOpDef op_bwd_weight = {.name = "conv2d_backward_weight", .n_inputs = 2, .backward = bwd_weight_backward};

RatTensor *rat_conv2d_backward_weight(RatTensor *x, RatTensor *gy, RatShape w_shape, RatConvParams p) {
  ConvKey k;
  geometry(&k, rat_tensor_shape(x), w_shape, p, "rat_conv2d_backward_weight");
  if (!rat_shape_equal(rat_tensor_shape(gy), out_shape(&k))) {
    char *a = rat_shape_to_string(rat_tensor_shape(gy)), *b = rat_shape_to_string(out_shape(&k));
    g_error("ratfw: rat_conv2d_backward_weight: gradient of shape %s, the convolution's output is %s", a, b);
  }
  k.kind = K_BWD_WEIGHTS;
  k.threads = deterministic_threads();
  RatTensor *gw = rat_empty(w_shape);
  RatScope s = rat_scope_push();
  RatTensor *xn = nhwc_input(x), *gn = nhwc_input(gy);
  rat_dnnl_lock();
  ConvPrim *cp = prim_get(&k);
  gpointer wb = cp->w_plain ? (gpointer)rat_tensor_data(gw) : grow(&dw_buf, &dw_size, cp->w_bytes);
  prim_run(cp, rat_tensor_data(xn), wb, NULL, rat_tensor_data(gn));
  if (!cp->w_plain) {
    RAT_DNNL_CHECK(dnnl_memory_set_data_handle(cp->m_wuser, rat_tensor_data(gw)));
    reorder_run(cp->w_reorder, cp->m_w, cp->m_wuser);
  }
  rat_dnnl_unlock();
  rat_scope_pop(s);
  RatTensor *in[2] = {x, gy};
  RatNode *n = rat_record(&op_bwd_weight, &gw, 1, in, 2);
  if (n) {
    save_params(n, p);
    rat_node_save(n, x);
    rat_node_save(n, gy);
  }
  return gw;
}
