/* The input pipeline (dataset.h). Batch number n is a pure function of (seed, n):
 *   epoch e = n / batches_per_epoch, k = n mod batches_per_epoch;
 *   the epoch's order is a permutation drawn from Philox key K1 = mix(seed, 1) at offset e << 32;
 *   the sample at position p of the epoch is item perm[p]; its caption is drawn from key K2 = mix(seed, 2) at
 *   offset (e << 32) + item (one caption per image per epoch); its augmentation from key K3 = mix(seed, 3) at
 *   offset (e << 32) + 8p.
 * A background thread prepares batches ahead into plain buffers (the tensor system belongs to the caller's
 * thread); rat_loader_next copies one into tensors and tokenises its captions. */
#include <ratfw/dataset.h>
#include <ratfw/error.h>
#include <ratfw/ops.h>

#include <stdio.h>
#include <string.h>

static guint64 mix(guint64 seed, guint64 purpose) {
  /* splitmix64 of (seed, purpose): independent Philox keys per purpose */
  guint64 z = seed + 0x9E3779B97F4A7C15ull * (purpose + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

typedef struct {
  guint64 number;
  guint n;
  float *pixels; /* n * 3 * S * S */
  char **captions;
  guint *items, *caption_ids;
  gint64 epoch;
  guint skipped;
  GError *error;
} Prepared;

static void prepared_free(Prepared *p) {
  if (!p) return;
  g_free(p->pixels);
  g_strfreev(p->captions);
  g_free(p->items);
  g_free(p->caption_ids);
  if (p->error) g_error_free(p->error);
  g_free(p);
}

struct _RatLoader {
  RatModule *ds;
  RatLoaderOptions opt;
  guint count;
  guint64 bpe; /* batches per epoch */
  guint64 next; /* number of the batch rat_loader_next returns next */
  guint64 skipped;
  /* cached permutation of one epoch (read and written by one thread at a time: the producer, or the caller when
   * synchronous; protected by perm_lock because seek may run while a producer is stopped) */
  gint64 perm_epoch;
  gint64 *perm;
  GMutex perm_lock;
  /* prefetch */
  GThread *thread;
  GMutex lock;
  GCond cond;
  GQueue ready;          /* Prepared*, in number order */
  guint64 produce_next;  /* next number the producer makes */
  gboolean stop;
  gboolean warned;
};

RatLoaderOptions rat_loader_options_default(int size, guint batch_size, guint64 seed) {
  RatLoaderOptions o = {0};
  o.split = RAT_SPLIT_TRAIN;
  o.batch_size = batch_size;
  o.shuffle = TRUE;
  o.drop_last = TRUE;
  o.transform = rat_transform_reference(size);
  o.seed = seed;
  o.prefetch = 2;
  o.on_error = RAT_ON_ERROR_FAIL;
  return o;
}

static const gint64 *epoch_perm(RatLoader *l, gint64 e) {
  if (l->perm_epoch != e) {
    if (l->opt.shuffle) {
      RatRng r;
      rat_rng_set_state(&r, mix(l->opt.seed, 1), (guint64)e << 32);
      rat_rng_permutation(&r, l->count, l->perm);
    } else {
      for (guint i = 0; i < l->count; i++) l->perm[i] = i;
    }
    l->perm_epoch = e;
  }
  return l->perm;
}

/* Prepares batch @number (any thread). */
static Prepared *prepare(RatLoader *l, guint64 number) {
  Prepared *p = g_new0(Prepared, 1);
  p->number = number;
  gint64 e = (gint64)(number / l->bpe);
  guint64 k = number % l->bpe;
  guint64 start = k * l->opt.batch_size;
  guint n = (guint)MIN((guint64)l->opt.batch_size, l->count - start);
  p->n = n;
  p->epoch = e;
  int S = l->opt.transform.size;
  gsize per = (gsize)3 * S * S;
  p->pixels = g_new(float, per * n);
  p->captions = g_new0(char *, n + 1);
  p->items = g_new(guint, n);
  p->caption_ids = g_new(guint, n);
  g_mutex_lock(&l->perm_lock);
  const gint64 *perm = epoch_perm(l, e);
  guint64 pos = start;
  for (guint b = 0; b < n; b++, pos++) {
    /* under on_error skip, a bad item is replaced by the next items of the epoch order (wrapping) */
    RatImage *img = NULL;
    guint item = 0;
    for (guint tries = 0; tries < l->count && !img; tries++) {
      item = (guint)perm[(pos + tries) % l->count];
      GError *err = NULL;
      img = rat_dataset_image(l->ds, l->opt.split, item, &err);
      if (!img) {
        if (l->opt.on_error == RAT_ON_ERROR_FAIL) {
          p->error = err;
          g_mutex_unlock(&l->perm_lock);
          return p;
        }
        p->skipped++;
        g_mutex_lock(&l->lock);
        gboolean first = !l->warned;
        l->warned = TRUE;
        g_mutex_unlock(&l->lock);
        if (first) fprintf(stderr, "ratfw: skipping unreadable images (on_error: skip); first: %s\n", err->message);
        g_error_free(err);
      }
    }
    if (!img) {
      g_set_error(&p->error, RAT_ERROR, RAT_ERROR_CORRUPT, "dataset %s: no readable image in the %s split",
                  l->ds->type->name, l->opt.split == RAT_SPLIT_TEST ? "test" : "train");
      g_mutex_unlock(&l->perm_lock);
      return p;
    }
    RatRng tr;
    rat_rng_set_state(&tr, mix(l->opt.seed, 3), ((guint64)e << 32) + 8 * pos);
    RatTransformParams tp;
    rat_transform_sample(&l->opt.transform, img->width, img->height,
                         l->opt.transform.random_crop || l->opt.transform.random_flip ? &tr : NULL, &tp);
    rat_transform_apply(&l->opt.transform, img, &tp, p->pixels + per * b);
    rat_image_free(img);
    guint nc = rat_dataset_n_captions(l->ds, l->opt.split, item);
    guint c = 0;
    if (nc > 1) {
      if (l->opt.all_captions) {
        c = (guint)(((guint64)e + b) % nc);
      } else {
        RatRng cr;
        rat_rng_set_state(&cr, mix(l->opt.seed, 2), ((guint64)e << 32) + item);
        c = (guint)rat_rng_below(&cr, nc);
      }
    }
    p->items[b] = item;
    p->caption_ids[b] = c;
    p->captions[b] = rat_dataset_caption(l->ds, l->opt.split, item, c);
  }
  g_mutex_unlock(&l->perm_lock);
  return p;
}

static gpointer producer(gpointer data) {
  RatLoader *l = data;
  g_mutex_lock(&l->lock);
  for (;;) {
    while (!l->stop && g_queue_get_length(&l->ready) >= l->opt.prefetch) g_cond_wait(&l->cond, &l->lock);
    if (l->stop) break;
    guint64 number = l->produce_next++;
    g_mutex_unlock(&l->lock);
    Prepared *p = prepare(l, number);
    g_mutex_lock(&l->lock);
    if (l->stop) { /* rat_loader_free or a seek: everything queued is discarded anyway */
      prepared_free(p);
      break;
    }
    g_queue_push_tail(&l->ready, p);
    g_cond_broadcast(&l->cond);
  }
  g_mutex_unlock(&l->lock);
  return NULL;
}

static void stop_thread(RatLoader *l) {
  if (!l->thread) return;
  g_mutex_lock(&l->lock);
  l->stop = TRUE;
  g_cond_broadcast(&l->cond);
  g_mutex_unlock(&l->lock);
  g_thread_join(l->thread);
  l->thread = NULL;
  l->stop = FALSE;
  Prepared *p;
  while ((p = g_queue_pop_head(&l->ready))) prepared_free(p);
}

static void start_thread(RatLoader *l) {
  if (!l->opt.prefetch) return;
  l->produce_next = l->next;
  l->thread = g_thread_new("ratfw-loader", producer, l);
}

RatLoader *rat_loader_new(RatModule *dataset, const RatLoaderOptions *opt, GError **error) {
  rat_check(dataset && dataset->type->kind == RAT_KIND_DATASET, "rat_loader_new: not a dataset module");
  if (opt->batch_size < 1) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "batch size must be at least 1");
    return NULL;
  }
  guint count = rat_dataset_count(dataset, opt->split);
  const char *split = opt->split == RAT_SPLIT_TEST ? "test" : opt->split == RAT_SPLIT_TRAIN ? "train" : "whole";
  if (count == 0 || (opt->drop_last && count < opt->batch_size)) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "dataset %s: the %s split has %u items, fewer than one batch of %u%s",
                dataset->type->name, split, count, opt->batch_size,
                count ? "; lower the batch size" : "; check the dataset's root and split settings");
    return NULL;
  }
  RatLoader *l = g_new0(RatLoader, 1);
  l->ds = dataset;
  l->opt = *opt;
  l->count = count;
  l->bpe = opt->drop_last ? count / opt->batch_size : (count + opt->batch_size - 1) / opt->batch_size;
  l->perm = g_new(gint64, count);
  l->perm_epoch = -1;
  g_mutex_init(&l->perm_lock);
  g_mutex_init(&l->lock);
  g_cond_init(&l->cond);
  g_queue_init(&l->ready);
  start_thread(l);
  return l;
}

void rat_loader_free(RatLoader *l) {
  if (!l) return;
  stop_thread(l);
  g_mutex_clear(&l->perm_lock);
  g_mutex_clear(&l->lock);
  g_cond_clear(&l->cond);
  g_free(l->perm);
  g_free(l);
}

gboolean rat_loader_next(RatLoader *l, RatBatch *b, GError **error) {
  memset(b, 0, sizeof *b);
  Prepared *p = NULL;
  if (l->thread) {
    g_mutex_lock(&l->lock);
    for (;;) {
      Prepared *h = g_queue_peek_head(&l->ready);
      if (h && h->number == l->next) {
        p = g_queue_pop_head(&l->ready);
        break;
      }
      if (h) { /* stale (before a seek) */
        prepared_free(g_queue_pop_head(&l->ready));
        continue;
      }
      g_cond_wait(&l->cond, &l->lock);
    }
    g_cond_broadcast(&l->cond);
    g_mutex_unlock(&l->lock);
  } else {
    p = prepare(l, l->next);
  }
  if (p->error) {
    g_propagate_error(error, p->error);
    p->error = NULL;
    prepared_free(p);
    return FALSE;
  }
  l->next++;
  l->skipped += p->skipped;
  int S = l->opt.transform.size;
  b->n = p->n;
  b->images = rat_tensor_ref(rat_from_data(RAT_SHAPE(p->n, 3, S, S), p->pixels));
  if (l->opt.tokenizer)
    b->tokens = rat_tensor_ref(rat_tokenizer_encode_batch(l->opt.tokenizer, (const char *const *)p->captions, p->n, NULL));
  b->captions = p->captions;
  b->items = p->items;
  b->caption_ids = p->caption_ids;
  b->epoch = p->epoch;
  b->number = p->number;
  p->captions = NULL;
  p->items = p->caption_ids = NULL;
  prepared_free(p);
  return TRUE;
}

void rat_batch_clear(RatBatch *b) {
  if (b->images) rat_tensor_unref(b->images);
  if (b->tokens) rat_tensor_unref(b->tokens);
  g_strfreev(b->captions);
  g_free(b->items);
  g_free(b->caption_ids);
  memset(b, 0, sizeof *b);
}

guint64 rat_loader_batches_per_epoch(RatLoader *l) { return l->bpe; }
guint64 rat_loader_position(RatLoader *l) { return l->next; }
guint64 rat_loader_skipped(RatLoader *l) { return l->skipped; }

void rat_loader_seek(RatLoader *l, guint64 number) {
  stop_thread(l);
  l->next = number;
  start_thread(l);
}
