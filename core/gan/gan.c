/* Calls through the generator and discriminator kind interfaces (gan.h), recorded for `ratfw inspect`. */
#include <ratfw/error.h>
#include <ratfw/gan.h>

RatTensor *rat_generator_forward(RatModule *g, RatTensor *z, RatTensor *sentence) {
  rat_check(g->type->kind == RAT_KIND_GENERATOR, "%s: not a generator", g->path);
  rat_module_enter(g);
  RatTensor *y = RAT_GENERATOR_IFACE(g)->forward(g, z, sentence);
  rat_module_leave(g, y);
  return y;
}

RatTensor *rat_discriminator_encode(RatModule *d, RatTensor *images, RatTensor **image_embedding) {
  rat_check(d->type->kind == RAT_KIND_DISCRIMINATOR, "%s: not a discriminator", d->path);
  if (image_embedding) *image_embedding = NULL;
  return RAT_DISCRIMINATOR_IFACE(d)->encode(d, images, image_embedding);
}

RatTensor *rat_discriminator_features(RatModule *d, RatTensor *x) {
  rat_check(d->type->kind == RAT_KIND_DISCRIMINATOR, "%s: not a discriminator", d->path);
  return RAT_DISCRIMINATOR_IFACE(d)->features(d, x);
}

RatTensor *rat_discriminator_logits(RatModule *d, RatTensor *features, RatTensor *sentence) {
  rat_check(d->type->kind == RAT_KIND_DISCRIMINATOR, "%s: not a discriminator", d->path);
  return RAT_DISCRIMINATOR_IFACE(d)->logits(d, features, sentence);
}

gboolean rat_discriminator_conditional(RatModule *d) {
  const RatDiscriminatorIface *di = RAT_DISCRIMINATOR_IFACE(d);
  return !di->conditional || di->conditional(d);
}

/* ---- generator blocks ---------------------------------------------------------------------------------------- */

const RatGeneratorBlockContext *rat_generator_block_context(const RatModule *m, const RatBuildContext *ctx,
                                                            GError **error) {
  const RatGeneratorBlockContext *bc = ctx->user;
  if (bc && bc->magic == RAT_GENERATOR_BLOCK_CONTEXT_MAGIC) return bc;
  g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "%s: a generator_block (%s) is built by a generator as one of its "
              "stages (model.generator.stages), not on its own", m->path, m->type->name);
  return NULL;
}

RatTensor *rat_generator_block_forward(RatModule *b, RatTensor *h, RatTensor *cond, RatCondState *state) {
  rat_check(b->type->kind == RAT_KIND_GENERATOR_BLOCK, "%s: not a generator block", b->path);
  rat_module_enter(b);
  RatTensor *y = RAT_GENERATOR_BLOCK_IFACE(b)->forward(b, h, cond, state);
  rat_module_leave(b, y);
  return y;
}

/* ---- discriminator heads ------------------------------------------------------------------------------------- */

const RatDiscriminatorHeadContext *rat_discriminator_head_context(const RatModule *m, const RatBuildContext *ctx,
                                                                  GError **error) {
  const RatDiscriminatorHeadContext *hc = ctx->user;
  if (hc && hc->magic == RAT_DISCRIMINATOR_HEAD_CONTEXT_MAGIC) return hc;
  g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "%s: a discriminator_head (%s) is built by a discriminator "
              "(model.discriminator.head), not on its own", m->path, m->type->name);
  return NULL;
}

RatModule *rat_discriminator_head_build(RatModule *d, const RatModuleSpec *spec, const RatBuildContext *ctx,
                                        const RatDiscriminatorHeadContext *hc, GError **error) {
  const RatModuleType *t = rat_registry_lookup(d->registry, spec->type_name);
  const RatDiscriminatorHeadIface *hi = t && t->kind == RAT_KIND_DISCRIMINATOR_HEAD ? t->iface : NULL;
  RatBuildContext c = *ctx;
  c.user = (gpointer)hc;
  c.channels = hc->channels;
  c.out_channels = 0;
  return rat_module_build_child(d, spec, hi && hi->name ? hi->name : "head", RAT_KIND_DISCRIMINATOR_HEAD, &c, error);
}

RatTensor *rat_discriminator_head_logits(RatModule *h, RatTensor *features, RatTensor *sentence) {
  rat_check(h->type->kind == RAT_KIND_DISCRIMINATOR_HEAD, "%s: not a discriminator head", h->path);
  rat_module_enter(h);
  RatTensor *y = RAT_DISCRIMINATOR_HEAD_IFACE(h)->logits(h, features, sentence);
  rat_module_leave(h, y);
  rat_check(y->ndim == 1 && y->shape[0] == features->shape[0], "%s (%s): logits must be [B]", h->path, h->type->name);
  return y;
}

gboolean rat_discriminator_head_conditional(RatModule *h) {
  const RatDiscriminatorHeadIface *hi = RAT_DISCRIMINATOR_HEAD_IFACE(h);
  return !hi->conditional || hi->conditional(h);
}
