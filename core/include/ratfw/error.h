/* ratfw error domain: every failure a user can cause or fix is a GError in RAT_ERROR with one of these codes,
 * and a message that says what is wrong and what to do next. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define RAT_ERROR (rat_error_quark())
GQuark rat_error_quark(void);

typedef enum {
  RAT_ERROR_FAILED = 0,
  RAT_ERROR_IO,          /* cannot open, read or write a file */
  RAT_ERROR_CORRUPT,     /* a file is truncated or malformed (safetensors, PNG, checkpoint) */
  RAT_ERROR_SHAPE,       /* shapes do not fit */
  RAT_ERROR_AUTOGRAD,    /* nothing to differentiate, implied gradient on a non-scalar */
  RAT_ERROR_CONFIG,      /* experiment file: syntax, unknown key, wrong type, out of range */
  RAT_ERROR_NOT_FOUND,   /* a named tensor, plugin or module type does not exist */
  RAT_ERROR_NUMERIC,     /* a loss or gradient became NaN or infinite */
  RAT_ERROR_UNSUPPORTED, /* a valid request this build cannot do */
} RatErrorCode;

G_END_DECLS
