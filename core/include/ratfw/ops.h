/* ratfw differentiable ops. Each returns a scope-owned tensor and records itself on the tape when grad mode
 * is on and an input needs a gradient. Semantics follow PyTorch 1.13 (the reference the golden tests use).
 * Shapes use fixed letters: B batch, C channels, H, W spatial, L text length, E embedding, Z noise. */
#pragma once

#include <ratfw/autograd.h>

G_BEGIN_DECLS

/* ---- elementwise, broadcasting (core/ops/elementwise.c) ------------------------------------------------ */
RatTensor *rat_add(RatTensor *a, RatTensor *b);
RatTensor *rat_sub(RatTensor *a, RatTensor *b);
RatTensor *rat_mul(RatTensor *a, RatTensor *b);
RatTensor *rat_div(RatTensor *a, RatTensor *b);
/* y = alpha*a + beta*b (broadcasting); used by optimisers and fused residuals. */
RatTensor *rat_axpby(float alpha, RatTensor *a, float beta, RatTensor *b);
RatTensor *rat_add_scalar(RatTensor *a, float s);
RatTensor *rat_mul_scalar(RatTensor *a, float s);
RatTensor *rat_rsub_scalar(RatTensor *a, float s); /* s - a */
RatTensor *rat_neg(RatTensor *a);
RatTensor *rat_exp(RatTensor *a);
RatTensor *rat_log(RatTensor *a);
RatTensor *rat_sqrt(RatTensor *a);
RatTensor *rat_rsqrt(RatTensor *a);
RatTensor *rat_pow_scalar(RatTensor *a, float p); /* a^p */
RatTensor *rat_square(RatTensor *a);
RatTensor *rat_abs(RatTensor *a);
RatTensor *rat_sign(RatTensor *a); /* no gradient */
RatTensor *rat_tanh(RatTensor *a);
RatTensor *rat_sigmoid(RatTensor *a);
RatTensor *rat_relu(RatTensor *a);
RatTensor *rat_leaky_relu(RatTensor *a, float slope);
RatTensor *rat_quick_gelu(RatTensor *a); /* a * sigmoid(1.702 a) */
RatTensor *rat_clamp(RatTensor *a, float lo, float hi); /* gradient 1 inside [lo, hi], 0 outside */
RatTensor *rat_where_positive(RatTensor *mask_src, RatTensor *a, RatTensor *b); /* mask_src>0 ? a : b */
/* d leaky_relu(x)/dx applied to g: g * (x > 0 ? 1 : slope). Differentiable in g. */
RatTensor *rat_leaky_relu_backward(RatTensor *g, RatTensor *x, float slope);
/* Replaces NaN by nan_v, +inf by pos_v, -inf by neg_v (no gradient through replaced values). */
RatTensor *rat_nan_to_num(RatTensor *a, float nan_v, float pos_v, float neg_v);

/* ---- reductions (core/ops/reduce.c) ----------------------------------------------------------------------
 * axes: a bitmask of dimensions (bit d = reduce dim d); negative-free. Results are deterministic: the
 * summation order does not depend on the thread count. */
RatTensor *rat_sum(RatTensor *a, guint axes, gboolean keepdim);
RatTensor *rat_mean(RatTensor *a, guint axes, gboolean keepdim);
RatTensor *rat_sum_all(RatTensor *a);  /* 0-d */
RatTensor *rat_mean_all(RatTensor *a); /* 0-d */
RatTensor *rat_max(RatTensor *a, int axis, gboolean keepdim); /* gradient to the first maximum */
/* Sums broadcast dimensions away so the result has @shape (the gradient of broadcasting). */
RatTensor *rat_sum_to(RatTensor *a, RatShape shape);
/* (core/ops/softmax.c) */
RatTensor *rat_softmax(RatTensor *a, int axis);
RatTensor *rat_log_softmax(RatTensor *a, int axis);
#define RAT_AXIS(d) (1u << (d))

/* ---- shape and data movement (core/ops/shape.c) -------------------------------------------------------- */
RatTensor *rat_reshape(RatTensor *a, RatShape shape); /* view when possible, else a copy; one -1 allowed */
RatTensor *rat_view(RatTensor *a, RatShape shape);    /* must be expressible as a view (asserts) */
RatTensor *rat_permute(RatTensor *a, const int *perm); /* view */
RatTensor *rat_transpose(RatTensor *a, int d0, int d1); /* view */
RatTensor *rat_expand(RatTensor *a, RatShape shape);  /* broadcast view (stride 0) */
RatTensor *rat_contiguous(RatTensor *a);              /* row-major copy (or @a itself if already) */
RatTensor *rat_to_nhwc(RatTensor *a);                 /* 4-D channels-last copy (or @a) */
RatTensor *rat_copy(RatTensor *a);                    /* always a new buffer, same layout */
RatTensor *rat_slice(RatTensor *a, int axis, gint64 start, gint64 end); /* view, [start, end) */
RatTensor *rat_select(RatTensor *a, int axis, gint64 index);          /* view, removes axis */
RatTensor *rat_unsqueeze(RatTensor *a, int axis);
RatTensor *rat_squeeze(RatTensor *a, int axis);
RatTensor *rat_concat(RatTensor *const *ts, guint n, int axis);
/* Splits @a along @axis into pieces of the given sizes (views); out[i] scope-owned. */
void rat_split(RatTensor *a, int axis, const gint64 *sizes, guint n, RatTensor **out);
RatTensor *rat_tile(RatTensor *a, RatShape reps); /* torch.Tensor.repeat */
RatTensor *rat_roll(RatTensor *a, gint64 shift, int axis); /* torch.roll(a, shift, axis) */
RatTensor *rat_flatten(RatTensor *a, int start_axis, int end_axis);

/* ---- linear algebra (core/ops/matmul.c) ----------------------------------------------------------------- */
/* a [..., M, K] @ b [..., K, N] with batch broadcasting; 1-D and 2-D cases as torch.matmul. */
RatTensor *rat_matmul(RatTensor *a, RatTensor *b);
/* x [..., In] -> [..., Out], weight [Out, In], bias [Out] or NULL (torch.nn.functional.linear). */
RatTensor *rat_linear(RatTensor *x, RatTensor *weight, RatTensor *bias);

/* ---- convolution and pooling (core/ops/conv.c) ---------------------------------------------------------- */
typedef struct {
  int stride[2];  /* h, w */
  int padding[2]; /* h, w (symmetric) */
  int dilation[2];
  int groups;
} RatConvParams;
#define RAT_CONV_PARAMS(s, p) ((RatConvParams){.stride = {(s), (s)}, .padding = {(p), (p)}, .dilation = {1, 1}, .groups = 1})
/* x [B,Cin,H,W], w [Cout,Cin/groups,KH,KW], bias [Cout] or NULL -> [B,Cout,OH,OW] (channels-last storage). */
RatTensor *rat_conv2d(RatTensor *x, RatTensor *w, RatTensor *bias, RatConvParams p);
/* Gradient w.r.t. the input of rat_conv2d: gy [B,Cout,OH,OW], w -> [B,Cin,H,W] of @in_shape. Differentiable. */
RatTensor *rat_conv2d_backward_data(RatTensor *gy, RatTensor *w, RatShape in_shape, RatConvParams p);
/* Gradient w.r.t. the weight: x, gy -> [Cout,Cin/groups,KH,KW] of @w_shape. Differentiable. */
RatTensor *rat_conv2d_backward_weight(RatTensor *x, RatTensor *gy, RatShape w_shape, RatConvParams p);
/* Average pooling, kernel k, stride s, padding 0 (count_include_pad irrelevant). */
RatTensor *rat_avg_pool2d(RatTensor *x, int k, int s);
RatTensor *rat_adaptive_avg_pool2d_1(RatTensor *x); /* to 1x1: mean over H, W, keepdim */

/* ---- resampling (core/ops/resample.c) -------------------------------------------------------------------- */
/* PyTorch legacy 'nearest' to an explicit size: src = min(floor(dst * (float)(in/out)), in-1). */
RatTensor *rat_upsample_nearest(RatTensor *x, int out_h, int out_w);
/* Bilinear resize (align_corners as in torch.nn.functional.interpolate). */
RatTensor *rat_resize_bilinear(RatTensor *x, int out_h, int out_w, gboolean align_corners);

/* ---- normalisation (core/ops/norm.c; layer_norm in core/ops/nnops.c) ------------------------------------ */
/* Over the last dimension; weight/bias [E] or NULL. */
RatTensor *rat_layer_norm(RatTensor *x, RatTensor *weight, RatTensor *bias, float eps);
/* x [B,C,...]. Training: batch statistics (biased variance for normalising); running stats updated in place
 * with momentum using the unbiased variance, as torch. Eval: running stats. weight/bias [C] or NULL;
 * running_mean/var may be NULL in training (then no update). */
RatTensor *rat_batch_norm(RatTensor *x, RatTensor *running_mean, RatTensor *running_var, RatTensor *weight,
                          RatTensor *bias, gboolean training, float momentum, float eps);
/* x [B,C,...], G groups; weight/bias [C] or NULL. */
RatTensor *rat_group_norm(RatTensor *x, int groups, RatTensor *weight, RatTensor *bias, float eps);
/* Per-sample, per-channel statistics over the spatial dims (torch instance_norm without running stats). */
RatTensor *rat_instance_norm(RatTensor *x, RatTensor *weight, RatTensor *bias, float eps);

/* ---- neural-network pieces (core/ops/nnops.c; attention in core/ops/softmax.c) ---------------------------- */
/* weight [V,E], ids (i32) any shape -> [..., E]. */
RatTensor *rat_embedding(RatTensor *weight, RatTensor *ids);
/* q,k,v [B,Hd,L,D] -> softmax(q k^T * scale + mask) v; causal masks j > i. */
RatTensor *rat_scaled_dot_product_attention(RatTensor *q, RatTensor *k, RatTensor *v, gboolean causal,
                                            float scale);
/* One LSTM step with PyTorch gate order (i, f, g, o): x [B,In], h,c [B,H], w_ih [4H,In], w_hh [4H,H],
 * b_ih, b_hh [4H] (either may be NULL). Returns h' and c' in *h_out, *c_out. */
void rat_lstm_cell(RatTensor *x, RatTensor *h, RatTensor *c, RatTensor *w_ih, RatTensor *w_hh, RatTensor *b_ih,
                   RatTensor *b_hh, RatTensor **h_out, RatTensor **c_out);
/* Cosine similarity along @axis as torch 1.13 computes it: <a,b> / sqrt(max(|a|^2, eps^2) * max(|b|^2, eps^2)),
 * the clamp passing the gradient through unchanged (not <a,b> / max(|a||b|, eps) as the docs say). */
RatTensor *rat_cosine_similarity(RatTensor *a, RatTensor *b, int axis, float eps);
/* Cross-entropy of logits [N,K] against i32 targets [N], mean over N. */
RatTensor *rat_cross_entropy(RatTensor *logits, RatTensor *targets);

G_END_DECLS
