/* Generator building blocks shared by the DF-GAN and GALIP/RATLIP generators (reference §2.5-2.6): the deep
 * fusion block with slot-chosen affines and the upsampling G_Block with slot-chosen convolutions. */
#include <ratfw/error.h>
#include <ratfw/gan.h>

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

gboolean rat_gblock_build(RatModule *m, const char *name, const RatModuleSpec *fusion, const RatModuleSpec *conv,
                          RatBuildContext *ctx, gint64 cin, gint64 cout, RatGBlock *b, GError **error) {
  b->cin = cin;
  b->cout = cout;
  b->learnable_sc = cin != cout;
  char *n;
  if (b->learnable_sc) {
    n = g_strdup_printf("%s.c_sc", name);
    rat_conv_layer_init(&b->c_sc, m, ctx, n, cin, cout, 1, 1, 0, TRUE);
    g_free(n);
  }
  n = g_strdup_printf("%s.fuse1", name);
  gboolean ok = rat_fuse_block_build(m, fusion, n, ctx, cin, &b->fuse1, error);
  g_free(n);
  if (!ok) return FALSE;
  n = g_strdup_printf("%s.c1", name);
  b->c1 = rat_gan_slot_block_build(m, conv, n, ctx, cin, cout, error);
  g_free(n);
  if (!b->c1) return FALSE;
  n = g_strdup_printf("%s.fuse2", name);
  ok = rat_fuse_block_build(m, fusion, n, ctx, cout, &b->fuse2, error);
  g_free(n);
  if (!ok) return FALSE;
  n = g_strdup_printf("%s.c2", name);
  b->c2 = rat_gan_slot_block_build(m, conv, n, ctx, cout, cout, error);
  g_free(n);
  return b->c2 != NULL;
}

RatTensor *rat_gblock(const RatGBlock *b, RatTensor *h, int size, RatTensor *cond, RatCondState *st) {
  h = rat_upsample_nearest(h, size, size);
  RatTensor *sc = b->learnable_sc ? rat_conv_layer(&b->c_sc, h) : h;
  RatTensor *r = rat_block_forward(b->c1, rat_fuse_block(&b->fuse1, h, cond, st));
  r = rat_block_forward(b->c2, rat_fuse_block(&b->fuse2, r, cond, st));
  return rat_add(sc, r);
}
