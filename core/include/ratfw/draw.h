/* Drawing on pictures: text in a built-in 5x7 bitmap font, lines and rectangles, and simple line plots. Used for
 * captions under sample grids, dataset contact sheets and loss curves. Pictures are [3,H,W] f32 tensors in [0,1]
 * (what rat_png_write writes); drawing is clipped to the picture and never records autograd. */
#pragma once

#include <ratfw/tensor.h>

G_BEGIN_DECLS

#define RAT_FONT_WIDTH 5   /* glyph cell, in pixels at scale 1 */
#define RAT_FONT_HEIGHT 7
#define RAT_FONT_ADVANCE 6 /* horizontal step per character at scale 1 */
#define RAT_FONT_LINE 9    /* vertical step per line at scale 1 */

/* Draws @text (UTF-8; printable ASCII as is, any other code point as '?') with its top-left corner at (x, y),
 * each font pixel a @scale x @scale block of colour @rgb. */
void rat_draw_text(RatTensor *img, int x, int y, const char *text, int scale, const float rgb[3]);
/* Width in pixels of @text drawn at @scale (code points * advance). */
int rat_text_width(const char *text, int scale);
/* Splits @text at spaces into lines of at most @max_chars code points (longer words are cut); g_strfreev. */
char **rat_text_wrap(const char *text, int max_chars);
void rat_draw_rect(RatTensor *img, int x, int y, int w, int h, const float rgb[3]); /* filled */
void rat_draw_line(RatTensor *img, double x0, double y0, double x1, double y1, const float rgb[3]);

/* A line plot [3,H,W] in [0,1]: white background, axes with min/max labels, one polyline per series in
 * distinct colours, a legend with the names, a title. Series k has n[k] points (xs[k][i], ys[k][i]); non-finite
 * points are skipped. */
RatTensor *rat_plot_lines(int width, int height, const char *title, guint n_series, const char *const *names,
                          const double *const *xs, const double *const *ys, const guint *n);

G_END_DECLS
