/* Shared by the ablate writers (results.c, report.c): the table's cell texts. */
#pragma once

#include <ratfw/ablate.h>

/* "0.412 ± 0.015" (mean to the decimals that show the std to two significant digits), "0.412" from one seed,
 * "n/a" without a value; @pm separates mean and std. */
char *rat_ablate_fmt_cell(const RatAblateSummary *s, const char *pm);
/* The comparison of variant @v with the baseline: "+0.089, p = 0.004: larger than noise", "baseline", "n/a ...". */
char *rat_ablate_fmt_compare(const RatAblateResults *r, guint v, const RatAblateSummary *s);
/* Evaluated seeds of variant @v: "3", or "2 of 3 (1 failed)". */
char *rat_ablate_seeds_cell(const RatAblateResults *r, guint v);
