/* ratfw file formats: safetensors (named tensors + JSON metadata; checkpoints, fixtures, CLIP weights) and
 * PNG images. Every reader validates sizes and offsets and reports a corrupt file as a GError naming it. */
#pragma once

#include <ratfw/tensor.h>

G_BEGIN_DECLS

typedef struct _RatSafetensors RatSafetensors;

RatSafetensors *rat_safetensors_open(const char *path, GError **error);
void rat_safetensors_close(RatSafetensors *st);
guint rat_safetensors_count(const RatSafetensors *st);
const char *rat_safetensors_name(const RatSafetensors *st, guint i); /* in file order of data offsets */
gboolean rat_safetensors_has(const RatSafetensors *st, const char *name);
/* Shape and dtype string ("F32", "F16", "BF16", "I64", ...) of a stored tensor; FALSE if absent. */
gboolean rat_safetensors_info(const RatSafetensors *st, const char *name, RatShape *shape, const char **dtype);
/* Loads a tensor as f32 (F32/F16/BF16/F64) or i32 (I32/I64/I16/I8/U8/BOOL), scope-owned, row-major. */
RatTensor *rat_safetensors_get(const RatSafetensors *st, const char *name, GError **error);
/* The "__metadata__" string map (may be empty, never NULL). */
GHashTable *rat_safetensors_metadata(const RatSafetensors *st);
const char *rat_safetensors_meta(const RatSafetensors *st, const char *key);

/* Writes tensors (any strides; f32 as F32, i32 as I32) atomically: temporary file, fsync, rename.
 * @metadata: string->string, may be NULL. */
gboolean rat_safetensors_save(const char *path, guint n, const char *const *names, RatTensor *const *tensors,
                              GHashTable *metadata, GError **error);

/* PNG: read to [C,H,W] f32 in [0,1] (C = 1 gray, 2 gray+alpha, 3 RGB or 4 RGBA as stored; 16-bit scaled by
 * 1/65535; palette expanded to RGB, or RGBA with a tRNS chunk; interlaced read); write 8-bit [C,H,W]
 * (C = 1, 2, 3 or 4, any strides) from values in [0,1] (clamped, rounded, NaN as 0). Atomic write. */
RatTensor *rat_png_read(const char *path, GError **error);
gboolean rat_png_write(const char *path, RatTensor *chw, GError **error);

/* Atomic file replacement helper: writes @len bytes to @path via a temporary file, fsync and rename. */
gboolean rat_file_write_atomic(const char *path, const void *data, gsize len, GError **error);

G_END_DECLS
