/* ratfw GANs: the generator and discriminator kinds (plugins/dfgan.c, plugins/galip.c), and the losses of
 * reference §6 (core/gan/losses.c).
 *
 * A discriminator is split in three stages so that the losses can be written once for DF-GAN and GALIP:
 *   x     = encode(images)        DF-GAN: the pixels themselves; GALIP: the frozen CLIP's tapped features
 *                                 [B, n_taps, D, g, g] (and the CLIP image embedding for the similarity loss)
 *   f     = features(x)           NetD
 *   logit = logits(f, sentence)   NetC, [B]
 * MA-GP differentiates logit with respect to x and the sentence (reference §6.1-6.2); the mismatch term rolls
 * either the sentences (GALIP) or the features f (DF-GAN). */
#pragma once

#include <ratfw/clip.h>
#include <ratfw/config.h>
#include <ratfw/layers.h>
#include <ratfw/module.h>
#include <ratfw/text.h>

G_BEGIN_DECLS

/* What the training task passes in RatBuildContext.user when it builds a generator or discriminator. */
typedef struct {
  RatClip *clip;      /* the frozen CLIP of the text encoder (GALIP/RATLIP use its vision tower); may be NULL */
  gint64 sentence_dim; /* width of the sentence embedding (CLIP: embed_dim) */
  gpointer reserved[6];
} RatGanContext;

typedef struct {
  /* z [B, z_dim], sentence [B, S] -> images [B, 3, H, W] (unbounded for GALIP, tanh for DF-GAN; callers clamp
   * for display). Scope-owned. Recurrent conditioners keep their state for one call. */
  RatTensor *(*forward)(RatModule *g, RatTensor *z, RatTensor *sentence);
  gint64 (*z_dim)(RatModule *g);
  gint64 (*image_size)(RatModule *g); /* side of the images forward returns */
  gpointer reserved[6];
} RatGeneratorIface;

typedef struct {
  /* images [B,3,H,W] in [-1,1] (any H the discriminator accepts) -> x. If @image_embedding is not NULL it gets
   * the CLIP image embedding [B,E] (GALIP) or NULL (DF-GAN). Scope-owned. */
  RatTensor *(*encode)(RatModule *d, RatTensor *images, RatTensor **image_embedding);
  RatTensor *(*features)(RatModule *d, RatTensor *x);
  RatTensor *(*logits)(RatModule *d, RatTensor *features, RatTensor *sentence); /* -> [B] */
  /* Image size the discriminator expects for real images (0 = any). */
  gint64 (*image_size)(RatModule *d);
  /* Does logits() read the sentence? NULL = yes. With an unconditional head the losses drop the mismatch term
   * and MA-GP differentiates with respect to x alone. */
  gboolean (*conditional)(RatModule *d);
  gpointer reserved[5];
} RatDiscriminatorIface;

#define RAT_GENERATOR_IFACE(m) RAT_MODULE_IFACE(m, RatGeneratorIface)
#define RAT_DISCRIMINATOR_IFACE(m) RAT_MODULE_IFACE(m, RatDiscriminatorIface)

/* Calls through the interfaces, recording the module for `ratfw inspect`. */
RatTensor *rat_generator_forward(RatModule *g, RatTensor *z, RatTensor *sentence);
RatTensor *rat_discriminator_encode(RatModule *d, RatTensor *images, RatTensor **image_embedding);
RatTensor *rat_discriminator_features(RatModule *d, RatTensor *x);
RatTensor *rat_discriminator_logits(RatModule *d, RatTensor *features, RatTensor *sentence);
gboolean rat_discriminator_conditional(RatModule *d);

/* ---- generator blocks (kind generator_block) -------------------------------------------------------------------
 * One stage of a generator's upsampling trunk:
 *     h [B, in_channels, in_size, in_size], cond [B, cond_dim] ([z ; s]), state -> [B, out_channels, size, size]
 * The generator builds each stage's block as its child "blocks.<k>" with RatBuildContext.user pointing to a
 * RatGeneratorBlockContext (read it with rat_generator_block_context(); ctx->channels, ->out_channels and
 * ->cond_dim carry the same numbers). @state is the generator's RatCondState for this forward: a block passes it
 * to its conditioners so that a chained RAT carries its LSTM state from stage to stage. Types: galip_block,
 * dfgan_block (plugins/gblock.c); out of tree: docs/writing-a-block.md. */
#define RAT_GENERATOR_BLOCK_CONTEXT_MAGIC 0x52474231u /* "RGB1" */
typedef struct {
  guint32 magic;                 /* RAT_GENERATOR_BLOCK_CONTEXT_MAGIC */
  guint stage, n_stages;         /* this block's index in the trunk, and the trunk's length */
  gint64 in_channels, out_channels;
  gint64 in_size, size;          /* input side, output side */
  gint64 cond_dim;               /* width of cond: z_dim + sentence width */
  const RatModuleSpec *fusion;   /* the generator's `block_fusion` (a block's `fusion: ~` means this one) */
  const RatModuleSpec *conv;     /* the generator's `block_conv` (a block's `conv: ~` means this one) */
  const RatGanContext *gan;      /* the text encoder's CLIP and sentence width; may be NULL */
  gpointer reserved[6];
} RatGeneratorBlockContext;

typedef struct {
  RatTensor *(*forward)(RatModule *b, RatTensor *h, RatTensor *cond, RatCondState *state);
  gpointer reserved[6];
} RatGeneratorBlockIface;
#define RAT_GENERATOR_BLOCK_IFACE(m) RAT_MODULE_IFACE(m, RatGeneratorBlockIface)

/* The block context of @ctx, or NULL with a RAT_ERROR_CONFIG error naming @m when @m is not being built by a
 * generator's stage list. */
const RatGeneratorBlockContext *rat_generator_block_context(const RatModule *m, const RatBuildContext *ctx,
                                                            GError **error);
/* Calls the block's forward, recording it for `ratfw inspect`. */
RatTensor *rat_generator_block_forward(RatModule *b, RatTensor *h, RatTensor *cond, RatCondState *state);

/* A generator's trunk of stages (core/gan/blocks.c), shared by galip_generator and dfgan_generator. */
#define RAT_MAX_STAGES 16
typedef struct {
  guint n;
  RatModule *block[RAT_MAX_STAGES];
  gint64 out[RAT_MAX_STAGES]; /* channels after stage k */
  gint64 size[RAT_MAX_STAGES]; /* side after stage k */
} RatGanStages;
/* Builds the stages as children "blocks.<k>" of @g: @stages as written (n = 0: the released plan @plan_out /
 * @plan_size of @n_plan stages, each with @block), starting from [in_channels, in_size] and ending at
 * @image_size. A stage's size 0 means the next power of two above the previous size, and image_size for the last
 * stage; in 0 means the previous out. Errors (channels that do not chain, sizes that shrink or do not end at
 * @image_size, a block that refuses its stage) carry the stage's file:line:column. */
gboolean rat_gan_stages_build(RatModule *g, RatBuildContext *ctx, const RatStageList *stages,
                              const RatModuleSpec *block, const RatModuleSpec *fusion, const RatModuleSpec *conv,
                              gint64 in_channels, gint64 in_size, gint64 image_size, guint n_plan,
                              const gint64 *plan_out, const gint64 *plan_size, RatGanStages *out, GError **error);
RatTensor *rat_gan_stages_forward(const RatGanStages *s, RatTensor *h, RatTensor *cond, RatCondState *state);

/* ---- discriminator heads (kind discriminator_head) -------------------------------------------------------------
 * The last stage of a discriminator: features f [B, C, g, g] and sentence s [B, E] -> logits [B]. With MA-GP the
 * head sits inside a gradient penalty, so its forward must be twice differentiable (compose core ops). An
 * unconditional head (conditional() FALSE) ignores s; the discriminator then reports itself unconditional. The
 * discriminator builds its `head` as a child named by the iface's .name (NetC: "joint_conv", the released
 * parameter names) with RatBuildContext.user pointing to a RatDiscriminatorHeadContext. Types: galip_netc,
 * dfgan_netc, projection, unconditional (plugins/heads.c); out of tree: docs/writing-a-head.md. */
#define RAT_DISCRIMINATOR_HEAD_CONTEXT_MAGIC 0x52444831u /* "RDH1" */
typedef struct {
  guint32 magic;        /* RAT_DISCRIMINATOR_HEAD_CONTEXT_MAGIC */
  gint64 channels;      /* C of the features */
  gint64 grid;          /* g: the features' side */
  gint64 sentence_dim;  /* E */
  gint64 nf;            /* the discriminator's ndf (NetC's hidden width is 2 nf) */
  gpointer reserved[6];
} RatDiscriminatorHeadContext;

typedef struct {
  const char *name; /* the child name (and parameter prefix) a discriminator gives the head; NULL = "head" */
  RatTensor *(*logits)(RatModule *h, RatTensor *features, RatTensor *sentence);
  gboolean (*conditional)(RatModule *h); /* NULL = conditional */
  gpointer reserved[6];
} RatDiscriminatorHeadIface;
#define RAT_DISCRIMINATOR_HEAD_IFACE(m) RAT_MODULE_IFACE(m, RatDiscriminatorHeadIface)

const RatDiscriminatorHeadContext *rat_discriminator_head_context(const RatModule *m, const RatBuildContext *ctx,
                                                                  GError **error);
/* Builds @spec as @d's head child (named by its iface) with the context @hc. */
RatModule *rat_discriminator_head_build(RatModule *d, const RatModuleSpec *spec, const RatBuildContext *ctx,
                                        const RatDiscriminatorHeadContext *hc, GError **error);
/* features [B,C,g,g], sentence [B,E] (ignored, may be NULL, for an unconditional head) -> [B]. */
RatTensor *rat_discriminator_head_logits(RatModule *h, RatTensor *features, RatTensor *sentence);
gboolean rat_discriminator_head_conditional(RatModule *h);

/* ---- generator building blocks (core/gan/blocks.c) ------------------------------------------------------------
 * Shared by the DF-GAN and GALIP/RATLIP generators; the conditioners and convolutions come from the generator's
 * slots (module specs), so an ablation swaps them without code. */

/* A block-kind child of @m from @spec, named @name, mapping cin -> cout channels. */
RatModule *rat_gan_slot_block_build(RatModule *m, const RatModuleSpec *spec, const char *name, RatBuildContext *ctx,
                                    gint64 cin, gint64 cout, GError **error);

/* DF-GAN's deep fusion block (reference §2.6): LReLU_0.2(A1(LReLU_0.2(A0(x, c)), c)), A0 and A1 two conditioners
 * "<name>.affine0" and "<name>.affine1" built from one spec for @channels channels. */
typedef struct {
  RatModule *a0, *a1;
} RatFuseBlock;
gboolean rat_fuse_block_build(RatModule *m, const RatModuleSpec *spec, const char *name, RatBuildContext *ctx,
                              gint64 channels, RatFuseBlock *f, GError **error);
RatTensor *rat_fuse_block(const RatFuseBlock *f, RatTensor *x, RatTensor *cond, RatCondState *st);

/* The G_Block (reference §2.5): h = up_nearest(h, size); shortcut(h) + c2(fuse2(c1(fuse1(h, c)), c)), the
 * shortcut a 1x1 conv with bias when cin != cout. Parameters "c_sc", "fuse1", "c1", "fuse2", "c2" of the block
 * module @m (created in that order); c1/c2 from the @conv slot, the fusion affines from the @fusion slot. */
typedef struct {
  gint64 cin, cout;
  gboolean learnable_sc;
  RatConv c_sc;
  RatModule *c1, *c2;
  RatFuseBlock fuse1, fuse2;
} RatGBlock;
gboolean rat_gblock_build(RatModule *m, const RatModuleSpec *fusion, const RatModuleSpec *conv, RatBuildContext *ctx,
                          gint64 cin, gint64 cout, RatGBlock *b, GError **error);
RatTensor *rat_gblock(const RatGBlock *b, RatTensor *h, int size, RatTensor *cond, RatCondState *st);

/* ---- a GAN assembled from an experiment (core/gan/model.c) ----------------------------------------------------
 * The text encoder (frozen), the generator and (optionally) the discriminator of an experiment's model section,
 * each with its own parameter set, as the train_gan task and `ratfw sample` use them. */
typedef struct {
  RatModule *text, *gen, *disc; /* disc NULL when built without it */
  RatParams *te_params, *g_params, *d_params;
  RatTokenizer *tok;            /* the text encoder's (borrowed); NULL when it has none */
  RatGanContext gctx;
  RatTensor *ema;               /* flat EMA copy of G's trainable parameters (owned), or NULL */
  gint64 z_dim, image_size;     /* of the generator */
} RatGan;

/* Builds (and finalises the parameter sets of) the model slots text_encoder, generator and, with
 * @with_discriminator, discriminator of @exp; initialisation draws from @seed. @ema_decay > 0 allocates the EMA
 * copy. Errors name the missing slot or the failing module. */
RatGan *rat_gan_build(RatRegistry *reg, RatExperiment *exp, guint64 seed, gboolean with_discriminator, gboolean ema,
                      GError **error);
void rat_gan_free(RatGan *gan);
/* Loads the generator's weights (and the discriminator's, when built) from a train_gan checkpoint or a
 * converted PyTorch checkpoint (tools/convert-checkpoint.py): tensors "model.generator.*". With @use_ema and an
 * "ema.generator" tensor in the file, G gets the EMA weights. Returns the checkpoint's step, -1 on error. */
gint64 rat_gan_load_weights(RatGan *gan, const char *path, gboolean use_ema, GError **error);
/* Sentence embeddings [n, E] of captions (no grad). */
RatTensor *rat_gan_encode_captions(RatGan *gan, const char *const *captions, guint n);
/* Sentence embeddings of token ids [n, L] (no grad). */
RatTensor *rat_gan_encode_tokens(RatGan *gan, RatTensor *tokens);
/* Images [n,3,S,S] of G for sentences [n,E] and noise [n,z_dim], no grad, with G in eval (running statistics) or
 * train mode (batch statistics; buffers such as running means are restored afterwards), with the EMA weights when
 * @use_ema and the GAN has them. Not clamped. */
RatTensor *rat_gan_generate(RatGan *gan, RatTensor *sentences, RatTensor *z, gboolean train_mode, gboolean use_ema);
/* A grid picture [3,H,W] in [0,1] of images [rows*cols,3,S,S] in [-1,1] (clamped, NaN as -1), row-major, with a
 * 2-pixel white border; with @captions (rows strings, may be NULL) each row's caption is written under it
 * (wrapped to the grid's width, at most 3 lines). */
RatTensor *rat_gan_grid(RatTensor *images, guint rows, guint cols, const char *const *captions);

/* ---- one training iteration (core/gan/train.c) ------------------------------------------------------------------
 * The GALIP/RATLIP/DF-GAN step of reference §6-7, shared by the train_gan task and the golden test of a whole
 * iteration. A caller runs rat_gan_d_step (once, or d_steps times on fresh batches), then rat_gan_g_step with the
 * last D step's fake encoding, all inside one scope. */
typedef struct {
  const char *mismatch; /* "sentence" (GALIP: roll s), "features" (DF-GAN: roll the real features) or "none" */
  double gp_k, gp_p;    /* MA-GP k, p (k = 0: no penalty) */
  double sim_weight;    /* CLIP similarity weight in L_G (0: none) */
} RatGanLossOptions;

typedef struct {
  double real, fake, mis, gp, d;  /* D terms and L_D = real + (fake + mis)/2 + gp */
  double g_adv, sim, g;           /* L_G = g_adv - sim_weight * sim */
  double grad_norm_d, grad_norm_g;
} RatGanLosses;

/* Fake images and their D encoding, kept from the D step for the G step (scope-owned tensors). */
typedef struct {
  RatTensor *fake, *x_fake, *e_fake, *sentences;
} RatGanFake;

/* One D update: L_D on real @images [B,3,S,S], their @sentences [B,E] (no grad) and noise @z [B,z_dim]; zeroes D's
 * gradients, back-propagates (MA-GP through double backward) and steps @opt_d. Fills @fake for the G step. A
 * non-finite term is a RAT_ERROR_NUMERIC error naming it and @step (1-based in the message). */
gboolean rat_gan_d_step(RatGan *gan, RatOptim *opt_d, const RatGanLossOptions *o, RatTensor *images,
                        RatTensor *sentences, RatTensor *z, gint64 step, RatGanFake *fake, RatGanLosses *out,
                        GError **error);
/* One G update with the (already updated) D on @fake: L_G, backward through D (no D weight gradients), CLIP and G,
 * then @opt_g. */
gboolean rat_gan_g_step(RatGan *gan, RatOptim *opt_g, const RatGanLossOptions *o, const RatGanFake *fake, gint64 step,
                        RatGanLosses *out, GError **error);
/* ema = decay * ema + (1 - decay) * w over G's trainable parameters (no-op without an EMA copy). */
void rat_gan_update_ema(RatGan *gan, double decay);

/* ---- losses (core/gan/losses.c) --------------------------------------------------------------------------- */

/* mean(relu(1 - logits)) for real (@real TRUE), mean(relu(1 + logits)) otherwise. 0-d. */
RatTensor *rat_hinge_d(RatTensor *logits, gboolean real);
/* -mean(logits). */
RatTensor *rat_hinge_g(RatTensor *logits);
/* Rows rolled by one: out[n] = x[(n+1) mod B] (torch.cat((x[1:], x[0:1]))). */
RatTensor *rat_roll_batch(RatTensor *x);
/* MA-GP (reference §6.1): k * mean_n ( ||concat(dlogit_n/dx_n, dlogit_n/ds_n)||_2 ^ p ), the gradient of
 * sum(logits) taken with create_graph so that the penalty back-propagates into the discriminator's parameters.
 * @x and @sentence must be the tensors @logits was computed from, with requires_grad set. @sentence NULL (an
 * unconditional head, whose logits do not read it): the norm is ||dlogit_n/dx_n|| alone. */
RatTensor *rat_ma_gp(RatTensor *logits, RatTensor *x, RatTensor *sentence, double k, double p);
/* mean_n cos(a_n, b_n). */
RatTensor *rat_mean_cosine(RatTensor *a, RatTensor *b);

G_END_DECLS
