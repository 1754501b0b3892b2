/* Reverse-mode autograd: recording nodes, saved tensors, and the engine that walks the graph in reverse
 * creation order. Gradients of gradients work because backward functions are written in recorded ops and
 * the engine keeps grad mode on while it runs with create_graph. */
#include "config.h"

#include "ratfw-private.h"
#include <ratfw/error.h>

/* ---- grad mode -------------------------------------------------------------------------------------------- */

static _Thread_local gboolean grad_disabled;

gboolean rat_grad_enabled(void) { return !grad_disabled; }

gboolean rat_set_grad_enabled(gboolean enabled) {
  gboolean prev = !grad_disabled;
  grad_disabled = !enabled;
  return prev;
}

/* ---- nodes ----------------------------------------------------------------------------------------------- */

static guint64 seq_counter;

static const RatOpDef accumulate_op = {.name = "accumulate_grad", .n_inputs = 0, .backward = NULL};

static RatNode *node_alloc(const RatOpDef *op, guint n_in, guint n_out) {
  RatNode *n = g_new0(RatNode, 1);
  n->seq = __atomic_add_fetch(&seq_counter, 1, __ATOMIC_RELAXED);
  n->op = op;
  n->n_in = n_in;
  n->next = g_new0(RatEdge, MAX(n_in, 1));
  n->needs = g_new0(gboolean, MAX(n_in, 1));
  n->n_out = n_out;
  n->out_shape = g_new0(RatShape, MAX(n_out, 1));
  n->in_shape = g_new0(RatShape, MAX(n_in, 1));
  return n;
}

RatNode *rat_node_ref(RatNode *node) {
  g_atomic_int_inc(&node->ref);
  return node;
}

/* Freeing is iterative: a long chain of nodes would otherwise recurse once per node. */
static _Thread_local GPtrArray *free_pending;
static _Thread_local gboolean freeing;

static void node_free(RatNode *n) {
  for (guint i = 0; i < n->n_in; i++)
    if (n->next[i].node) rat_node_unref(n->next[i].node);
  for (guint i = 0; i < n->n_saved; i++) rat_tensor_unref(n->saved[i]);
  if (n->ctx && n->op->ctx_free) n->op->ctx_free(n->ctx);
  g_free(n->saved);
  g_free(n->saved_out);
  g_free(n->next);
  g_free(n->needs);
  g_free(n->out_shape);
  g_free(n->in_shape);
  g_free(n);
}

void rat_node_unref(RatNode *node) {
  if (!node || !g_atomic_int_dec_and_test(&node->ref)) return;
  if (!free_pending) free_pending = g_ptr_array_new();
  g_ptr_array_add(free_pending, node);
  if (freeing) return;
  freeing = TRUE;
  while (free_pending->len) {
    RatNode *n = g_ptr_array_steal_index(free_pending, free_pending->len - 1);
    node_free(n);
  }
  freeing = FALSE;
}

/* A leaf that requires grad gets its accumulate node when first used in a graph (or differentiated itself). */
static void ensure_accumulate(RatTensor *x) {
  if (x && !x->grad_fn && x->requires_grad && !x->grad_acc) {
    RatNode *acc = node_alloc(&accumulate_op, 0, 1);
    acc->ref = 1; /* owned by the leaf */
    acc->leaf = x;
    acc->out_shape[0] = rat_tensor_shape(x);
    x->grad_acc = acc;
  }
}

RatNode *rat_record(const RatOpDef *op, RatTensor **outputs, guint n_out, RatTensor *const *inputs, guint n_in) {
  if (grad_disabled) return NULL;
  gboolean any = FALSE;
  for (guint i = 0; i < n_in; i++)
    if (rat_tensor_needs_grad(inputs[i])) any = TRUE;
  if (!any) return NULL;

  /* Accumulate nodes first, so they are older than the node that consumes them. */
  for (guint i = 0; i < n_in; i++) ensure_accumulate(inputs[i]);
  RatNode *n = node_alloc(op, n_in, n_out);
  for (guint i = 0; i < n_in; i++) {
    RatTensor *x = inputs[i];
    if (x) n->in_shape[i] = rat_tensor_shape(x);
    if (!rat_tensor_needs_grad(x)) continue;
    if (x->grad_fn) {
      n->next[i].node = rat_node_ref(x->grad_fn);
      n->next[i].output_nr = x->output_nr;
    } else {
      n->next[i].node = rat_node_ref(x->grad_acc);
      n->next[i].output_nr = 0;
    }
  }
  for (guint k = 0; k < n_out; k++) {
    RatTensor *y = outputs[k];
    g_assert(y->grad_fn == NULL);
    n->out_shape[k] = rat_tensor_shape(y);
    y->grad_fn = rat_node_ref(n);
    y->output_nr = k;
  }
  return n;
}

guint rat_node_save(RatNode *n, RatTensor *t) {
  guint idx = n->n_saved++;
  n->saved = g_renew(RatTensor *, n->saved, n->n_saved);
  n->saved_out = g_renew(gint, n->saved_out, n->n_saved);
  if (t && t->grad_fn == n) {
    /* Saving our own output: keep the data without the back-pointer (it would be a reference cycle). */
    n->saved[idx] = rat_tensor_new_view(t->storage, t->dtype, t->ndim, t->shape, t->stride, t->offset);
    n->saved_out[idx] = (gint)t->output_nr;
  } else {
    n->saved[idx] = t ? rat_tensor_ref(t) : NULL;
    n->saved_out[idx] = -1;
  }
  return idx;
}

RatTensor *rat_node_saved(RatNode *n, guint index) {
  g_assert(index < n->n_saved);
  RatTensor *t = n->saved[index];
  if (t && n->saved_out[index] >= 0 && !grad_disabled) {
    RatTensor *v = rat_tensor_new_view(t->storage, t->dtype, t->ndim, t->shape, t->stride, t->offset);
    v->grad_fn = rat_node_ref(n);
    v->output_nr = (guint)n->saved_out[index];
    return rat_scope_adopt(v);
  }
  return t;
}

gboolean rat_node_needs_grad(const RatNode *n, guint input) { return input < n->n_in && n->needs[input]; }

/* ---- op registry ----------------------------------------------------------------------------------------- */

static GHashTable *op_table;
static GMutex op_lock;

void rat_op_register(const RatOpDef *op) {
  g_mutex_lock(&op_lock);
  if (!op_table) op_table = g_hash_table_new(g_str_hash, g_str_equal);
  g_hash_table_insert(op_table, (gpointer)op->name, (gpointer)op);
  g_mutex_unlock(&op_lock);
}

const RatOpDef *rat_op_lookup(const char *name) {
  g_mutex_lock(&op_lock);
  const RatOpDef *op = op_table ? g_hash_table_lookup(op_table, name) : NULL;
  g_mutex_unlock(&op_lock);
  return op;
}

/* ---- the engine ------------------------------------------------------------------------------------------ */

typedef struct {
  RatNode *node;
  RatTensor **buf; /* n_out owned references */
  gboolean needed; /* leads to a target (or accumulate mode) */
  gboolean execute;
} Info;

static int cmp_seq_desc(gconstpointer a, gconstpointer b) {
  const Info *x = *(Info *const *)a, *y = *(Info *const *)b;
  return x->node->seq < y->node->seq ? 1 : (x->node->seq > y->node->seq ? -1 : 0);
}

static void info_free(gpointer p) {
  Info *in = p;
  for (guint k = 0; k < in->node->n_out; k++)
    if (in->buf[k]) rat_tensor_unref(in->buf[k]);
  g_free(in->buf);
  g_free(in);
}

/* buf += g (owned reference handling; the sum is recorded when grad mode is on). */
static void add_into(RatTensor **slot, RatTensor *g) {
  if (!*slot) {
    *slot = rat_tensor_ref(g);
    return;
  }
  RatScope s = rat_scope_push();
  RatTensor *sum = rat_add(*slot, g);
  rat_tensor_ref(sum);
  rat_scope_pop(s);
  rat_tensor_unref(*slot);
  *slot = sum;
}

static void accumulate_leaf(RatTensor *leaf, RatTensor *g, gboolean create_graph) {
  RatScope s = rat_scope_push();
  if (!leaf->grad) {
    RatTensor *c = create_graph ? g : rat_copy(g);
    leaf->grad = rat_tensor_ref(c);
  } else if (create_graph || leaf->grad->grad_fn) {
    RatTensor *sum = rat_add(leaf->grad, g);
    rat_tensor_unref(leaf->grad);
    leaf->grad = rat_tensor_ref(sum);
  } else {
    rat_tensor_add_(leaf->grad, g, 1.0f);
  }
  rat_scope_pop(s);
}

static gboolean run_engine(RatTensor *const *roots, RatTensor *const *root_grads, guint n_roots,
                           RatTensor *const *targets, guint n_targets, RatTensor **results, gboolean accumulate,
                           gboolean create_graph, GError **error) {
  GHashTable *info = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, info_free);
  GPtrArray *order = g_ptr_array_new();
  GPtrArray *stack = g_ptr_array_new();
  gboolean ok = TRUE;

  for (guint r = 0; r < n_roots; r++) {
    RatTensor *t = roots[r];
    ensure_accumulate(t); /* d(leaf)/d(leaf): ops that return their input unchanged (reshape to the same shape) */
    RatNode *n = t->grad_fn ? t->grad_fn : t->grad_acc;
    if (!rat_tensor_needs_grad(t)) {
      g_set_error(error, RAT_ERROR, RAT_ERROR_AUTOGRAD,
                  "output %u of the differentiation does not require a gradient (it was computed without any "
                  "input that requires one, or under no-grad mode)",
                  r);
      ok = FALSE;
      goto out;
    }
    if (n) g_ptr_array_add(stack, n);
  }
  /* Discover the graph. */
  while (stack->len) {
    RatNode *n = g_ptr_array_steal_index(stack, stack->len - 1);
    if (g_hash_table_contains(info, n)) continue;
    Info *in = g_new0(Info, 1);
    in->node = n;
    in->buf = g_new0(RatTensor *, MAX(n->n_out, 1));
    g_hash_table_insert(info, n, in);
    g_ptr_array_add(order, in);
    for (guint i = 0; i < n->n_in; i++)
      if (n->next[i].node && !g_hash_table_contains(info, n->next[i].node)) g_ptr_array_add(stack, n->next[i].node);
  }
  g_ptr_array_sort(order, cmp_seq_desc);

  /* Which nodes lead to what we want (children have smaller seq: walk oldest first). */
  for (gint j = (gint)order->len - 1; j >= 0; j--) {
    Info *in = order->pdata[j];
    RatNode *n = in->node;
    gboolean child_needed = FALSE;
    for (guint i = 0; i < n->n_in; i++) {
      Info *c = n->next[i].node ? g_hash_table_lookup(info, n->next[i].node) : NULL;
      n->needs[i] = c && c->needed;
      if (n->needs[i]) child_needed = TRUE;
    }
    gboolean is_target = FALSE;
    if (accumulate) {
      is_target = n->op == &accumulate_op && n->leaf && n->leaf->requires_grad;
    } else {
      for (guint k = 0; k < n_targets; k++) {
        RatTensor *x = targets[k];
        if ((x->grad_fn && x->grad_fn == n) || (!x->grad_fn && x->grad_acc == n)) is_target = TRUE;
      }
    }
    in->needed = is_target || child_needed;
    in->execute = child_needed && n->op->backward;
  }

  /* Seed. */
  for (guint r = 0; r < n_roots; r++) {
    RatTensor *t = roots[r];
    RatNode *n = t->grad_fn ? t->grad_fn : t->grad_acc;
    if (!n) continue;
    RatScope s = rat_scope_push();
    RatTensor *g = root_grads && root_grads[r] ? root_grads[r] : NULL;
    if (!g) {
      if (rat_tensor_numel(t) != 1) {
        rat_scope_pop(s);
        g_set_error(error, RAT_ERROR, RAT_ERROR_AUTOGRAD,
                    "gradient can only be implied for a 1-element output; pass a grad_output for this tensor");
        ok = FALSE;
        goto out;
      }
      g = rat_full_like(t, 1.0f);
    }
    Info *in = g_hash_table_lookup(info, n);
    add_into(&in->buf[t->grad_fn ? t->output_nr : 0], g);
    rat_scope_pop(s);
  }

  for (guint j = 0; j < order->len; j++) {
    Info *in = order->pdata[j];
    RatNode *n = in->node;
    if (!in->needed) continue;
    gboolean any = FALSE;
    for (guint k = 0; k < n->n_out; k++)
      if (in->buf[k]) any = TRUE;
    if (!any) continue;

    if (!accumulate) {
      for (guint k = 0; k < n_targets; k++) {
        RatTensor *x = targets[k];
        RatTensor *g = NULL;
        if (x->grad_fn == n)
          g = in->buf[x->output_nr];
        else if (!x->grad_fn && x->grad_acc == n)
          g = in->buf[0];
        if (g && !results[k]) results[k] = rat_tensor_ref(g);
        else if (g && results[k]) add_into(&results[k], g); /* same tensor listed twice */
      }
    } else if (n->op == &accumulate_op && n->leaf && n->leaf->requires_grad) {
      accumulate_leaf(n->leaf, in->buf[0], create_graph);
    }

    if (in->execute) {
      RatScope s = rat_scope_push();
      RatTensor **gy = g_newa(RatTensor *, MAX(n->n_out, 1));
      RatTensor **gx = g_newa(RatTensor *, MAX(n->n_in, 1));
      for (guint k = 0; k < n->n_out; k++) gy[k] = in->buf[k] ? in->buf[k] : rat_zeros(n->out_shape[k]);
      for (guint i = 0; i < n->n_in; i++) gx[i] = NULL;
      n->op->backward(n, gy, gx);
      for (guint i = 0; i < n->n_in; i++) {
        if (!gx[i] || !n->needs[i]) continue;
        RatNode *c = n->next[i].node;
        RatShape want = c->out_shape[n->next[i].output_nr];
        if (!rat_shape_equal(want, rat_tensor_shape(gx[i]))) {
          char *a = rat_shape_to_string(want), *b = rat_shape_to_string(rat_tensor_shape(gx[i]));
          g_error("ratfw: backward of op '%s' returned a gradient of shape %s for input %u of shape %s",
                  n->op->name, b, i, a);
        }
        Info *ci = g_hash_table_lookup(info, c);
        add_into(&ci->buf[n->next[i].output_nr], gx[i]);
      }
      rat_scope_pop(s);
    }
    for (guint k = 0; k < n->n_out; k++) {
      if (in->buf[k]) rat_tensor_unref(in->buf[k]);
      in->buf[k] = NULL;
    }
  }

out:
  g_ptr_array_free(stack, TRUE);
  g_ptr_array_free(order, TRUE);
  g_hash_table_destroy(info);
  return ok;
}

gboolean rat_backward(RatTensor *loss, RatTensor *grad_output, gboolean create_graph, GError **error) {
  gboolean prev = rat_set_grad_enabled(create_graph);
  RatTensor *gos[1] = {grad_output};
  gboolean ok = run_engine(&loss, gos, 1, NULL, 0, NULL, TRUE, create_graph, error);
  rat_set_grad_enabled(prev);
  return ok;
}

gboolean rat_grad(RatTensor *const *outputs, RatTensor *const *grad_outputs, guint n_out, RatTensor *const *inputs,
                  guint n_in, RatTensor **grads, gboolean create_graph, GError **error) {
  gboolean prev = rat_set_grad_enabled(create_graph);
  RatTensor **res = g_new0(RatTensor *, MAX(n_in, 1));
  gboolean ok = run_engine(outputs, grad_outputs, n_out, inputs, n_in, res, FALSE, create_graph, error);
  rat_set_grad_enabled(prev);
  for (guint k = 0; k < n_in; k++) {
    if (!ok) {
      if (res[k]) rat_tensor_unref(res[k]);
      grads[k] = NULL;
      continue;
    }
    grads[k] = res[k] ? rat_scope_adopt(res[k]) : rat_zeros_like(inputs[k]);
  }
  g_free(res);
  return ok;
}
