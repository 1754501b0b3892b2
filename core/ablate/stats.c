/* Statistics over seeds for the ablation table: mean, sample standard deviation, and Welch's unequal-variance
 * t-test (two-sided) whose p-value is the regularised incomplete beta function
 *   p = I_{df/(df+t^2)}(df/2, 1/2),  t = (mean_a - mean_b) / sqrt(s_a^2/n_a + s_b^2/n_b),
 *   df = (s_a^2/n_a + s_b^2/n_b)^2 / ((s_a^2/n_a)^2/(n_a-1) + (s_b^2/n_b)^2/(n_b-1))   (Welch-Satterthwaite),
 * as scipy.stats.ttest_ind(equal_var=False); tests/test-ablate-stats.c compares with scipy (tools/reference). */
#include "config.h"

#include <ratfw/ablate.h>

#include <math.h>

double rat_stats_mean(const double *x, guint n) {
  if (n == 0) return NAN;
  double s = 0;
  for (guint i = 0; i < n; i++) s += x[i];
  return s / n;
}

double rat_stats_std(const double *x, guint n) {
  if (n < 2) return NAN;
  double m = rat_stats_mean(x, n), ss = 0;
  for (guint i = 0; i < n; i++) ss += (x[i] - m) * (x[i] - m);
  return sqrt(ss / (n - 1));
}

/* The continued fraction of I_x(a, b) (valid for x < (a+1)/(a+b+2)), evaluated by the modified Lentz method:
 *   I_x(a,b) = x^a (1-x)^b / (a B(a,b)) * 1 / (1 + d_1 / (1 + d_2 / (1 + ...))),
 *   d_{2m+1} = -(a+m)(a+b+m) x / ((a+2m)(a+2m+1)),  d_{2m} = m(b-m) x / ((a+2m-1)(a+2m)). */
static double beta_fraction(double a, double b, double x) {
  const double tiny = 1e-300, eps = 1e-15;
  double f = 1, c = 1, d = 1 - (a + b) * x / (a + 1);
  if (fabs(d) < tiny) d = tiny;
  d = 1 / d;
  f = d;
  for (int m = 1; m <= 10000; m++) {
    for (int odd = 0; odd < 2; odd++) {
      double num = odd ? -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
                       : m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m));
      d = 1 + num * d;
      if (fabs(d) < tiny) d = tiny;
      c = 1 + num / c;
      if (fabs(c) < tiny) c = tiny;
      d = 1 / d;
      double delta = c * d;
      f *= delta;
      if (odd && fabs(delta - 1) < eps) return f;
    }
  }
  return f;
}

double rat_stats_betainc(double a, double b, double x) {
  if (!(a > 0) || !(b > 0) || !(x >= 0) || !(x <= 1)) return NAN;
  if (x == 0 || x == 1) return x;
  double lfront = lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x);
  if (x < (a + 1) / (a + b + 2)) return exp(lfront) * beta_fraction(a, b, x) / a;
  /* the symmetry I_x(a, b) = 1 - I_{1-x}(b, a) keeps the fraction in its fast-converging range */
  return 1 - exp(lfront) * beta_fraction(b, a, 1 - x) / b;
}

gboolean rat_stats_welch(const double *a, guint na, const double *b, guint nb, double *t, double *df, double *p) {
  *t = *df = *p = NAN;
  if (na < 2 || nb < 2) return FALSE;
  double va = rat_stats_std(a, na), vb = rat_stats_std(b, nb);
  va = va * va / na;
  vb = vb * vb / nb;
  double se2 = va + vb;
  if (!(se2 > 0) || !isfinite(se2)) return FALSE;
  *t = (rat_stats_mean(a, na) - rat_stats_mean(b, nb)) / sqrt(se2);
  *df = se2 * se2 / (va * va / (na - 1) + vb * vb / (nb - 1));
  *p = rat_stats_betainc(*df / 2, 0.5, *df / (*df + *t * *t));
  return TRUE;
}
