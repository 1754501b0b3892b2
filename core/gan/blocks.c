/* Generator building blocks shared by the DF-GAN and GALIP/RATLIP generators (reference §2.5-2.6): the deep
 * fusion block with slot-chosen affines, the upsampling G_Block with slot-chosen convolutions (the forward of the
 * galip_block and dfgan_block types, plugins/gblock.c), and the trunk of stages a generator builds from YAML. */
#include <ratfw/error.h>
#include <ratfw/gan.h>

#include <stdarg.h>

RatModule *rat_gan_slot_block_build(RatModule *m, const RatModuleSpec *spec, const char *name, RatBuildContext *ctx,
                                    gint64 cin, gint64 cout, GError **error) {
  ctx->channels = cin;
  ctx->out_channels = cout;
  RatModule *b = rat_module_build_child(m, spec, name, RAT_KIND_BLOCK, ctx, error);
  ctx->out_channels = 0;
  return b;
}

gboolean rat_fuse_block_build(RatModule *m, const RatModuleSpec *spec, const char *name, RatBuildContext *ctx,
                              gint64 channels, RatFuseBlock *f, GError **error) {
  ctx->channels = channels;
  ctx->out_channels = 0;
  char *n0 = g_strdup_printf("%s.affine0", name), *n1 = g_strdup_printf("%s.affine1", name);
  f->a0 = rat_module_build_child(m, spec, n0, RAT_KIND_CONDITIONER, ctx, error);
  f->a1 = f->a0 ? rat_module_build_child(m, spec, n1, RAT_KIND_CONDITIONER, ctx, error) : NULL;
  g_free(n0);
  g_free(n1);
  return f->a1 != NULL;
}

RatTensor *rat_fuse_block(const RatFuseBlock *f, RatTensor *x, RatTensor *cond, RatCondState *st) {
  x = rat_leaky_relu(rat_conditioner_forward(f->a0, x, cond, st), 0.2f);
  return rat_leaky_relu(rat_conditioner_forward(f->a1, x, cond, st), 0.2f);
}

gboolean rat_gblock_build(RatModule *m, const RatModuleSpec *fusion, const RatModuleSpec *conv, RatBuildContext *ctx,
                          gint64 cin, gint64 cout, RatGBlock *b, GError **error) {
  b->cin = cin;
  b->cout = cout;
  b->learnable_sc = cin != cout;
  if (b->learnable_sc) rat_conv_layer_init(&b->c_sc, m, ctx, "c_sc", cin, cout, 1, 1, 0, TRUE);
  if (!rat_fuse_block_build(m, fusion, "fuse1", ctx, cin, &b->fuse1, error)) return FALSE;
  if (!(b->c1 = rat_gan_slot_block_build(m, conv, "c1", ctx, cin, cout, error))) return FALSE;
  if (!rat_fuse_block_build(m, fusion, "fuse2", ctx, cout, &b->fuse2, error)) return FALSE;
  return (b->c2 = rat_gan_slot_block_build(m, conv, "c2", ctx, cout, cout, error)) != NULL;
}

RatTensor *rat_gblock(const RatGBlock *b, RatTensor *h, int size, RatTensor *cond, RatCondState *st) {
  h = rat_upsample_nearest(h, size, size);
  RatTensor *sc = b->learnable_sc ? rat_conv_layer(&b->c_sc, h) : h;
  RatTensor *r = rat_block_forward(b->c1, rat_fuse_block(&b->fuse1, h, cond, st));
  r = rat_block_forward(b->c2, rat_fuse_block(&b->fuse2, r, cond, st));
  return rat_add(sc, r);
}

/* ---- a generator's trunk of stages ---------------------------------------------------------------------------- */

static gint64 next_pow2_above(gint64 v) {
  gint64 p = 1;
  while (p <= v) p *= 2;
  return p;
}

/* Sets @error to "file:line:column: <g>: stage k: message" (the stage's mark when it was written). */
static void stage_error(GError **error, const RatModule *g, const RatStage *st, guint k, const char *fmt, ...)
    G_GNUC_PRINTF(5, 6);
static void stage_error(GError **error, const RatModule *g, const RatStage *st, guint k, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  if (st && st->node) rat_config_error(error, st->node, RAT_ERROR_CONFIG, "%s: stage %u: %s", g->path, k, msg);
  else g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "%s: stage %u: %s", g->path, k, msg);
  g_free(msg);
}

gboolean rat_gan_stages_build(RatModule *g, RatBuildContext *ctx, const RatStageList *stages,
                              const RatModuleSpec *block, const RatModuleSpec *fusion, const RatModuleSpec *conv,
                              gint64 in_channels, gint64 in_size, gint64 image_size, guint n_plan,
                              const gint64 *plan_out, const gint64 *plan_size, RatGanStages *out, GError **error) {
  guint n = stages->n ? stages->n : n_plan;
  if (n > RAT_MAX_STAGES) {
    stage_error(error, g, &stages->v[RAT_MAX_STAGES], RAT_MAX_STAGES, "a generator has at most %d stages, not %u",
                RAT_MAX_STAGES, n);
    return FALSE;
  }
  if (n < 1) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "%s: the generator's plan has no stage", g->path);
    return FALSE;
  }
  const RatGanContext *gan = ctx->user;
  gint64 c = in_channels, size = in_size;
  out->n = n;
  for (guint k = 0; k < n; k++) {
    const RatStage *st = stages->n ? &stages->v[k] : NULL;
    gint64 cout = st ? st->out : plan_out[k];
    gint64 want = st && st->size ? st->size : !st ? plan_size[k] : k + 1 == n ? image_size : next_pow2_above(size);
    if (st && st->in && st->in != c) {
      stage_error(error, g, st, k, "in is %" G_GINT64_FORMAT " but the %s gives %" G_GINT64_FORMAT " channels: the "
                  "stages must chain (drop `in:` or make it %" G_GINT64_FORMAT ")", st->in,
                  k ? "previous stage's out" : "generator's code", c, c);
      return FALSE;
    }
    if (want < size) {
      stage_error(error, g, st, k, "size %" G_GINT64_FORMAT " is smaller than its input %" G_GINT64_FORMAT
                  " (stages upsample)", want, size);
      return FALSE;
    }
    if (k + 1 == n && want != image_size) {
      stage_error(error, g, st, k, "the last stage ends at %" G_GINT64_FORMAT " x %" G_GINT64_FORMAT " but the "
                  "generator's image_size is %" G_GINT64_FORMAT ": the stages must reach it (set the last stage's "
                  "size to it or leave it out)", want, want, image_size);
      return FALSE;
    }
    RatGeneratorBlockContext bc = {.magic = RAT_GENERATOR_BLOCK_CONTEXT_MAGIC, .stage = k, .n_stages = n,
                                   .in_channels = c, .out_channels = cout, .in_size = size, .size = want,
                                   .cond_dim = ctx->cond_dim, .fusion = fusion, .conv = conv, .gan = gan};
    RatBuildContext bctx = *ctx;
    bctx.user = &bc;
    bctx.channels = c;
    bctx.out_channels = cout;
    char *name = g_strdup_printf("blocks.%u", k);
    GError *e = NULL;
    out->block[k] = rat_module_build_child(g, st && st->block ? st->block : block, name, RAT_KIND_GENERATOR_BLOCK,
                                           &bctx, &e);
    g_free(name);
    if (!out->block[k]) {
      if (st) stage_error(error, g, st, k, "%s", e->message);
      else g_propagate_error(error, g_steal_pointer(&e));
      g_clear_error(&e);
      return FALSE;
    }
    out->out[k] = c = cout;
    out->size[k] = size = want;
  }
  return TRUE;
}

RatTensor *rat_gan_stages_forward(const RatGanStages *s, RatTensor *h, RatTensor *cond, RatCondState *state) {
  for (guint k = 0; k < s->n; k++) {
    h = rat_generator_block_forward(s->block[k], h, cond, state);
    rat_check(h->ndim == 4 && h->shape[1] == s->out[k] && h->shape[2] == s->size[k] && h->shape[3] == s->size[k],
              "%s (%s) returned [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
              "], its stage is [B, %" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "]",
              s->block[k]->path, s->block[k]->type->name, h->shape[0], h->shape[1], h->shape[2], h->shape[3],
              s->out[k], s->size[k], s->size[k]);
  }
  return h;
}
