/* GAN losses of reference §6: hinge terms, the mismatch roll, MA-GP (a second-order term: the gradient is taken
 * with create_graph, so back-propagating the penalty reaches the discriminator's parameters through the
 * autograd's double backward) and the CLIP similarity. */
#include <ratfw/error.h>
#include <ratfw/gan.h>
#include <ratfw/ops.h>

#include <math.h>

RatTensor *rat_hinge_d(RatTensor *logits, gboolean real) {
  /* real: relu(1 - l); fake or mismatched: relu(1 + l) */
  RatTensor *m = real ? rat_rsub_scalar(logits, 1.0f) : rat_add_scalar(logits, 1.0f);
  return rat_mean_all(rat_relu(m));
}

RatTensor *rat_hinge_g(RatTensor *logits) { return rat_neg(rat_mean_all(logits)); }

RatTensor *rat_roll_batch(RatTensor *x) {
  /* torch.cat((x[1:], x[0:1])) == torch.roll(x, -1, 0) */
  return rat_roll(x, -1, 0);
}

/* Sum of squares over every axis but the batch axis: [B]. */
static RatTensor *sq_norm_per_sample(RatTensor *g) {
  gint64 B = g->shape[0];
  return rat_sum(rat_square(rat_reshape(g, RAT_SHAPE(B, -1))), RAT_AXIS(1), FALSE);
}

RatTensor *rat_ma_gp(RatTensor *logits, RatTensor *x, RatTensor *sentence, double k, double p) {
  rat_check(logits->ndim == 1, "rat_ma_gp: logits must be [B], got %d dimensions", logits->ndim);
  rat_check((x->requires_grad || x->grad_fn) && (!sentence || sentence->requires_grad || sentence->grad_fn),
            "rat_ma_gp: the discriminator input and the sentence must be part of the graph (set requires_grad)");
  RatTensor *ones = rat_ones(rat_tensor_shape(logits));
  RatTensor *in[2] = {x, sentence}, *g[2];
  guint n_in = sentence ? 2 : 1;
  GError *e = NULL;
  if (!rat_grad(&logits, &ones, 1, in, n_in, g, TRUE, &e)) rat_check(FALSE, "rat_ma_gp: %s", e->message);
  /* ||(gx, gs)||^p = (||gx||^2 + ||gs||^2)^(p/2); without a sentence ||gx||^p */
  RatTensor *nsq = sq_norm_per_sample(g[0]);
  if (sentence) nsq = rat_add(nsq, sq_norm_per_sample(g[1]));
  return rat_mul_scalar(rat_mean_all(rat_pow_scalar(nsq, (float)(p / 2.0))), (float)k);
}

RatTensor *rat_mean_cosine(RatTensor *a, RatTensor *b) {
  /* torch.cosine_similarity(a, b) with its default eps 1e-8, averaged over the batch */
  return rat_mean_all(rat_cosine_similarity(a, b, 1, 1e-8f));
}
