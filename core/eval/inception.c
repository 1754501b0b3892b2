/* Inception-v3 feature extractors for FID (eval.h): images [n, 3, S, S] in [-1, 1] -> pool3 features [n, 2048], the
 * output of the final adaptive average pool (before dropout and fc), no gradient.
 *   inception:     torchvision's inception_v3 (torchvision/models/inception.py: InceptionA..E, BasicConv2d = conv
 *                  without bias, BatchNorm eps 1e-3, ReLU), as GALIP/RATLIP's FID uses it (reference §9.1);
 *   inception_fid: pytorch-fid's FID-Inception (pytorch_fid/inception.py: FIDInceptionA, FIDInceptionC and
 *                  FIDInceptionE_1 average-pool with count_include_pad=False; FIDInceptionE_2 max-pools 3x3 stride 1
 *                  in its pool branch; the 1008-class fc is not used), the TF-ported network most papers' FIDs use.
 * BatchNorm (eval mode) is folded into each convolution at load: w' = w * g / sqrt(v + eps), b' = beta - m g / sqrt(v
 * + eps). Convolutions run through oneDNN (rat_conv2d, channels-last); the 3x3 pools with padding are plain C on
 * channels-last maps here (forward only, no autograd: an extractor needs none). Weights: safetensors with the .pth's
 * parameter names (tools/convert-inception.py). */
#include "config.h"

#include <ratfw/error.h>
#include <ratfw/eval.h>
#include <ratfw/io.h>
#include <ratfw/ops.h>

#include <math.h>
#include <string.h>

/* ---- 3x3 pools with padding (forward only) ---------------------------------------------------------------- */

RatTensor *rat_eval_pool2d(RatTensor *x, RatEvalPool kind, int k, int s, int pad) {
  rat_check(x->ndim == 4 && x->dtype == RAT_DTYPE_F32 && k >= 1 && s >= 1 && pad >= 0 && 2 * pad <= k,
            "rat_eval_pool2d: needs a 4-D f32 tensor, k >= 1, s >= 1, 0 <= pad <= k/2");
  gint64 B = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
  gint64 OH = (H + 2 * pad - k) / s + 1, OW = (W + 2 * pad - k) / s + 1;
  rat_check(OH >= 1 && OW >= 1, "rat_eval_pool2d: kernel %d larger than the padded %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT
            " input", k, H, W);
  RatTensor *xn, *y;
  RAT_NO_GRAD_BEGIN
  xn = rat_to_nhwc(x); /* channels-last (C = 1 maps are contiguous either way) */
  y = rat_empty_nhwc(RAT_SHAPE(B, C, OH, OW));
  RAT_NO_GRAD_END
  const float *X = rat_tensor_data(xn);
  float *Y = rat_tensor_data(y);
  int nt = rat_get_num_threads();
  gboolean par = B * C * OH * OW > 32768;
#pragma omp parallel for schedule(static) num_threads(nt) if (par)
  for (gint64 r = 0; r < B * OH; r++) {
    gint64 b = r / OH, oh = r % OH;
    gint64 h0 = oh * s - pad, h1 = MIN(h0 + k, H);
    h0 = MAX(h0, 0);
    for (gint64 ow = 0; ow < OW; ow++) {
      gint64 w0 = ow * s - pad, w1 = MIN(w0 + k, W);
      w0 = MAX(w0, 0);
      float *yp = Y + ((b * OH + oh) * OW + ow) * C;
      if (kind == RAT_EVAL_POOL_MAX) {
        for (gint64 c = 0; c < C; c++) yp[c] = -INFINITY;
        for (gint64 h = h0; h < h1; h++)
          for (gint64 w = w0; w < w1; w++) {
            const float *xp = X + ((b * H + h) * W + w) * C;
            for (gint64 c = 0; c < C; c++) yp[c] = xp[c] > yp[c] || isnan(xp[c]) ? xp[c] : yp[c];
          }
      } else {
        for (gint64 c = 0; c < C; c++) yp[c] = 0.0f;
        for (gint64 h = h0; h < h1; h++)
          for (gint64 w = w0; w < w1; w++) {
            const float *xp = X + ((b * H + h) * W + w) * C;
            for (gint64 c = 0; c < C; c++) yp[c] += xp[c];
          }
        /* count_include_pad: the padded window (k^2, as the window never leaves the padded input here); else the
         * elements inside the input */
        float scale = 1.0f / (float)(kind == RAT_EVAL_POOL_AVG_INCLUDE_PAD ? k * k : (h1 - h0) * (w1 - w0));
        for (gint64 c = 0; c < C; c++) yp[c] *= scale;
      }
    }
  }
  return y;
}

/* ---- the network ------------------------------------------------------------------------------------------ */

/* One BasicConv2d with its BatchNorm folded in. */
typedef struct {
  RatTensor *w, *b; /* [Co, Ci, KH, KW], [Co] */
  RatConvParams p;
} Conv;

struct _RatInception {
  gboolean fid;
  GHashTable *convs; /* "Mixed_5b.branch1x1" -> Conv */
};

static void conv_free(gpointer data) {
  Conv *c = data;
  rat_tensor_unref(c->w);
  rat_tensor_unref(c->b);
  g_free(c);
}

void rat_inception_free(RatInception *net) {
  if (!net) return;
  if (net->convs) g_hash_table_destroy(net->convs);
  g_free(net);
}

/* The architecture as data: every BasicConv2d with its channels, kernel, stride and padding. */
typedef struct {
  char *name;
  gint64 ci, co;
  int kh, kw, s, ph, pw;
} Spec;

static void spec(GArray *a, const char *block, const char *name, gint64 ci, gint64 co, int kh, int kw, int s, int ph,
                 int pw) {
  Spec e = {block ? g_strdup_printf("%s.%s", block, name) : g_strdup(name), ci, co, kh, kw, s, ph, pw};
  g_array_append_val(a, e);
}

static void spec_a(GArray *a, const char *n, gint64 ci, gint64 pf) {
  spec(a, n, "branch1x1", ci, 64, 1, 1, 1, 0, 0);
  spec(a, n, "branch5x5_1", ci, 48, 1, 1, 1, 0, 0);
  spec(a, n, "branch5x5_2", 48, 64, 5, 5, 1, 2, 2);
  spec(a, n, "branch3x3dbl_1", ci, 64, 1, 1, 1, 0, 0);
  spec(a, n, "branch3x3dbl_2", 64, 96, 3, 3, 1, 1, 1);
  spec(a, n, "branch3x3dbl_3", 96, 96, 3, 3, 1, 1, 1);
  spec(a, n, "branch_pool", ci, pf, 1, 1, 1, 0, 0);
}

static void spec_c(GArray *a, const char *n, gint64 c7) {
  spec(a, n, "branch1x1", 768, 192, 1, 1, 1, 0, 0);
  spec(a, n, "branch7x7_1", 768, c7, 1, 1, 1, 0, 0);
  spec(a, n, "branch7x7_2", c7, c7, 1, 7, 1, 0, 3);
  spec(a, n, "branch7x7_3", c7, 192, 7, 1, 1, 3, 0);
  spec(a, n, "branch7x7dbl_1", 768, c7, 1, 1, 1, 0, 0);
  spec(a, n, "branch7x7dbl_2", c7, c7, 7, 1, 1, 3, 0);
  spec(a, n, "branch7x7dbl_3", c7, c7, 1, 7, 1, 0, 3);
  spec(a, n, "branch7x7dbl_4", c7, c7, 7, 1, 1, 3, 0);
  spec(a, n, "branch7x7dbl_5", c7, 192, 1, 7, 1, 0, 3);
  spec(a, n, "branch_pool", 768, 192, 1, 1, 1, 0, 0);
}

static void spec_e(GArray *a, const char *n, gint64 ci) {
  spec(a, n, "branch1x1", ci, 320, 1, 1, 1, 0, 0);
  spec(a, n, "branch3x3_1", ci, 384, 1, 1, 1, 0, 0);
  spec(a, n, "branch3x3_2a", 384, 384, 1, 3, 1, 0, 1);
  spec(a, n, "branch3x3_2b", 384, 384, 3, 1, 1, 1, 0);
  spec(a, n, "branch3x3dbl_1", ci, 448, 1, 1, 1, 0, 0);
  spec(a, n, "branch3x3dbl_2", 448, 384, 3, 3, 1, 1, 1);
  spec(a, n, "branch3x3dbl_3a", 384, 384, 1, 3, 1, 0, 1);
  spec(a, n, "branch3x3dbl_3b", 384, 384, 3, 1, 1, 1, 0);
  spec(a, n, "branch_pool", ci, 192, 1, 1, 1, 0, 0);
}

static GArray *architecture(void) {
  GArray *a = g_array_new(FALSE, FALSE, sizeof(Spec));
  spec(a, NULL, "Conv2d_1a_3x3", 3, 32, 3, 3, 2, 0, 0);
  spec(a, NULL, "Conv2d_2a_3x3", 32, 32, 3, 3, 1, 0, 0);
  spec(a, NULL, "Conv2d_2b_3x3", 32, 64, 3, 3, 1, 1, 1);
  spec(a, NULL, "Conv2d_3b_1x1", 64, 80, 1, 1, 1, 0, 0);
  spec(a, NULL, "Conv2d_4a_3x3", 80, 192, 3, 3, 1, 0, 0);
  spec_a(a, "Mixed_5b", 192, 32);
  spec_a(a, "Mixed_5c", 256, 64);
  spec_a(a, "Mixed_5d", 288, 64);
  spec(a, "Mixed_6a", "branch3x3", 288, 384, 3, 3, 2, 0, 0);
  spec(a, "Mixed_6a", "branch3x3dbl_1", 288, 64, 1, 1, 1, 0, 0);
  spec(a, "Mixed_6a", "branch3x3dbl_2", 64, 96, 3, 3, 1, 1, 1);
  spec(a, "Mixed_6a", "branch3x3dbl_3", 96, 96, 3, 3, 2, 0, 0);
  spec_c(a, "Mixed_6b", 128);
  spec_c(a, "Mixed_6c", 160);
  spec_c(a, "Mixed_6d", 160);
  spec_c(a, "Mixed_6e", 192);
  spec(a, "Mixed_7a", "branch3x3_1", 768, 192, 1, 1, 1, 0, 0);
  spec(a, "Mixed_7a", "branch3x3_2", 192, 320, 3, 3, 2, 0, 0);
  spec(a, "Mixed_7a", "branch7x7x3_1", 768, 192, 1, 1, 1, 0, 0);
  spec(a, "Mixed_7a", "branch7x7x3_2", 192, 192, 1, 7, 1, 0, 3);
  spec(a, "Mixed_7a", "branch7x7x3_3", 192, 192, 7, 1, 1, 3, 0);
  spec(a, "Mixed_7a", "branch7x7x3_4", 192, 192, 3, 3, 2, 0, 0);
  spec_e(a, "Mixed_7b", 1280);
  spec_e(a, "Mixed_7c", 2048);
  return a;
}

static void architecture_free(GArray *a) {
  for (guint i = 0; i < a->len; i++) g_free(g_array_index(a, Spec, i).name);
  g_array_free(a, TRUE);
}

/* Loads tensor @name of the shape @want (ndim, d) from @st, or FALSE with an error naming the file and tensor. */
static RatTensor *load(RatSafetensors *st, const char *path, const char *name, RatShape want, GError **error) {
  RatShape have;
  const char *dtype;
  if (!rat_safetensors_info(st, name, &have, &dtype)) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_NOT_FOUND, "%s has no tensor '%s': these are not Inception-v3 weights in "
                "torchvision's names (convert the .pth with tools/convert-inception.py; docs/inception.md)", path, name);
    return NULL;
  }
  if (!rat_shape_equal(have, want)) {
    char *a = rat_shape_to_string(have), *b = rat_shape_to_string(want);
    g_set_error(error, RAT_ERROR, RAT_ERROR_SHAPE, "%s: tensor '%s' has shape %s, Inception-v3 needs %s", path, name, a, b);
    g_free(a);
    g_free(b);
    return NULL;
  }
  return rat_safetensors_get(st, name, error);
}

RatInception *rat_inception_load(const char *path, gboolean fid, GError **error) {
  const char *hint = fid ? "convert pytorch-fid's pt_inception-2015-12-05-6726825d.pth with "
                           "`python3 tools/convert-inception.py IN.pth OUT.safetensors` (docs/inception.md)"
                         : "convert torchvision's inception_v3_google-0cc3c7bd.pth with "
                           "`python3 tools/convert-inception.py IN.pth OUT.safetensors` (docs/inception.md)";
  if (!path || !*path) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "extractor %s needs weights (fid.weights, or --weights): %s",
                fid ? "inception_fid" : "inception", hint);
    return NULL;
  }
  if (!g_file_test(path, G_FILE_TEST_IS_REGULAR)) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_NOT_FOUND, "Inception weights %s: no such file; %s", path, hint);
    return NULL;
  }
  RatSafetensors *st = rat_safetensors_open(path, error);
  if (!st) return NULL;
  RatInception *net = g_new0(RatInception, 1);
  net->fid = fid;
  net->convs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, conv_free);
  GArray *arch = architecture();
  gboolean ok = TRUE;
  /* The classifier tells the two weight sets apart: torchvision's has 1000 classes, pytorch-fid's 1008. */
  RatShape fc;
  const char *fdt;
  if (rat_safetensors_info(st, "fc.weight", &fc, &fdt) && fc.ndim == 2 && (fc.d[0] == 1008) != fid) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "%s holds %s Inception weights (fc has %" G_GINT64_FORMAT
                " classes) but the extractor is %s: use extractor %s", path,
                fc.d[0] == 1008 ? "pytorch-fid's FID" : "torchvision's", fc.d[0], fid ? "inception_fid" : "inception",
                fid ? "inception" : "inception_fid");
    ok = FALSE;
  }
  for (guint i = 0; ok && i < arch->len; i++) {
    const Spec *e = &g_array_index(arch, Spec, i);
    RatScope sc = rat_scope_push();
    char *nw = g_strdup_printf("%s.conv.weight", e->name), *ng = g_strdup_printf("%s.bn.weight", e->name),
         *nb = g_strdup_printf("%s.bn.bias", e->name), *nm = g_strdup_printf("%s.bn.running_mean", e->name),
         *nv = g_strdup_printf("%s.bn.running_var", e->name);
    RatTensor *w = load(st, path, nw, RAT_SHAPE(e->co, e->ci, e->kh, e->kw), error), *g = NULL, *b = NULL, *m = NULL,
              *v = NULL;
    ok = w && (g = load(st, path, ng, RAT_SHAPE(e->co), error)) && (b = load(st, path, nb, RAT_SHAPE(e->co), error)) &&
         (m = load(st, path, nm, RAT_SHAPE(e->co), error)) && (v = load(st, path, nv, RAT_SHAPE(e->co), error));
    if (ok) {
      gint64 K = e->ci * e->kh * e->kw;
      float *fw = g_new(float, e->co * K), *fb = g_new(float, e->co);
      const float *W = rat_tensor_data(rat_contiguous(w)), *G = rat_tensor_data(g), *Bt = rat_tensor_data(b),
                  *M = rat_tensor_data(m), *V = rat_tensor_data(v);
      for (gint64 o = 0; o < e->co && ok; o++) {
        if (!(V[o] >= 0) || !isfinite(V[o]) || !isfinite(G[o]) || !isfinite(Bt[o]) || !isfinite(M[o])) {
          g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "%s: %s.bn holds a non-finite value or a negative "
                      "running_var at channel %" G_GINT64_FORMAT, path, e->name, o);
          ok = FALSE;
        }
        double sc_o = (double)G[o] / sqrt((double)V[o] + 1e-3); /* BasicConv2d: BatchNorm2d(eps=0.001) */
        for (gint64 j = 0; j < K; j++) fw[o * K + j] = (float)(W[o * K + j] * sc_o);
        fb[o] = (float)(Bt[o] - M[o] * sc_o);
      }
      if (ok) {
        Conv *c = g_new0(Conv, 1);
        c->w = rat_tensor_ref(rat_from_data(RAT_SHAPE(e->co, e->ci, e->kh, e->kw), fw));
        c->b = rat_tensor_ref(rat_from_data(RAT_SHAPE(e->co), fb));
        c->p = (RatConvParams){.stride = {e->s, e->s}, .padding = {e->ph, e->pw}, .dilation = {1, 1}, .groups = 1};
        g_hash_table_insert(net->convs, g_strdup(e->name), c);
      }
      g_free(fw);
      g_free(fb);
    }
    g_free(nw);
    g_free(ng);
    g_free(nb);
    g_free(nm);
    g_free(nv);
    rat_scope_pop(sc);
  }
  architecture_free(arch);
  rat_safetensors_close(st);
  if (!ok) {
    rat_inception_free(net);
    return NULL;
  }
  return net;
}

/* BasicConv2d: relu(bn(conv(x))) with bn folded. */
static RatTensor *bc(RatInception *net, RatTensor *x, const char *block, const char *name) {
  char key[64];
  g_snprintf(key, sizeof key, "%s%s%s", block ? block : "", block ? "." : "", name);
  Conv *c = g_hash_table_lookup(net->convs, key);
  g_assert(c); /* rat_inception_load checked every name of the architecture */
  return rat_relu(rat_conv2d(x, c->w, c->b, c->p));
}

static RatTensor *cat(RatTensor *const *ts, guint n) { return rat_concat(ts, n, 1); }

static RatEvalPool avg_kind(RatInception *net) {
  return net->fid ? RAT_EVAL_POOL_AVG_EXCLUDE_PAD : RAT_EVAL_POOL_AVG_INCLUDE_PAD;
}

/* InceptionA (FIDInceptionA: count_include_pad=False). */
static RatTensor *block_a(RatInception *net, RatTensor *x, const char *n) {
  RatTensor *b1 = bc(net, x, n, "branch1x1");
  RatTensor *b5 = bc(net, bc(net, x, n, "branch5x5_1"), n, "branch5x5_2");
  RatTensor *b3 = bc(net, bc(net, bc(net, x, n, "branch3x3dbl_1"), n, "branch3x3dbl_2"), n, "branch3x3dbl_3");
  RatTensor *bp = bc(net, rat_eval_pool2d(x, avg_kind(net), 3, 1, 1), n, "branch_pool");
  RatTensor *ts[] = {b1, b5, b3, bp};
  return cat(ts, 4);
}

/* InceptionB (Mixed_6a). */
static RatTensor *block_b(RatInception *net, RatTensor *x, const char *n) {
  RatTensor *b3 = bc(net, x, n, "branch3x3");
  RatTensor *bd = bc(net, bc(net, bc(net, x, n, "branch3x3dbl_1"), n, "branch3x3dbl_2"), n, "branch3x3dbl_3");
  RatTensor *bp = rat_eval_pool2d(x, RAT_EVAL_POOL_MAX, 3, 2, 0);
  RatTensor *ts[] = {b3, bd, bp};
  return cat(ts, 3);
}

/* InceptionC (FIDInceptionC: count_include_pad=False). */
static RatTensor *block_c(RatInception *net, RatTensor *x, const char *n) {
  RatTensor *b1 = bc(net, x, n, "branch1x1");
  RatTensor *b7 = bc(net, bc(net, bc(net, x, n, "branch7x7_1"), n, "branch7x7_2"), n, "branch7x7_3");
  RatTensor *bd = bc(net, x, n, "branch7x7dbl_1");
  bd = bc(net, bc(net, bd, n, "branch7x7dbl_2"), n, "branch7x7dbl_3");
  bd = bc(net, bc(net, bd, n, "branch7x7dbl_4"), n, "branch7x7dbl_5");
  RatTensor *bp = bc(net, rat_eval_pool2d(x, avg_kind(net), 3, 1, 1), n, "branch_pool");
  RatTensor *ts[] = {b1, b7, bd, bp};
  return cat(ts, 4);
}

/* InceptionD (Mixed_7a). */
static RatTensor *block_d(RatInception *net, RatTensor *x, const char *n) {
  RatTensor *b3 = bc(net, bc(net, x, n, "branch3x3_1"), n, "branch3x3_2");
  RatTensor *b7 = bc(net, bc(net, x, n, "branch7x7x3_1"), n, "branch7x7x3_2");
  b7 = bc(net, bc(net, b7, n, "branch7x7x3_3"), n, "branch7x7x3_4");
  RatTensor *bp = rat_eval_pool2d(x, RAT_EVAL_POOL_MAX, 3, 2, 0);
  RatTensor *ts[] = {b3, b7, bp};
  return cat(ts, 3);
}

/* InceptionE; FIDInceptionE_1 (Mixed_7b) averages with count_include_pad=False, FIDInceptionE_2 (Mixed_7c) takes
 * the max (pytorch-fid: "the FID Inception model uses max pooling instead of average pooling", a bug of the TF
 * graph it reproduces). */
static RatTensor *block_e(RatInception *net, RatTensor *x, const char *n, gboolean last) {
  RatTensor *b1 = bc(net, x, n, "branch1x1");
  RatTensor *t = bc(net, x, n, "branch3x3_1");
  RatTensor *p3[] = {bc(net, t, n, "branch3x3_2a"), bc(net, t, n, "branch3x3_2b")};
  RatTensor *b3 = cat(p3, 2);
  t = bc(net, bc(net, x, n, "branch3x3dbl_1"), n, "branch3x3dbl_2");
  RatTensor *pd[] = {bc(net, t, n, "branch3x3dbl_3a"), bc(net, t, n, "branch3x3dbl_3b")};
  RatTensor *bd = cat(pd, 2);
  RatEvalPool k = net->fid && last ? RAT_EVAL_POOL_MAX : avg_kind(net);
  RatTensor *bp = bc(net, rat_eval_pool2d(x, k, 3, 1, 1), n, "branch_pool");
  RatTensor *ts[] = {b1, b3, bd, bp};
  return cat(ts, 4);
}

RatTensor *rat_inception_forward(RatInception *net, RatTensor *x) {
  rat_check(x->ndim == 4 && x->shape[1] == 3 && x->shape[2] >= 75 && x->shape[3] >= 75,
            "rat_inception_forward: needs [B, 3, H, W] with H, W >= 75");
  RatTensor *y;
  RAT_NO_GRAD_BEGIN
  RatScope outer = rat_scope_push();
  RatScope s = rat_scope_push();
  x = bc(net, x, NULL, "Conv2d_1a_3x3");  /* [B, 32, 149, 149] at 299 px */
  x = bc(net, x, NULL, "Conv2d_2a_3x3");  /* [B, 32, 147, 147] */
  x = bc(net, x, NULL, "Conv2d_2b_3x3");  /* [B, 64, 147, 147] */
  x = rat_eval_pool2d(x, RAT_EVAL_POOL_MAX, 3, 2, 0); /* [B, 64, 73, 73] */
  x = bc(net, x, NULL, "Conv2d_3b_1x1");  /* [B, 80, 73, 73] */
  x = bc(net, x, NULL, "Conv2d_4a_3x3");  /* [B, 192, 71, 71] */
  x = rat_scope_pop_keep(s, rat_eval_pool2d(x, RAT_EVAL_POOL_MAX, 3, 2, 0)); /* [B, 192, 35, 35] */
  /* One scope per block, so that a block's branches die with it. */
#define BLOCK(expr)          \
  do {                       \
    s = rat_scope_push();    \
    x = (expr);              \
    rat_scope_pop_keep(s, x); \
  } while (0)
  BLOCK(block_a(net, x, "Mixed_5b")); /* [B, 256, 35, 35] */
  BLOCK(block_a(net, x, "Mixed_5c")); /* [B, 288, 35, 35] */
  BLOCK(block_a(net, x, "Mixed_5d")); /* [B, 288, 35, 35] */
  BLOCK(block_b(net, x, "Mixed_6a")); /* [B, 768, 17, 17] */
  BLOCK(block_c(net, x, "Mixed_6b"));
  BLOCK(block_c(net, x, "Mixed_6c"));
  BLOCK(block_c(net, x, "Mixed_6d"));
  BLOCK(block_c(net, x, "Mixed_6e")); /* [B, 768, 17, 17] */
  BLOCK(block_d(net, x, "Mixed_7a")); /* [B, 1280, 8, 8] */
  BLOCK(block_e(net, x, "Mixed_7b", FALSE)); /* [B, 2048, 8, 8] */
  BLOCK(block_e(net, x, "Mixed_7c", TRUE));  /* [B, 2048, 8, 8] */
#undef BLOCK
  x = rat_adaptive_avg_pool2d_1(x); /* [B, 2048, 1, 1] */
  y = rat_scope_pop_keep(outer, rat_contiguous(rat_reshape(x, RAT_SHAPE(x->shape[0], 2048))));
  RAT_NO_GRAD_END
  return y;
}

/* ImageNet mean and std (torchvision's transform_input). */
static const float imagenet_mean[3] = {0.485f, 0.456f, 0.406f}, imagenet_std[3] = {0.229f, 0.224f, 0.225f};

RatTensor *rat_inception_preprocess(RatTensor *images, RatInceptionTransform t) {
  rat_check(images->ndim == 4 && images->shape[1] == 3, "rat_inception_preprocess: needs [B, 3, H, W]");
  RatTensor *y;
  RAT_NO_GRAD_BEGIN
  RatTensor *x = images;
  if (x->shape[2] != 299 || x->shape[3] != 299)
    x = rat_resize_bilinear(x, 299, 299, FALSE); /* linear: resizing x or u = (x + 1)/2 is the same */
  if (t == RAT_INCEPTION_GALIP) {
    /* v_c = u std_c / 0.5 + (mean_c - 0.5) / 0.5 with u = (x + 1)/2: a_c x + b_c */
    float a[3], b[3];
    for (int c = 0; c < 3; c++) {
      a[c] = imagenet_std[c];
      b[c] = imagenet_std[c] + (imagenet_mean[c] - 0.5f) / 0.5f;
    }
    x = rat_add(rat_mul(x, rat_from_data(RAT_SHAPE(1, 3, 1, 1), a)), rat_from_data(RAT_SHAPE(1, 3, 1, 1), b));
  }
  y = x;
  RAT_NO_GRAD_END
  return y;
}
