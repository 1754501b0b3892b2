/* ratfw data layer: image decoding (JPEG, PNG), the reference augmentation (PIL bilinear resize, random crop,
 * flip, Normalize(0.5, 0.5); reference §7.3) and the CUB bounding-box crop (§8.1), a safe reader for pickled
 * string lists, and raw sources: emoji (emoji-datasource-google), Fashion-MNIST (IDX files), procedural shapes.
 * Dataset plugins wrap these; nothing here depends on the plugin system. */
#pragma once

#include <ratfw/nn.h>
#include <ratfw/tensor.h>

G_BEGIN_DECLS

/* Which part of a source: the fixed train/test split, or everything. */
typedef enum {
  RAT_SPLIT_TRAIN = 0,
  RAT_SPLIT_TEST = 1,
  RAT_SPLIT_ALL = 2,
} RatSplit;

/* ---- images (core/data/image.c) ----------------------------------------------------------------------------
 * A RatImage is 8-bit sRGB, interleaved RGB, rows of 3*width bytes, no padding: the pixel values PIL gives
 * for Image.open(path).convert("RGB"). JPEG is decoded by libjpeg-turbo with PIL's settings (ISLOW DCT, fancy
 * upsampling), so pixels are bit-identical to PIL's. Grayscale is expanded to RGB; CMYK/YCCK JPEGs (Adobe
 * inverted or plain) are converted with PIL's rule R = (255-C)(255-K)/255. PNG: palette, low bit depths and
 * tRNS are expanded, 16-bit keeps the high byte (as PIL), no gamma correction. Alpha is composited on white
 * (RAT_IMAGE_ALPHA_WHITE, the default: transparent emoji become black-on-white pictures) or dropped
 * (RAT_IMAGE_ALPHA_DROP, PIL's convert("RGB")). A corrupt or truncated file is a RAT_ERROR_CORRUPT GError
 * naming the file; a missing one RAT_ERROR_IO. */
typedef struct {
  int width, height;
  guint8 *rgb; /* height * width * 3 bytes, owned */
} RatImage;

typedef enum {
  RAT_IMAGE_ALPHA_WHITE = 0,
  RAT_IMAGE_ALPHA_DROP = 1,
} RatImageAlpha;

RatImage *rat_image_new(int width, int height); /* zero-filled */
void rat_image_free(RatImage *img);
RatImage *rat_image_copy(const RatImage *img);
/* @name only labels errors (a path or a key). Detects JPEG and PNG by their signatures. */
RatImage *rat_image_decode(const guint8 *data, gsize len, const char *name, RatImageAlpha alpha, GError **error);
RatImage *rat_image_read(const char *path, RatImageAlpha alpha, GError **error);
/* Writes a baseline JPEG (4:2:0, @quality 1..100) atomically; used by tests and benchmarks. */
gboolean rat_image_write_jpeg(const char *path, const RatImage *img, int quality, GError **error);
/* [3,H,W] f32, value/255 (torchvision ToTensor), scope-owned. */
RatTensor *rat_image_to_tensor(const RatImage *img);
/* Inverse of rat_image_to_tensor for [3,H,W] (or [1,H,W], replicated) values in [0,1]: clamp, round. */
RatImage *rat_image_from_tensor(RatTensor *chw);
/* rat_image_read with alpha on white, then rat_image_to_tensor: [3,H,W] f32 in [0,1] RGB, scope-owned. */
RatTensor *rat_image_load(const char *path, GError **error);

/* ---- geometry and resampling (core/data/transform.c) ------------------------------------------------------ */
/* PIL's img.crop((left, top, right, bottom)) for a box inside the image. */
RatImage *rat_image_crop(const RatImage *img, int left, int top, int right, int bottom);
/* PIL Image.resize((w, h), BILINEAR) bit for bit (Pillow 9.4 Resample.c: triangle filter widened by the scale
 * factor when downscaling, i.e. antialiased; 22-bit fixed-point weights; horizontal pass then vertical, each
 * rounded to 8 bits). */
RatImage *rat_image_resize(const RatImage *img, int width, int height);
RatImage *rat_image_hflip(const RatImage *img);
/* torchvision 0.14 Resize(short) output size: the shorter side becomes @short_side, the longer
 * int(short_side * long / short). */
void rat_resize_shorter_size(int width, int height, int short_side, int *out_w, int *out_h);
/* CUB bounding-box crop (reference §8.1, RATLIP datasets.py get_imgs): bbox (x, y, w, h) as in
 * bounding_boxes.txt, cast to int; r = int(0.75 max(w, h)); cx = int((2x + w) / 2), cy = int((2y + h) / 2);
 * box = [max(0, cx - r), max(0, cy - r), min(W, cx + r), min(H, cy + r)] (left, top, right, bottom). */
void rat_cub_bbox_box(int width, int height, double x, double y, double w, double h, int box[4]);

/* The reference augmentation (§7.3): Resize(resize) of the shorter side, RandomCrop(size), RandomHorizontal-
 * Flip(0.5), ToTensor, Normalize(0.5, 0.5). RAT_RESIZE_PLAIN instead resizes straight to size x size (no crop;
 * the flip still applies when enabled), for sources whose images are already square and framed. */
typedef enum {
  RAT_RESIZE_SHORTER_CROP = 0,
  RAT_RESIZE_PLAIN = 1,
} RatResizeMode;

typedef struct {
  RatResizeMode mode;
  int size;             /* output side (256) */
  int resize;           /* shorter side before cropping; 0: int(size * 76 / 64) (304 for 256) */
  gboolean random_crop; /* FALSE: centre crop (torchvision CenterCrop rounding) */
  gboolean random_flip; /* horizontal flip with probability 0.5 */
  gboolean normalize;   /* map [0,1] to [-1,1] ((x - 0.5) / 0.5 in f32, as torchvision) */
} RatTransform;

/* The reference settings for @size: shorter-side resize to size*76/64, random crop, random flip, normalize. */
RatTransform rat_transform_reference(int size);

/* Drawn geometry of one transform application. */
typedef struct {
  int resize_w, resize_h; /* size after the resize */
  int crop_x, crop_y;     /* top-left of the size x size crop in the resized image */
  gboolean flip;
} RatTransformParams;

/* Draws the parameters for an image of @width x @height: crop top i = below(resize_h - size + 1), then crop
 * left j = below(resize_w - size + 1) (torchvision's order), then flip = (double < 0.5); each draw uses one
 * RatRng block. Deterministic given the RNG state; NULL @rng means centre crop and no flip. */
void rat_transform_sample(const RatTransform *t, int width, int height, RatRng *rng, RatTransformParams *p);
/* Applies @p to @img writing [3, size, size] f32 (row-major planes) to @out. Only the cropped window of the
 * resize is computed, which gives the same bits as resizing everything and cropping. */
void rat_transform_apply(const RatTransform *t, const RatImage *img, const RatTransformParams *p, float *out);
/* Sample + apply, scope-owned [3, size, size]. */
RatTensor *rat_transform_image(const RatTransform *t, const RatImage *img, RatRng *rng);
/* Decodes @n files and transforms them into a [n, 3, size, size] batch, images in parallel (OpenMP). Item k
 * draws from its own RNG stream: state (seed, (base_index + k) << 8), so a batch does not depend on the thread
 * count or on how items are grouped into batches. @boxes: NULL, or n*4 crop boxes (left, top, right, bottom;
 * right <= left means no crop) applied before the transform (CUB). Scope-owned; NULL and @error on the first
 * failing file (in index order). */
RatTensor *rat_transform_load_batch(const RatTransform *t, const char *const *paths, guint n, const int *boxes,
                                    guint64 seed, guint64 base_index, GError **error);

/* FNV-1a 64-bit hash of a string: the stable split rule of the emoji and folder datasets. */
guint64 rat_fnv1a64(const char *s);

/* ---- Python pickles of string lists (core/data/pickle.c) ------------------------------------------------
 * Reads what pickle.dump(list_or_tuple_of_str_or_bytes) writes at protocols 2, 3 and 4 (and Python 2's str
 * opcodes): PROTO FRAME EMPTY_LIST EMPTY_TUPLE MARK LIST TUPLE TUPLE1-3 APPEND APPENDS BINUNICODE
 * SHORT_BINUNICODE BINUNICODE8 BINSTRING SHORT_BINSTRING BINBYTES SHORT_BINBYTES BINBYTES8 MEMOIZE BINPUT
 * LONG_BINPUT BINGET LONG_BINGET STOP. Every other opcode (GLOBAL, REDUCE, BUILD, INST, OBJ, NEWOBJ,
 * STACK_GLOBAL, numbers, dicts, ...) is a RAT_ERROR_UNSUPPORTED GError naming the opcode and its offset: no
 * object is ever constructed or called. Truncated or malformed input is RAT_ERROR_CORRUPT. Returns the
 * strings (UTF-8 checked for str; bytes must not contain NUL) as a GPtrArray of g_free'd char*
 * (g_ptr_array_unref frees all). */
GPtrArray *rat_pickle_parse_strings(const guint8 *data, gsize len, const char *name, GError **error);
GPtrArray *rat_pickle_load_strings(const char *path, GError **error);

/* ---- emoji (core/data/emoji.c) --------------------------------------------------------------------------
 * The npm package emoji-datasource-google 16.0.0 unpacked by tools/fetch-emoji.sh: emoji.json (name,
 * short_names, category, subcategory, skin_variations) and img/google/64/<image>.png. One item per 64x64
 * image that exists: base emoji and skin-tone variants (3,786 in 16.0.0). Split: an emoji and all its skin
 * tones are in the test split when FNV-1a-64 of the base "unified" code point string, modulo 10, is 0. */
typedef struct {
  const char *unified;            /* "1F385-1F3FD" */
  const char *base;               /* unified of the base emoji: "1F385" */
  const char *image_path;         /* absolute path of the 64x64 PNG */
  const char *name;               /* lower case: "father christmas" */
  const char *category;           /* "People & Body" */
  const char *subcategory;        /* "person-fantasy" */
  const char *skin_tone;          /* NULL, "medium skin tone", "light and dark skin tones" */
  const char *const *short_names; /* NULL-terminated */
  const char *const *captions;    /* NULL-terminated, several phrasings */
  RatSplit split;                 /* TRAIN or TEST */
} RatEmojiItem;

typedef struct _RatEmojiSet RatEmojiSet;

/* $RATFW_EMOJI_DIR/package, or $XDG_CACHE_HOME (default ~/.cache)/ratfw/emoji/package; g_free. */
char *rat_emoji_default_dir(void);
/* @package_dir holds emoji.json and img/google/64/. Missing pieces are RAT_ERROR_NOT_FOUND with a hint to run
 * tools/fetch-emoji.sh; a malformed emoji.json RAT_ERROR_CORRUPT. Items are in emoji.json order, each base
 * emoji followed by its skin variants in ascending key order. */
RatEmojiSet *rat_emoji_open(const char *package_dir, GError **error);
void rat_emoji_free(RatEmojiSet *set);
guint rat_emoji_count(const RatEmojiSet *set, RatSplit split);
const RatEmojiItem *rat_emoji_item(const RatEmojiSet *set, RatSplit split, guint i);

/* ---- IDX files and Fashion-MNIST (core/data/idx.c) ------------------------------------------------------ */
/* An IDX array of unsigned bytes (type 0x08), gzip-compressed or plain (detected by the gzip magic). The magic,
 * the dimensions (1..4, each >= 1) and the exact data size are checked; other element types are
 * RAT_ERROR_UNSUPPORTED, bad files RAT_ERROR_CORRUPT naming the file. */
typedef struct {
  int ndim;
  guint32 dims[4];
  gsize size;   /* product of dims */
  guint8 *data; /* owned */
} RatIdx;
RatIdx *rat_idx_read(const char *path, GError **error);
void rat_idx_free(RatIdx *idx);

#define RAT_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist" /* Debian's dataset-fashion-mnist */
#define RAT_FASHION_MNIST_N_CLASSES 10

typedef struct {
  guint n;
  int rows, cols;
  guint8 *images; /* n * rows * cols, white garment on black, as stored */
  guint8 *labels; /* n, 0..9 */
} RatFashionMnist;

/* Reads train-{images-idx3,labels-idx1}-ubyte[.gz] (or t10k-* for the test split) from @dir (NULL: the Debian
 * directory), checking that the counts agree and labels are < 10. RAT_SPLIT_ALL concatenates train and test. */
RatFashionMnist *rat_fashion_mnist_open(const char *dir, RatSplit split, GError **error);
void rat_fashion_mnist_free(RatFashionMnist *fm);
const char *rat_fashion_mnist_class_name(guint label); /* "T-shirt/top", ..., "Ankle boot" */
guint rat_fashion_mnist_n_phrasings(void);
/* "a photo of a sneaker", "a black and white picture of an ankle boot", ... (g_free). */
char *rat_fashion_mnist_caption(guint label, guint phrasing);
/* Image @i as [C, rows, cols] f32 in [0,1] (C = 1, or 3 with the gray value replicated), scope-owned. */
RatTensor *rat_fashion_mnist_image(const RatFashionMnist *fm, guint i, int channels);

/* ---- procedural shapes (core/data/shapes.c) ------------------------------------------------------------
 * An unbounded, seeded source: item i is a pure function of (seed, i, options). 1..max_objects coloured shapes,
 * each in its own cell of a 3x3 grid (so none overlaps or leaves the canvas), on a plain or two-tone background,
 * rendered antialiased (signed-distance coverage) at any size, with captions that state every attribute. */
typedef enum {
  RAT_SHAPES_CIRCLE = 0,
  RAT_SHAPES_SQUARE,
  RAT_SHAPES_TRIANGLE,
  RAT_SHAPES_STAR,
  RAT_SHAPES_HEXAGON,
  RAT_SHAPES_DIAMOND,
  RAT_SHAPES_PENTAGON,
  RAT_SHAPES_CROSS,
  RAT_SHAPES_N_KINDS
} RatShapesKind;

typedef enum { RAT_SHAPES_SMALL = 0, RAT_SHAPES_MEDIUM, RAT_SHAPES_LARGE, RAT_SHAPES_N_SIZES } RatShapesSize;

typedef enum {
  RAT_SHAPES_BG_PLAIN = 0,
  RAT_SHAPES_BG_LEFT_RIGHT, /* colour 0 on the left half, colour 1 on the right */
  RAT_SHAPES_BG_TOP_BOTTOM, /* colour 0 on top */
  RAT_SHAPES_BG_DIAGONAL,   /* colour 0 above the line from bottom-left to top-right */
  RAT_SHAPES_N_BGS
} RatShapesBackground;

#define RAT_SHAPES_N_COLORS 12
#define RAT_SHAPES_MAX_OBJECTS 4

typedef struct {
  RatShapesKind kind;
  RatShapesSize size;
  int color;     /* palette index */
  int cell;      /* 3x3 grid cell, row * 3 + column: 0 top left .. 8 bottom right */
  double cx, cy; /* centre in [0,1] image units (x right, y down) */
  double radius; /* circumscribed radius in image units */
  double angle;  /* rotation in radians (0 for circles) */
} RatShapesObject;

typedef struct {
  RatShapesBackground background;
  int bg_color[2]; /* [1] unused for a plain background */
  int n_objects;
  RatShapesObject objects[RAT_SHAPES_MAX_OBJECTS];
} RatShapesItem;

typedef struct {
  guint64 seed;
  int max_objects;   /* 1..RAT_SHAPES_MAX_OBJECTS; each item has 1..max_objects */
  gboolean two_tone; /* allow two-tone backgrounds (half of the items) */
  gboolean rotate;   /* random rotation of non-circular shapes */
} RatShapesOptions;

RatShapesOptions rat_shapes_options_default(guint64 seed); /* max_objects 1, two_tone, rotate */
void rat_shapes_sample(const RatShapesOptions *opt, guint64 index, RatShapesItem *item);
/* [3, size, size] f32 in [0,1], scope-owned. */
RatTensor *rat_shapes_render(const RatShapesItem *item, int size);
/* Writes the same picture as 8-bit (rounded). */
RatImage *rat_shapes_render_image(const RatShapesItem *item, int size);
guint rat_shapes_n_phrasings(void);
/* "a small red circle at the top left on a blue background", ... (g_free). */
char *rat_shapes_caption(const RatShapesItem *item, guint phrasing);
const char *rat_shapes_kind_name(RatShapesKind kind);
const char *rat_shapes_size_name(RatShapesSize size);
const char *rat_shapes_color_name(int color);
void rat_shapes_color_rgb(int color, guint8 rgb[3]);
const char *rat_shapes_cell_name(int cell); /* "top left", "top", ..., "center", ..., "bottom right" */

G_END_DECLS
