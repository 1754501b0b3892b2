/* One GAN training iteration (gan.h), reference §6.1-6.2 and §7.1:
 *   D: X_r = encode(x) (a leaf for MA-GP), f_r = features(X_r), l_r = logits(f_r, s)
 *      L_real = mean relu(1 - l_r); L_mis = mean relu(1 + logits(f_r, roll(s))) (GALIP) or
 *      mean relu(1 + logits(roll(f_r), s)) (DF-GAN); fake = G(z, s); X_f, e_f = encode(fake) (graph kept);
 *      L_fake = mean relu(1 + logits(features(stopgrad(X_f)), s)); L_gp = k mean ||d l_r / d(X_r, s)||^p
 *      L_D = L_real + (L_fake + L_mis)/2 + L_gp
 *   G: L_G = -mean logits(features(X_f), s) - sim_weight mean cos(e_f, s)
 * With an unconditional head (rat_discriminator_conditional FALSE) L_mis is absent (as with mismatch: none) and
 * MA-GP is k mean ||d l_r / d X_r||^p: the sentence is not an input of the logits. */
#include <ratfw/error.h>
#include <ratfw/gan.h>
#include <ratfw/ops.h>

#include <math.h>
#include <string.h>

static gboolean finite_or_fail(const char *term, double v, gint64 step, GError **error) {
  if (isfinite(v)) return TRUE;
  g_set_error(error, RAT_ERROR, RAT_ERROR_NUMERIC,
              "the loss term %s became %g at step %" G_GINT64_FORMAT "; stopping (the last checkpoint is kept). "
              "Lower the learning rates or check the data.", term, v, step + 1);
  return FALSE;
}

/* Trainable parameters of @p take gradients or not (D's need none in the G step, nor while encoding the fake). */
static void params_require_grad(RatParams *p, gboolean on) {
  for (guint i = 0; i < rat_params_size(p); i++)
    if (rat_params_kind(p, i) == RAT_PARAM_TRAINABLE) rat_tensor_set_requires_grad(rat_params_tensor(p, i), on);
}

gboolean rat_gan_d_step(RatGan *g, RatOptim *opt_d, const RatGanLossOptions *o, RatTensor *images,
                        RatTensor *sentences, RatTensor *z, gint64 step, RatGanFake *fk, RatGanLosses *L,
                        GError **error) {
  RatTensor *sent = rat_tensor_detach(sentences);
  RatTensor *s_leaf = rat_copy(sent);
  rat_tensor_set_requires_grad(s_leaf, TRUE);
  RatTensor *x_real;
  RAT_NO_GRAD_BEGIN
  x_real = rat_discriminator_encode(g->disc, images, NULL);
  RAT_NO_GRAD_END
  x_real = rat_copy(rat_tensor_detach(x_real));
  rat_tensor_set_requires_grad(x_real, TRUE);

  rat_optim_zero_grad(opt_d);
  RatTensor *f_real = rat_discriminator_features(g->disc, x_real);
  RatTensor *l_real = rat_discriminator_logits(g->disc, f_real, s_leaf);
  RatTensor *L_real = rat_hinge_d(l_real, TRUE), *L_mis = NULL;
  /* an unconditional head cannot tell a caption from another: no mismatch term, no sentence gradient */
  gboolean conditional = rat_discriminator_conditional(g->disc);
  if (!conditional)
    ;
  else if (!strcmp(o->mismatch, "sentence"))
    L_mis = rat_hinge_d(rat_discriminator_logits(g->disc, f_real, rat_roll_batch(sent)), FALSE);
  else if (!strcmp(o->mismatch, "features"))
    L_mis = rat_hinge_d(rat_discriminator_logits(g->disc, rat_roll_batch(f_real), s_leaf), FALSE);

  params_require_grad(g->d_params, FALSE);
  fk->sentences = sent;
  fk->fake = rat_generator_forward(g->gen, z, sent);
  fk->e_fake = NULL;
  fk->x_fake = rat_discriminator_encode(g->disc, fk->fake, &fk->e_fake);
  params_require_grad(g->d_params, TRUE);
  RatTensor *l_fake = rat_discriminator_logits(g->disc, rat_discriminator_features(g->disc, rat_tensor_detach(fk->x_fake)), sent);
  RatTensor *L_fake = rat_hinge_d(l_fake, FALSE);
  RatTensor *L_gp = o->gp_k > 0 ? rat_ma_gp(l_real, x_real, conditional ? s_leaf : NULL, o->gp_k, o->gp_p) : NULL;

  RatTensor *half = rat_mul_scalar(L_mis ? rat_add(L_fake, L_mis) : L_fake, 0.5f);
  RatTensor *L_D = rat_add(L_real, half);
  if (L_gp) L_D = rat_add(L_D, L_gp);
  L->real = rat_tensor_item(L_real);
  L->fake = rat_tensor_item(L_fake);
  L->mis = L_mis ? rat_tensor_item(L_mis) : 0;
  L->gp = L_gp ? rat_tensor_item(L_gp) : 0;
  L->d = rat_tensor_item(L_D);
  if (!finite_or_fail("D real hinge", L->real, step, error) || !finite_or_fail("D fake hinge", L->fake, step, error) ||
      !finite_or_fail("D mismatch hinge", L->mis, step, error) || !finite_or_fail("MA-GP", L->gp, step, error) ||
      !rat_backward(L_D, NULL, FALSE, error))
    return FALSE;
  L->grad_norm_d = rat_params_grad_norm(g->d_params);
  if (!finite_or_fail("D gradient norm", L->grad_norm_d, step, error)) return FALSE;
  rat_optim_step(opt_d);
  return TRUE;
}

gboolean rat_gan_g_step(RatGan *g, RatOptim *opt_g, const RatGanLossOptions *o, const RatGanFake *fk, gint64 step,
                        RatGanLosses *L, GError **error) {
  rat_optim_zero_grad(opt_g);
  params_require_grad(g->d_params, FALSE);
  RatTensor *l_g = rat_discriminator_logits(g->disc, rat_discriminator_features(g->disc, fk->x_fake), fk->sentences);
  params_require_grad(g->d_params, TRUE);
  RatTensor *L_adv = rat_hinge_g(l_g), *L_G = L_adv;
  L->sim = 0;
  if (o->sim_weight > 0) {
    if (!fk->e_fake) {
      g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "sim_weight is %g but the discriminator %s gives no CLIP image "
                  "embedding; set it to 0 (DF-GAN) or use a CLIP discriminator", o->sim_weight, g->disc->type->name);
      return FALSE;
    }
    RatTensor *sim = rat_mean_cosine(fk->e_fake, fk->sentences);
    L->sim = rat_tensor_item(sim);
    L_G = rat_sub(L_adv, rat_mul_scalar(sim, (float)o->sim_weight));
  }
  L->g_adv = rat_tensor_item(L_adv);
  L->g = rat_tensor_item(L_G);
  if (!finite_or_fail("G adversarial", L->g_adv, step, error) || !finite_or_fail("G CLIP similarity", L->sim, step, error) ||
      !rat_backward(L_G, NULL, FALSE, error))
    return FALSE;
  L->grad_norm_g = rat_params_grad_norm(g->g_params);
  if (!finite_or_fail("G gradient norm", L->grad_norm_g, step, error)) return FALSE;
  rat_optim_step(opt_g);
  return TRUE;
}

void rat_gan_update_ema(RatGan *g, double decay) {
  if (!g->ema) return;
  RatTensor *w = rat_params_flat(g->g_params);
  float d = (float)decay;
  float *e = rat_tensor_data(g->ema);
  const float *p = rat_tensor_data(w);
  gint64 n = rat_tensor_numel(g->ema);
  for (gint64 i = 0; i < n; i++) e[i] = d * e[i] + (1.0f - d) * p[i];
}
