/* ratfw datasets: the dataset kind (plugins in datasets/: cub, oxford, faces, folder, emoji, fashion_mnist,
 * shapes) and the input pipeline every task reads through (RatLoader).
 *
 * A dataset module (kind RAT_KIND_DATASET, declared in an experiment's `data:` section) opens its files in
 * build() and answers the questions of RatDatasetIface: how many items a split has, an item's captions, and its
 * image as decoded pixels (with the dataset's own fixed preprocessing, e.g. CUB's bounding-box crop, §8.1).
 * The loader does everything else: epoch order, one caption drawn per image per epoch, the augmentation
 * (reference §7.3, core/data/transform.c), tokenisation, and background prefetching. Every batch is a pure
 * function of (seed, batch number), so a resumed run sees exactly the batches an uninterrupted one would. */
#pragma once

#include <ratfw/data.h>
#include <ratfw/module.h>
#include <ratfw/text.h>

G_BEGIN_DECLS

/* ---- the dataset kind ------------------------------------------------------------------------------------- */

typedef struct {
  /* Items in @split (RAT_SPLIT_TRAIN or RAT_SPLIT_TEST). Unbounded sets (shapes) report their epoch length. */
  guint (*count)(RatModule *m, RatSplit split);
  /* Captions of item @i (>= 1). */
  guint (*n_captions)(RatModule *m, RatSplit split, guint i);
  /* Caption @k of item @i (g_free). */
  char *(*caption)(RatModule *m, RatSplit split, guint i, guint k);
  /* Item @i's image, decoded, after the dataset's fixed preprocessing (not the random augmentation). NULL with
   * @error (naming the file) when it cannot be read. MUST be safe to call from several threads at once. */
  RatImage *(*image)(RatModule *m, RatSplit split, guint i, GError **error);
  /* A short stable name of item @i for messages and previews: a relative path or a key (g_free). */
  char *(*item_name)(RatModule *m, RatSplit split, guint i);
  /* Optional (NULL): ground-truth attributes of item @i for metrics, as a kind-specific struct the dataset
   * documents (shapes: RatShapesItem). Returns FALSE when the dataset has none. */
  gboolean (*attributes)(RatModule *m, RatSplit split, guint i, gpointer out);
  /* Optional (NULL): the native image size of the set (64 for emoji, 28 for Fashion-MNIST), 0 when it varies. */
  int (*native_size)(RatModule *m);
  gpointer reserved[6];
} RatDatasetIface;

#define RAT_DATASET_IFACE(m) RAT_MODULE_IFACE(m, RatDatasetIface)

/* Convenience calls through the interface. */
guint rat_dataset_count(RatModule *ds, RatSplit split);
char *rat_dataset_caption(RatModule *ds, RatSplit split, guint i, guint k);
guint rat_dataset_n_captions(RatModule *ds, RatSplit split, guint i);
RatImage *rat_dataset_image(RatModule *ds, RatSplit split, guint i, GError **error);
char *rat_dataset_item_name(RatModule *ds, RatSplit split, guint i);

/* Builds the dataset of an experiment's `data:` section (or of a type name with defaults when @spec is NULL
 * and @type_name is set). The returned module is a root module (path "data"). */
RatModule *rat_dataset_build(RatRegistry *reg, const RatModuleSpec *spec, GError **error);

/* ---- the input pipeline ------------------------------------------------------------------------------------ */

typedef enum {
  RAT_ON_ERROR_FAIL = 0, /* a bad image stops the run: rat_loader_next returns FALSE naming the file */
  RAT_ON_ERROR_SKIP = 1, /* a bad image is counted, logged once, and replaced by the next item of the epoch */
} RatOnError;

typedef struct {
  RatSplit split;
  guint batch_size;
  gboolean shuffle;     /* a new permutation per epoch (Philox stream of (seed, epoch)); FALSE: item order */
  gboolean drop_last;   /* drop the incomplete last batch of an epoch (the reference does) */
  RatTransform transform;
  guint64 seed;
  guint prefetch;       /* batches prepared ahead by a background thread; 0 = synchronous */
  RatTokenizer *tokenizer; /* optional (borrowed): fills RatBatch.tokens [B, context] i32 */
  RatOnError on_error;
  gboolean all_captions;   /* FALSE (default): one caption drawn per image per epoch; TRUE: caption
                            * (epoch + k) mod n_captions, a deterministic walk used for evaluation */
} RatLoaderOptions;

/* Reference defaults for @size: train split, shuffle, drop_last, rat_transform_reference(size), prefetch 2. */
RatLoaderOptions rat_loader_options_default(int size, guint batch_size, guint64 seed);

typedef struct {
  guint n;            /* samples in this batch */
  RatTensor *images;  /* [n,3,S,S] f32, normalised as the transform says; an owned reference (rat_batch_clear) */
  RatTensor *tokens;  /* [n,L] i32, or NULL without a tokenizer; owned */
  char **captions;    /* n strings, owned */
  guint *items;       /* item index of each sample */
  guint *caption_ids; /* which caption of the item */
  gint64 epoch;       /* epoch of this batch */
  guint64 number;     /* batch number since the start (0-based) */
} RatBatch;

typedef struct _RatLoader RatLoader;

/* Fails when the split is empty or holds fewer items than one batch with drop_last. */
RatLoader *rat_loader_new(RatModule *dataset, const RatLoaderOptions *opt, GError **error);
void rat_loader_free(RatLoader *l);
/* The next batch. Never blocks longer than decoding one batch takes. FALSE with @error on a bad image under
 * RAT_ON_ERROR_FAIL (the file named). */
gboolean rat_loader_next(RatLoader *l, RatBatch *batch, GError **error);
void rat_batch_clear(RatBatch *b);
/* Batches per epoch. */
guint64 rat_loader_batches_per_epoch(RatLoader *l);
/* The number of the batch rat_loader_next returns next. */
guint64 rat_loader_position(RatLoader *l);
/* Continue at batch @number (resume): discards prefetched batches. */
void rat_loader_seek(RatLoader *l, guint64 number);
/* Images skipped under RAT_ON_ERROR_SKIP so far. */
guint64 rat_loader_skipped(RatLoader *l);

G_END_DECLS
