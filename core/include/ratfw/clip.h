/* CLIP (Radford et al. 2021) as a library, for the text encoder, GALIP/RATLIP's CLIP adapter inside the
 * generator, and the CLIP-feature discriminator (reference §2.4, §5.1-5.2, §10). Both towers are pre-LN
 * transformers with a packed q/k/v in-projection and QuickGELU; the text tower is causal and pools the token at
 * argmax(ids) (the end token has the largest id). Parameters live in a RatParams under OpenAI's names (prefixed),
 * frozen or trainable; gradients always flow through to the inputs. Hooks run single vision blocks on any
 * number of tokens, so a caller can append a prompt token before block i and drop it after. */
#pragma once

#include <ratfw/nn.h>
#include <ratfw/ops.h>

G_BEGIN_DECLS

typedef struct {
  int vision_width, vision_layers, vision_heads, vision_patch, image_size;
  int text_width, text_layers, text_heads, context_length, vocab_size;
  int embed_dim;
} RatClipConfig;

/* OpenAI ViT-B/32. */
RatClipConfig rat_clip_config_vit_b32(void);

typedef struct _RatClip RatClip;

/* Creates the parameters "<prefix>visual.conv1.weight", ... (OpenAI names) in @params, zero-filled, as
 * @kind (RAT_PARAM_FROZEN for a frozen encoder). Call before rat_params_finalize. */
RatClip *rat_clip_new(const RatClipConfig *cfg, RatParams *params, const char *prefix, RatParamKind kind);
void rat_clip_free(RatClip *clip);
const RatClipConfig *rat_clip_config(const RatClip *clip);
/* Infers the configuration from a weights file in either naming (what OpenAI's build_model does from shapes).
 * @path: a .safetensors file, or a directory holding model.safetensors. */
gboolean rat_clip_config_from_file(const char *path, RatClipConfig *cfg, GError **error);
/* Loads weights into the parameters: Hugging Face CLIPModel names (q/k/v split, projections transposed,
 * position_ids ignored) or OpenAI names, detected from the file. A missing tensor or a wrong shape is an error
 * naming it and its expected shape; nothing is changed on error. F16/BF16 weights load as f32. */
gboolean rat_clip_load(RatClip *clip, const char *path, GError **error);
/* Random initialisation as OpenAI's CLIP (normal with the std of model.py's initialize_parameters). */
void rat_clip_init_random(RatClip *clip, RatRng *rng);

/* Text: ids i32 [B,L] (L <= context) -> [B,E]. The pooled position is argmax(ids) per row. */
RatTensor *rat_clip_encode_text(RatClip *clip, RatTensor *ids);
/* Same, pooling at the first position holding @eot_id (for word tokenizers, whose end id is not the largest);
 * rows without it pool at their last position. @eot_id < 0: argmax as above. */
RatTensor *rat_clip_encode_text_eot(RatClip *clip, RatTensor *ids, gint32 eot_id);
/* Same, pooling row b at @positions[b] (B entries, each in [0, L)). */
RatTensor *rat_clip_encode_text_at(RatClip *clip, RatTensor *ids, const gint64 *positions);
/* Image: pixels [B,3,S,S], already normalised -> [B,E]. */
RatTensor *rat_clip_encode_image(RatClip *clip, RatTensor *pixels);

/* Vision hooks. Embed: patchify, prepend the class token, add positions, ln_pre -> [B,T,D] (T = 1 + grid^2). */
RatTensor *rat_clip_vision_embed(RatClip *clip, RatTensor *pixels);
/* The same from patch tokens [B,g*g,D] that did not come from pixels (GALIP's CLIP adapter feeds its bridge
 * feature here): prepend the class token, add positions, ln_pre -> [B,1+g*g,D]. */
RatTensor *rat_clip_vision_tokens(RatClip *clip, RatTensor *patch_tokens);
/* Residual block @i on any tokens [B,T',D] (no mask). */
RatTensor *rat_clip_vision_block(RatClip *clip, int i, RatTensor *x);
/* ln_post on the class token, then the projection -> [B,E]. */
RatTensor *rat_clip_vision_head(RatClip *clip, RatTensor *x);
/* Full vision forward; taps[k] = the residual stream [B,T,D] after block blocks[k] (0-based, increasing).
 * Returns the image embedding. */
RatTensor *rat_clip_vision_taps(RatClip *clip, RatTensor *pixels, const int *blocks, guint n, RatTensor **taps);

/* Input transforms from model range [-1,1] images of any size. GALIP / RATLIP (§5.1), the released quirk and the
 * default where matching published numbers matters: u = x/2 + 1/2, nearest resize (PyTorch legacy rule) to
 * @size, v = (u + 1)/2, then CLIP's mean/std. Standard (§10.6): u = x/2 + 1/2, the shorter side resized to @size
 * with antialiased bicubic (PIL's filter, = torch interpolate(bicubic, antialias=True); on float images, so no
 * 8-bit rounding as PIL), centre crop to @size x @size, mean/std (the resize is two matmuls with fixed weights). */
RatTensor *rat_clip_transform_galip(RatTensor *x, int size);
RatTensor *rat_clip_transform_standard(RatTensor *x, int size);

/* Symmetric cross-entropy of the batch's cosine similarities scaled by exp(logit_scale), logit_scale clamped at
 * ln 100 (OpenAI). img, txt [B,E]; logit_scale 0-d. */
RatTensor *rat_clip_contrastive_loss(RatTensor *img, RatTensor *txt, RatTensor *logit_scale);
RatTensor *rat_clip_logit_scale(RatClip *clip);

/* Kind interfaces of the `clip_text` and `clip_image` module types (plugins/clip.c). */
typedef struct _RatModule RatModuleFwd;
typedef struct {
  /* ids i32 [B,L] -> [B,E]; the module knows its tokenizer's end id. */
  RatTensor *(*encode)(struct _RatModule *m, RatTensor *ids);
  /* The CLIP behind the module (for the GAN modules' hooks). */
  RatClip *(*clip)(struct _RatModule *m);
  /* The tokenizer that produces the ids encode() expects (NULL when the module has no vocabulary). */
  struct _RatTokenizer *(*tokenizer)(struct _RatModule *m);
} RatTextEncoderIface;
typedef struct {
  /* images [B,3,H,W] in [-1,1], any size -> [B,E] (through the module's transform). */
  RatTensor *(*encode)(struct _RatModule *m, RatTensor *images);
  RatClip *(*clip)(struct _RatModule *m);
} RatImageEncoderIface;

G_END_DECLS
