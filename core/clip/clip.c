/* CLIP towers, weight loading (OpenAI and Hugging Face names), input transforms and the contrastive loss.
 * Follows reference §10: x = x + out_proj(MHA(LN1(x))); x = x + c_proj(QuickGELU(c_fc(LN2(x)))) with the packed
 * in_proj rows [Q; K; V]; vision: conv1 patchify (no bias) -> [cls; patches] + positions -> ln_pre -> blocks ->
 * ln_post(cls) @ proj; text: token + position embeddings -> causal blocks -> ln_final -> row argmax(ids) @
 * text_projection. Weight names and transforms of §10.8 (convert_clip_original_pytorch_to_hf.py). */
#include "config.h"

#include "ratfw-private.h"
#include <ratfw/clip.h>
#include <ratfw/error.h>
#include <ratfw/io.h>

#include <json-glib/json-glib.h>
#include <math.h>

typedef struct {
  RatTensor *in_w, *in_b, *out_w, *out_b, *ln1_w, *ln1_b, *ln2_w, *ln2_b, *fc_w, *fc_b, *pj_w, *pj_b;
} Block;

struct _RatClip {
  RatClipConfig cfg;
  RatParams *params;
  char *prefix;
  GPtrArray *names; /* OpenAI names (without prefix) of every parameter, in creation order */
  RatTensor *conv1, *cls, *vpos, *ln_pre_w, *ln_pre_b, *ln_post_w, *ln_post_b, *vproj;
  RatTensor *tok, *tpos, *ln_final_w, *ln_final_b, *tproj, *logit_scale;
  Block *vblocks, *tblocks;
};

RatClipConfig rat_clip_config_vit_b32(void) {
  return (RatClipConfig){.vision_width = 768, .vision_layers = 12, .vision_heads = 12, .vision_patch = 32,
                         .image_size = 224, .text_width = 512, .text_layers = 12, .text_heads = 8,
                         .context_length = 77, .vocab_size = 49408, .embed_dim = 512};
}

static RatTensor *add(RatClip *c, const char *name, RatShape s, RatParamKind kind) {
  char *full = g_strdup_printf("%s%s", c->prefix, name);
  RatTensor *t = rat_params_add(c->params, full, s, kind);
  g_free(full);
  g_ptr_array_add(c->names, g_strdup(name));
  return t;
}

static void block_new(RatClip *c, Block *b, const char *tower, int i, gint64 d, RatParamKind k) {
  char *p = g_strdup_printf("%s.resblocks.%d.", tower, i);
#define P(field, suffix, shape)                                                                               \
  do {                                                                                                        \
    char *n_ = g_strdup_printf("%s%s", p, suffix);                                                            \
    b->field = add(c, n_, shape, k);                                                                          \
    g_free(n_);                                                                                               \
  } while (0)
  P(in_w, "attn.in_proj_weight", RAT_SHAPE(3 * d, d));
  P(in_b, "attn.in_proj_bias", RAT_SHAPE(3 * d));
  P(out_w, "attn.out_proj.weight", RAT_SHAPE(d, d));
  P(out_b, "attn.out_proj.bias", RAT_SHAPE(d));
  P(ln1_w, "ln_1.weight", RAT_SHAPE(d));
  P(ln1_b, "ln_1.bias", RAT_SHAPE(d));
  P(fc_w, "mlp.c_fc.weight", RAT_SHAPE(4 * d, d));
  P(fc_b, "mlp.c_fc.bias", RAT_SHAPE(4 * d));
  P(pj_w, "mlp.c_proj.weight", RAT_SHAPE(d, 4 * d));
  P(pj_b, "mlp.c_proj.bias", RAT_SHAPE(d));
  P(ln2_w, "ln_2.weight", RAT_SHAPE(d));
  P(ln2_b, "ln_2.bias", RAT_SHAPE(d));
#undef P
  rat_init_constant_(b->ln1_w, 1.0f);
  rat_init_constant_(b->ln2_w, 1.0f);
  g_free(p);
}

RatClip *rat_clip_new(const RatClipConfig *cfg, RatParams *params, const char *prefix, RatParamKind kind) {
  rat_check(cfg->vision_width % cfg->vision_heads == 0 && cfg->text_width % cfg->text_heads == 0,
            "ratfw: CLIP widths must be divisible by the head counts");
  RatClip *c = g_new0(RatClip, 1);
  c->cfg = *cfg;
  c->params = params;
  c->prefix = g_strdup(prefix ? prefix : "");
  c->names = g_ptr_array_new_with_free_func(g_free);
  gint64 vw = cfg->vision_width, tw = cfg->text_width, E = cfg->embed_dim, g = cfg->image_size / cfg->vision_patch;
  c->conv1 = add(c, "visual.conv1.weight", RAT_SHAPE(vw, 3, cfg->vision_patch, cfg->vision_patch), kind);
  c->cls = add(c, "visual.class_embedding", RAT_SHAPE(vw), kind);
  c->vpos = add(c, "visual.positional_embedding", RAT_SHAPE(g * g + 1, vw), kind);
  c->ln_pre_w = add(c, "visual.ln_pre.weight", RAT_SHAPE(vw), kind);
  c->ln_pre_b = add(c, "visual.ln_pre.bias", RAT_SHAPE(vw), kind);
  c->vblocks = g_new0(Block, cfg->vision_layers);
  for (int i = 0; i < cfg->vision_layers; i++) block_new(c, &c->vblocks[i], "visual.transformer", i, vw, kind);
  c->ln_post_w = add(c, "visual.ln_post.weight", RAT_SHAPE(vw), kind);
  c->ln_post_b = add(c, "visual.ln_post.bias", RAT_SHAPE(vw), kind);
  c->vproj = add(c, "visual.proj", RAT_SHAPE(vw, E), kind);
  c->tok = add(c, "token_embedding.weight", RAT_SHAPE(cfg->vocab_size, tw), kind);
  c->tpos = add(c, "positional_embedding", RAT_SHAPE(cfg->context_length, tw), kind);
  c->tblocks = g_new0(Block, cfg->text_layers);
  for (int i = 0; i < cfg->text_layers; i++) block_new(c, &c->tblocks[i], "transformer", i, tw, kind);
  c->ln_final_w = add(c, "ln_final.weight", RAT_SHAPE(tw), kind);
  c->ln_final_b = add(c, "ln_final.bias", RAT_SHAPE(tw), kind);
  c->tproj = add(c, "text_projection", RAT_SHAPE(tw, E), kind);
  c->logit_scale = add(c, "logit_scale", RAT_SHAPE0, kind);
  rat_init_constant_(c->ln_pre_w, 1.0f);
  rat_init_constant_(c->ln_post_w, 1.0f);
  rat_init_constant_(c->ln_final_w, 1.0f);
  rat_init_constant_(c->logit_scale, logf(1.0f / 0.07f));
  return c;
}

void rat_clip_free(RatClip *c) {
  if (!c) return;
  g_free(c->vblocks);
  g_free(c->tblocks);
  g_ptr_array_unref(c->names);
  g_free(c->prefix);
  g_free(c);
}

const RatClipConfig *rat_clip_config(const RatClip *c) { return &c->cfg; }
RatTensor *rat_clip_logit_scale(RatClip *c) { return c->logit_scale; }

void rat_clip_init_random(RatClip *c, RatRng *rng) {
  /* model.py initialize_parameters: token 0.02, positions 0.01; blocks: attn std width^-0.5, proj std
   * width^-0.5 * (2 layers)^-0.5, fc std (2 width)^-0.5; projections width^-0.5; vision embeddings scale
   * width^-0.5 (VisionTransformer __init__). */
  const RatClipConfig *f = &c->cfg;
  double vs = 1.0 / sqrt(f->vision_width), ts = 1.0 / sqrt(f->text_width);
  rat_init_normal_(rng, c->conv1, 0.0f, (float)(1.0 / sqrt(3.0 * f->vision_patch * f->vision_patch)));
  rat_init_normal_(rng, c->cls, 0.0f, (float)vs);
  rat_init_normal_(rng, c->vpos, 0.0f, (float)vs);
  rat_init_normal_(rng, c->tok, 0.0f, 0.02f);
  rat_init_normal_(rng, c->tpos, 0.0f, 0.01f);
  rat_init_normal_(rng, c->vproj, 0.0f, (float)vs);
  rat_init_normal_(rng, c->tproj, 0.0f, (float)ts);
  for (int t = 0; t < 2; t++) {
    int layers = t ? f->text_layers : f->vision_layers;
    double w = t ? f->text_width : f->vision_width;
    Block *bs = t ? c->tblocks : c->vblocks;
    for (int i = 0; i < layers; i++) {
      rat_init_normal_(rng, bs[i].in_w, 0.0f, (float)(1.0 / sqrt(w)));
      rat_init_normal_(rng, bs[i].out_w, 0.0f, (float)(1.0 / sqrt(w) / sqrt(2.0 * layers)));
      rat_init_normal_(rng, bs[i].fc_w, 0.0f, (float)(1.0 / sqrt(2.0 * w)));
      rat_init_normal_(rng, bs[i].pj_w, 0.0f, (float)(1.0 / sqrt(w) / sqrt(2.0 * layers)));
    }
  }
}

/* ---- forward ------------------------------------------------------------------------------------------------ */

static RatTensor *block_forward(const Block *b, RatTensor *x, int heads, gboolean causal) {
  gint64 B = x->shape[0], T = x->shape[1], D = x->shape[2], Dh = D / heads;
  RatTensor *h = rat_layer_norm(x, b->ln1_w, b->ln1_b, 1e-5f);
  RatTensor *qkv = rat_linear(h, b->in_w, b->in_b); /* [B,T,3D] */
  RatTensor *parts[3];
  gint64 sizes[3] = {D, D, D};
  rat_split(qkv, 2, sizes, 3, parts);
  const int perm[4] = {0, 2, 1, 3};
  for (int k = 0; k < 3; k++) parts[k] = rat_permute(rat_reshape(parts[k], RAT_SHAPE(B, T, heads, Dh)), perm);
  float scale = (float)(1.0 / sqrt((double)Dh));
  RatTensor *o = rat_scaled_dot_product_attention(parts[0], parts[1], parts[2], causal, scale);
  o = rat_reshape(rat_permute(o, perm), RAT_SHAPE(B, T, D));
  x = rat_add(x, rat_linear(o, b->out_w, b->out_b));
  h = rat_layer_norm(x, b->ln2_w, b->ln2_b, 1e-5f);
  h = rat_linear(rat_quick_gelu(rat_linear(h, b->fc_w, b->fc_b)), b->pj_w, b->pj_b);
  return rat_add(x, h);
}

RatTensor *rat_clip_vision_embed(RatClip *c, RatTensor *pixels) {
  const RatClipConfig *f = &c->cfg;
  rat_check(pixels->ndim == 4 && pixels->shape[1] == 3 && pixels->shape[2] == f->image_size &&
                pixels->shape[3] == f->image_size,
            "ratfw: CLIP vision expects [B,3,%d,%d] pixels", f->image_size, f->image_size);
  gint64 B = pixels->shape[0], D = f->vision_width, g = f->image_size / f->vision_patch;
  RatTensor *x = rat_conv2d(pixels, c->conv1, NULL, RAT_CONV_PARAMS(f->vision_patch, 0)); /* [B,D,g,g] */
  x = rat_transpose(rat_reshape(x, RAT_SHAPE(B, D, g * g)), 1, 2);                        /* [B,g*g,D] */
  return rat_clip_vision_tokens(c, x);
}

RatTensor *rat_clip_vision_tokens(RatClip *c, RatTensor *x) {
  const RatClipConfig *f = &c->cfg;
  gint64 D = f->vision_width, g = f->image_size / f->vision_patch;
  rat_check(x->ndim == 3 && x->shape[1] == g * g && x->shape[2] == D,
            "ratfw: CLIP vision tokens must be [B,%" G_GINT64_FORMAT ",%" G_GINT64_FORMAT "]", g * g, D);
  gint64 B = x->shape[0];
  RatTensor *cls = rat_expand(rat_reshape(c->cls, RAT_SHAPE(1, 1, D)), RAT_SHAPE(B, 1, D));
  RatTensor *parts[2] = {cls, x};
  x = rat_add(rat_concat(parts, 2, 1), c->vpos);
  return rat_layer_norm(x, c->ln_pre_w, c->ln_pre_b, 1e-5f);
}

RatTensor *rat_clip_vision_block(RatClip *c, int i, RatTensor *x) {
  rat_check(i >= 0 && i < c->cfg.vision_layers, "ratfw: CLIP vision block %d of %d", i, c->cfg.vision_layers);
  return block_forward(&c->vblocks[i], x, c->cfg.vision_heads, FALSE);
}

RatTensor *rat_clip_vision_head(RatClip *c, RatTensor *x) {
  RatTensor *cls = rat_select(x, 1, 0); /* [B,D] */
  return rat_matmul(rat_layer_norm(cls, c->ln_post_w, c->ln_post_b, 1e-5f), c->vproj);
}

RatTensor *rat_clip_vision_taps(RatClip *c, RatTensor *pixels, const int *blocks, guint n, RatTensor **taps) {
  RatTensor *x = rat_clip_vision_embed(c, pixels);
  guint k = 0;
  for (int i = 0; i < c->cfg.vision_layers; i++) {
    x = rat_clip_vision_block(c, i, x);
    if (k < n && blocks[k] == i) taps[k++] = x;
  }
  rat_check(k == n, "ratfw: CLIP tap blocks must be increasing and below %d", c->cfg.vision_layers);
  return rat_clip_vision_head(c, x);
}

RatTensor *rat_clip_encode_image(RatClip *c, RatTensor *pixels) {
  return rat_clip_vision_taps(c, pixels, NULL, 0, NULL);
}

RatTensor *rat_clip_encode_text(RatClip *c, RatTensor *ids) { return rat_clip_encode_text_eot(c, ids, -1); }

RatTensor *rat_clip_encode_text_at(RatClip *c, RatTensor *ids, const gint64 *positions) {
  const RatClipConfig *f = &c->cfg;
  rat_check(ids->dtype == RAT_DTYPE_I32 && ids->ndim == 2 && ids->shape[1] <= f->context_length,
            "ratfw: CLIP text expects i32 ids [B,L] with L <= %d", f->context_length);
  gint64 B = ids->shape[0], L = ids->shape[1];
  RatTensor *x = rat_add(rat_embedding(c->tok, ids), rat_slice(c->tpos, 0, 0, L));
  for (int i = 0; i < f->text_layers; i++) x = block_forward(&c->tblocks[i], x, f->text_heads, TRUE);
  x = rat_layer_norm(x, c->ln_final_w, c->ln_final_b, 1e-5f);
  RatTensor **rows = g_newa(RatTensor *, B);
  for (gint64 b = 0; b < B; b++) {
    rat_check(positions[b] >= 0 && positions[b] < L, "ratfw: CLIP pooling position %" G_GINT64_FORMAT " of row %"
              G_GINT64_FORMAT " is outside [0, %" G_GINT64_FORMAT ")", positions[b], b, L);
    rows[b] = rat_slice(rat_select(x, 0, b), 0, positions[b], positions[b] + 1); /* [1,D] */
  }
  return rat_matmul(rat_concat(rows, (guint)B, 0), c->tproj);
}

RatTensor *rat_clip_encode_text_eot(RatClip *c, RatTensor *ids, gint32 eot_id) {
  rat_check(ids->dtype == RAT_DTYPE_I32 && ids->ndim == 2, "ratfw: CLIP text expects i32 ids [B,L]");
  gint64 B = ids->shape[0], L = ids->shape[1];
  RatTensor *ic = rat_contiguous(ids);
  const gint32 *p = rat_tensor_data_i32(ic);
  gint64 *pos = g_new(gint64, B);
  for (gint64 b = 0; b < B; b++) {
    gint64 best = 0;
    if (eot_id >= 0) {
      best = L - 1;
      for (gint64 l = 0; l < L; l++)
        if (p[b * L + l] == eot_id) {
          best = l;
          break;
        }
    } else {
      for (gint64 l = 1; l < L; l++)
        if (p[b * L + l] > p[b * L + best]) best = l;
    }
    pos[b] = best;
  }
  RatTensor *y = rat_clip_encode_text_at(c, ids, pos);
  g_free(pos);
  return y;
}

/* ---- transforms and loss ---------------------------------------------------------------------------------- */

static RatTensor *normalise(RatTensor *v) {
  static const float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f}, std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
  RatTensor *m = rat_from_data(RAT_SHAPE(1, 3, 1, 1), mean), *s = rat_from_data(RAT_SHAPE(1, 3, 1, 1), std);
  return rat_div(rat_sub(v, m), s);
}

RatTensor *rat_clip_transform_galip(RatTensor *x, int size) {
  RatTensor *u = rat_add_scalar(rat_mul_scalar(x, 0.5f), 0.5f);
  if (u->shape[2] != size || u->shape[3] != size) u = rat_upsample_nearest(u, size, size);
  RatTensor *v = rat_mul_scalar(rat_add_scalar(u, 1.0f), 0.5f); /* the released double mapping */
  return normalise(v);
}

/* The [out, in] weights of an antialiased bicubic resize along one axis (PIL's ImagingResample and
 * torch.nn.functional.interpolate(mode="bicubic", antialias=True, align_corners=False); Keys' cubic with a = -0.5,
 * support widened by the scale when downsampling, weights normalised per output sample). */
static RatTensor *bicubic_weights(gint64 in, gint64 out) {
  double scale = (double)in / (double)out, fs = MAX(scale, 1.0), support = 2.0 * fs;
  RatTensor *m = rat_zeros(RAT_SHAPE(out, in));
  float *w = rat_tensor_data(m);
  for (gint64 i = 0; i < out; i++) {
    double center = scale * ((double)i + 0.5), sum = 0.0, ws[4096];
    gint64 lo = MAX((gint64)(center - support + 0.5), 0), hi = MIN((gint64)(center + support + 0.5), in);
    rat_check(hi - lo <= 4096, "ratfw: bicubic resize from %" G_GINT64_FORMAT " to %" G_GINT64_FORMAT " is too steep",
              in, out);
    for (gint64 j = lo; j < hi; j++) {
      double t = fabs(((double)j - center + 0.5) / fs), a = -0.5;
      ws[j - lo] = t < 1.0   ? ((a + 2.0) * t - (a + 3.0)) * t * t + 1.0
                   : t < 2.0 ? (((t - 5.0) * t + 8.0) * t - 4.0) * a
                             : 0.0;
      sum += ws[j - lo];
    }
    for (gint64 j = lo; j < hi; j++) w[i * in + j] = (float)(sum != 0.0 ? ws[j - lo] / sum : 0.0);
  }
  return m;
}

/* x [B,C,H,W] -> [B,C,oh,ow] as two matmuls with the separable weights (so every derivative order comes free). */
static RatTensor *resize_bicubic_aa(RatTensor *x, gint64 oh, gint64 ow) {
  RatTensor *y = rat_contiguous(x);
  if (x->shape[3] != ow) y = rat_matmul(y, rat_transpose(bicubic_weights(x->shape[3], ow), 0, 1));
  if (x->shape[2] != oh) y = rat_matmul(bicubic_weights(x->shape[2], oh), y);
  return y;
}

RatTensor *rat_clip_transform_standard(RatTensor *x, int size) {
  rat_check(x->ndim == 4 && x->shape[1] == 3, "ratfw: CLIP transform expects [B,3,H,W] images");
  RatTensor *u = rat_add_scalar(rat_mul_scalar(x, 0.5f), 0.5f);
  gint64 H = x->shape[2], W = x->shape[3], oh, ow;
  if (H <= W) { /* torchvision Resize(int): the shorter side to @size, the longer truncated */
    oh = size;
    ow = (gint64)((double)size * (double)W / (double)H);
  } else {
    ow = size;
    oh = (gint64)((double)size * (double)H / (double)W);
  }
  if (oh != H || ow != W) u = resize_bicubic_aa(u, oh, ow);
  /* CenterCrop: offsets round((o - size) / 2) with Python's round half to even (rint in the default mode) */
  gint64 top = (gint64)rint((double)(oh - size) / 2.0), left = (gint64)rint((double)(ow - size) / 2.0);
  if (oh != size) u = rat_slice(u, 2, top, top + size);
  if (ow != size) u = rat_slice(u, 3, left, left + size);
  return normalise(u);
}

static RatTensor *l2_normalise(RatTensor *a) {
  return rat_div(a, rat_sqrt(rat_sum(rat_square(a), RAT_AXIS(1), TRUE)));
}

RatTensor *rat_clip_contrastive_loss(RatTensor *img, RatTensor *txt, RatTensor *logit_scale) {
  gint64 B = img->shape[0];
  RatTensor *scale = rat_exp(rat_clamp(logit_scale, -1e30f, logf(100.0f)));
  RatTensor *logits = rat_mul(rat_matmul(l2_normalise(img), rat_transpose(l2_normalise(txt), 0, 1)), scale);
  RatTensor *labels = rat_empty_dtype(RAT_DTYPE_I32, RAT_SHAPE(B));
  for (gint64 i = 0; i < B; i++) rat_tensor_data_i32(labels)[i] = (gint32)i;
  RatTensor *a = rat_cross_entropy(logits, labels), *b = rat_cross_entropy(rat_transpose(logits, 0, 1), labels);
  return rat_mul_scalar(rat_add(a, b), 0.5f);
}

/* ---- loading ------------------------------------------------------------------------------------------------ */

static char *weights_file(const char *path) {
  if (g_file_test(path, G_FILE_TEST_IS_DIR)) return g_build_filename(path, "model.safetensors", NULL);
  return g_strdup(path);
}

/* The Hugging Face name(s) of an OpenAI-named parameter. @parts gets 1 name, or 3 (q, k, v) to concatenate along
 * rows; *transpose for the projections. Returns FALSE for names that have no HF counterpart. */
static guint hf_names(const char *name, char **parts, gboolean *transpose) {
  *transpose = FALSE;
  static const char *const simple[][2] = {
      {"visual.conv1.weight", "vision_model.embeddings.patch_embedding.weight"},
      {"visual.class_embedding", "vision_model.embeddings.class_embedding"},
      {"visual.positional_embedding", "vision_model.embeddings.position_embedding.weight"},
      {"visual.ln_pre.weight", "vision_model.pre_layrnorm.weight"},
      {"visual.ln_pre.bias", "vision_model.pre_layrnorm.bias"},
      {"visual.ln_post.weight", "vision_model.post_layernorm.weight"},
      {"visual.ln_post.bias", "vision_model.post_layernorm.bias"},
      {"token_embedding.weight", "text_model.embeddings.token_embedding.weight"},
      {"positional_embedding", "text_model.embeddings.position_embedding.weight"},
      {"ln_final.weight", "text_model.final_layer_norm.weight"},
      {"ln_final.bias", "text_model.final_layer_norm.bias"},
      {"logit_scale", "logit_scale"},
  };
  for (guint i = 0; i < G_N_ELEMENTS(simple); i++)
    if (!strcmp(name, simple[i][0])) {
      parts[0] = g_strdup(simple[i][1]);
      return 1;
    }
  if (!strcmp(name, "visual.proj")) {
    parts[0] = g_strdup("visual_projection.weight");
    *transpose = TRUE;
    return 1;
  }
  if (!strcmp(name, "text_projection")) {
    parts[0] = g_strdup("text_projection.weight");
    *transpose = TRUE;
    return 1;
  }
  gboolean vis = g_str_has_prefix(name, "visual.transformer.resblocks.");
  const char *rest = strstr(name, "resblocks.");
  if (!rest) return 0;
  rest += strlen("resblocks.");
  int i = atoi(rest);
  const char *sub = strchr(rest, '.') + 1;
  char *pre = g_strdup_printf("%s.encoder.layers.%d.", vis ? "vision_model" : "text_model", i);
  guint n = 1;
  if (!strcmp(sub, "attn.in_proj_weight") || !strcmp(sub, "attn.in_proj_bias")) {
    const char *kind = g_str_has_suffix(sub, "weight") ? "weight" : "bias";
    parts[0] = g_strdup_printf("%sself_attn.q_proj.%s", pre, kind);
    parts[1] = g_strdup_printf("%sself_attn.k_proj.%s", pre, kind);
    parts[2] = g_strdup_printf("%sself_attn.v_proj.%s", pre, kind);
    n = 3;
  } else {
    static const char *const map[][2] = {{"attn.out_proj.", "self_attn.out_proj."}, {"ln_1.", "layer_norm1."},
                                         {"ln_2.", "layer_norm2."},             {"mlp.c_fc.", "mlp.fc1."},
                                         {"mlp.c_proj.", "mlp.fc2."}};
    for (guint k = 0; k < G_N_ELEMENTS(map); k++)
      if (g_str_has_prefix(sub, map[k][0]))
        parts[0] = g_strdup_printf("%s%s%s", pre, map[k][1], sub + strlen(map[k][0]));
    if (!parts[0]) n = 0;
  }
  g_free(pre);
  return n;
}

static RatTensor *read_param(const RatSafetensors *st, const char *file, gboolean hf, const char *name, RatShape want,
                             GError **error) {
  char *parts[3] = {NULL, NULL, NULL};
  gboolean transpose = FALSE;
  guint n = 1;
  if (hf)
    n = hf_names(name, parts, &transpose);
  else
    parts[0] = g_strdup(name);
  RatTensor *out = NULL;
  if (n == 0) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_NOT_FOUND, "%s: no Hugging Face name for CLIP parameter %s", file, name);
    return NULL;
  }
  /* the shape each stored tensor must have: a third of the rows for q/k/v, transposed for the HF projections */
  RatShape fw = want;
  if (n == 3) fw.d[0] /= 3;
  if (transpose && fw.ndim == 2) {
    fw.d[0] = want.d[1];
    fw.d[1] = want.d[0];
  }
  char *ws = rat_shape_to_string(fw);
  RatTensor *got[3] = {NULL};
  for (guint k = 0; k < n; k++) {
    if (!rat_safetensors_has(st, parts[k])) {
      g_set_error(error, RAT_ERROR, RAT_ERROR_NOT_FOUND, "%s: missing tensor %s (CLIP %s, expected shape %s)", file,
                  parts[k], name, ws);
      goto done;
    }
    got[k] = rat_safetensors_get(st, parts[k], error);
    if (!got[k]) goto done;
    if (got[k]->dtype != RAT_DTYPE_F32) {
      const char *dt = "?";
      rat_safetensors_info(st, parts[k], NULL, &dt);
      g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "%s: tensor %s is %s, CLIP %s needs floating point (F32, F16, "
                  "BF16 or F64)", file, parts[k], dt, name);
      goto done;
    }
    if (!rat_shape_equal(rat_tensor_shape(got[k]), fw)) {
      char *b = rat_shape_to_string(rat_tensor_shape(got[k]));
      g_set_error(error, RAT_ERROR, RAT_ERROR_SHAPE, "%s: tensor %s has shape %s, expected %s for CLIP %s (a different "
                  "CLIP configuration?)", file, parts[k], b, ws, name);
      g_free(b);
      goto done;
    }
  }
  out = n == 3 ? rat_concat(got, 3, 0) : got[0];
  if (transpose && out->ndim == 2) out = rat_contiguous(rat_transpose(out, 0, 1));
done:
  g_free(ws);
  for (guint k = 0; k < 3; k++) g_free(parts[k]);
  return out;
}

gboolean rat_clip_load(RatClip *c, const char *path, GError **error) {
  char *file = weights_file(path);
  RatSafetensors *st = rat_safetensors_open(file, error);
  gboolean ok = FALSE;
  if (!st) goto out;
  gboolean hf = rat_safetensors_has(st, "vision_model.embeddings.patch_embedding.weight") ||
                rat_safetensors_has(st, "text_model.embeddings.token_embedding.weight");
  RatScope s = rat_scope_push();
  GPtrArray *vals = g_ptr_array_new();
  ok = TRUE;
  RAT_NO_GRAD_BEGIN
  for (guint i = 0; i < c->names->len && ok; i++) {
    char *full = g_strdup_printf("%s%s", c->prefix, (char *)c->names->pdata[i]);
    RatTensor *p = rat_params_lookup(c->params, full);
    g_free(full);
    RatTensor *v = read_param(st, file, hf, c->names->pdata[i], rat_tensor_shape(p), error);
    if (!v) ok = FALSE;
    g_ptr_array_add(vals, v);
  }
  if (ok) /* everything checked: now copy */
    for (guint i = 0; i < c->names->len; i++) {
      char *full = g_strdup_printf("%s%s", c->prefix, (char *)c->names->pdata[i]);
      rat_tensor_copy_(rat_params_lookup(c->params, full), vals->pdata[i]);
      g_free(full);
    }
  RAT_NO_GRAD_END
  g_ptr_array_free(vals, TRUE);
  rat_scope_pop(s);
  rat_safetensors_close(st);
out:
  g_free(file);
  return ok;
}

static int count_layers(const RatSafetensors *st, const char *fmt) {
  int n = 0;
  for (;; n++) {
    char *name = g_strdup_printf(fmt, n);
    gboolean has = rat_safetensors_has(st, name);
    g_free(name);
    if (!has) return n;
  }
}

static int json_heads(const char *dir, const char *section, int fallback) {
  char *cfgp = g_build_filename(dir, "config.json", NULL);
  int heads = fallback;
  JsonParser *p = json_parser_new();
  if (g_file_test(cfgp, G_FILE_TEST_EXISTS) && json_parser_load_from_file(p, cfgp, NULL)) {
    JsonNode *root = json_parser_get_root(p);
    if (JSON_NODE_HOLDS_OBJECT(root)) {
      JsonObject *o = json_node_get_object(root);
      if (json_object_has_member(o, section)) {
        JsonObject *s = json_object_get_object_member(o, section);
        if (s && json_object_has_member(s, "num_attention_heads"))
          heads = (int)json_object_get_int_member(s, "num_attention_heads");
      }
    }
  }
  g_object_unref(p);
  g_free(cfgp);
  return heads;
}

gboolean rat_clip_config_from_file(const char *path, RatClipConfig *cfg, GError **error) {
  char *file = weights_file(path);
  RatSafetensors *st = rat_safetensors_open(file, error);
  if (!st) {
    g_free(file);
    return FALSE;
  }
  gboolean hf = rat_safetensors_has(st, "vision_model.embeddings.patch_embedding.weight");
  const char *conv = hf ? "vision_model.embeddings.patch_embedding.weight" : "visual.conv1.weight";
  const char *vpos = hf ? "vision_model.embeddings.position_embedding.weight" : "visual.positional_embedding";
  const char *tok = hf ? "text_model.embeddings.token_embedding.weight" : "token_embedding.weight";
  const char *tpos = hf ? "text_model.embeddings.position_embedding.weight" : "positional_embedding";
  const char *tproj = hf ? "text_projection.weight" : "text_projection";
  RatShape sc, sv, st_, sp, sj;
  gboolean ok = rat_safetensors_info(st, conv, &sc, NULL) && rat_safetensors_info(st, vpos, &sv, NULL) &&
                rat_safetensors_info(st, tok, &st_, NULL) && rat_safetensors_info(st, tpos, &sp, NULL) &&
                rat_safetensors_info(st, tproj, &sj, NULL);
  if (!ok) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "%s: not a CLIP checkpoint (no %s / %s / %s)", file, conv, tok,
                tproj);
  } else {
    cfg->vision_width = (int)sc.d[0];
    cfg->vision_patch = (int)sc.d[2];
    int grid = (int)lround(sqrt((double)(sv.d[0] - 1)));
    cfg->image_size = grid * cfg->vision_patch;
    cfg->vision_layers = count_layers(st, hf ? "vision_model.encoder.layers.%d.layer_norm1.weight"
                                             : "visual.transformer.resblocks.%d.ln_1.weight");
    cfg->text_width = (int)st_.d[1];
    cfg->vocab_size = (int)st_.d[0];
    cfg->context_length = (int)sp.d[0];
    cfg->text_layers = count_layers(st, hf ? "text_model.encoder.layers.%d.layer_norm1.weight"
                                           : "transformer.resblocks.%d.ln_1.weight");
    cfg->embed_dim = (int)(hf ? sj.d[0] : sj.d[1]);
    char *dir = g_path_get_dirname(file);
    /* OpenAI's rule is width / 64; a Hugging Face config.json beside the weights is authoritative. */
    cfg->vision_heads = json_heads(dir, "vision_config", MAX(cfg->vision_width / 64, 1));
    cfg->text_heads = json_heads(dir, "text_config", MAX(cfg->text_width / 64, 1));
    g_free(dir);
    if (cfg->vision_width % cfg->vision_heads || cfg->text_width % cfg->text_heads) {
      g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG,
                  "%s: widths %d/%d are not divisible by %d/%d heads; put a Hugging "
                  "Face config.json (num_attention_heads) beside the weights", file, cfg->vision_width,
                  cfg->text_width, cfg->vision_heads, cfg->text_heads);
      ok = FALSE;
    }
  }
  rat_safetensors_close(st);
  g_free(file);
  return ok;
}
