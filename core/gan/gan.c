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
