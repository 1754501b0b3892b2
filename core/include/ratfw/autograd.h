/* ratfw reverse-mode autograd: graph nodes, the open op registry, and the engine.
 *
 * An op is a forward C function plus a static RatOpDef whose backward computes input gradients from output
 * gradients USING DIFFERENTIABLE OPS (rat_mul, rat_conv2d_backward_data, ...). When the engine runs with
 * create_graph, grad mode stays on during backward, so those calls are recorded and a second differentiation
 * works (MA-GP). A plugin adds an op by writing the same two pieces; nothing central needs editing.
 *
 *   static void scale_backward(RatNode *n, RatTensor *const *gy, RatTensor **gx) {
 *     if (rat_node_needs_grad(n, 0)) gx[0] = rat_mul_scalar(gy[0], n->f[0]);
 *   }
 *   static const RatOpDef scale_op = {.name = "scale", .n_inputs = 1, .backward = scale_backward};
 *   RatTensor *my_scale(RatTensor *x, float a) {
 *     RatTensor *y = ...kernel...;
 *     RatNode *n = rat_record(&scale_op, &y, 1, &x);
 *     if (n) n->f[0] = a;
 *     return y;
 *   }
 */
#pragma once

#include <ratfw/tensor.h>

G_BEGIN_DECLS

typedef struct _RatOpDef RatOpDef;

/* gy[k]: gradient of output k (never NULL: missing ones are zeros). Set gx[i] for each input i with
 * rat_node_needs_grad(n, i); leave the others NULL. Results may have any strides; shapes must match inputs. */
typedef void (*RatBackwardFunc)(RatNode *node, RatTensor *const *gy, RatTensor **gx);

struct _RatOpDef {
  const char *name;
  int n_inputs; /* -1: variable (concat) */
  RatBackwardFunc backward;
  void (*ctx_free)(gpointer ctx);
};

typedef struct {
  RatNode *node; /* NULL: that input needs no gradient */
  guint output_nr;
} RatEdge;

struct _RatNode {
  gint ref;
  guint64 seq; /* creation order; inputs' nodes always have a smaller seq */
  const RatOpDef *op;
  guint n_in;
  RatEdge *next;      /* n_in edges */
  gboolean *needs;    /* n_in flags, set by the engine before backward runs */
  guint n_out;
  RatShape *out_shape; /* n_out shapes (used to make zero gradients) */
  RatShape *in_shape;  /* n_in shapes of the inputs (for gradients of broadcasting) */

  /* saved tensors */
  guint n_saved;
  RatTensor **saved;
  gint *saved_out; /* -1 for a saved input; k when saved item is output k (stored detached to avoid a cycle) */

  /* small per-op arguments, and an optional owned context */
  double f[8];
  gint64 i[8];
  gpointer ctx;

  RatTensor *leaf; /* accumulate nodes: weak pointer to the leaf */
};

/* ---- grad mode ---------------------------------------------------------------------------------------- */

gboolean rat_grad_enabled(void);
/* Returns the previous mode, to restore with rat_set_grad_enabled(). */
gboolean rat_set_grad_enabled(gboolean enabled);
#define RAT_NO_GRAD_BEGIN { gboolean rat__prev_grad = rat_set_grad_enabled(FALSE);
#define RAT_NO_GRAD_END rat_set_grad_enabled(rat__prev_grad); }

/* ---- recording (used by op implementations) ------------------------------------------------------------- */

/* Creates the node for outputs[0..n_out) computed from inputs[0..n_in), or returns NULL when grad mode is off
 * or no input needs a gradient. Sets each output's grad_fn. Inputs may be NULL (optional bias). */
RatNode *rat_record(const RatOpDef *op, RatTensor **outputs, guint n_out, RatTensor *const *inputs, guint n_in);
/* Saves a tensor for backward (an input, an output of this node, or any other tensor). Returns its index. */
guint rat_node_save(RatNode *node, RatTensor *t);
/* The saved tensor; outputs come back attached to this node when grad mode is on (for double backward). */
RatTensor *rat_node_saved(RatNode *node, guint index);
gboolean rat_node_needs_grad(const RatNode *node, guint input);
RatNode *rat_node_ref(RatNode *node);
void rat_node_unref(RatNode *node);

/* ---- the engine ------------------------------------------------------------------------------------------ */

/* Accumulates d(loss)/d(leaf) into leaf->grad for every leaf with requires_grad reachable from @loss.
 * @grad_output may be NULL for a scalar loss (ones). With @create_graph the gradients themselves are
 * differentiable. */
gboolean rat_backward(RatTensor *loss, RatTensor *grad_output, gboolean create_graph, GError **error);

/* Returns gradients of sum_k <grad_outputs[k], outputs[k]> with respect to @inputs (leaf or not) in
 * @grads[0..n_in) (scope-owned; zeros for an input the outputs do not depend on). Does not touch ->grad. */
gboolean rat_grad(RatTensor *const *outputs, RatTensor *const *grad_outputs, guint n_out,
                  RatTensor *const *inputs, guint n_in, RatTensor **grads, gboolean create_graph,
                  GError **error);

/* ---- op registry (introspection, benchmarks, plugins' own ops) ------------------------------------------ */

void rat_op_register(const RatOpDef *op);
const RatOpDef *rat_op_lookup(const char *name);

G_END_DECLS
