/* Test helpers: tolerance asserts with the worst element in the message, golden fixtures written by
 * the scripts in tools/reference, and finite-difference gradient checks of first and second order. */
#pragma once

#include <ratfw/ratfw.h>
#include <ratfw/io.h>
#include <json-glib/json-glib.h>

void rat_test_init(int *argc, char ***argv);

/* |got - want| <= atol + rtol * |want| everywhere (NaN fails). Returns the worst excess (<= 0 when ok). */
double rat_check_close(RatTensor *got, RatTensor *want, double atol, double rtol, char **report);
#define rat_assert_close(got, want, atol, rtol, what)                                                       \
  do {                                                                                                      \
    char *rep_ = NULL;                                                                                      \
    if (rat_check_close((got), (want), (atol), (rtol), &rep_) > 0)                                          \
      g_assertion_message(G_LOG_DOMAIN, __FILE__, __LINE__, G_STRFUNC,                                      \
                          g_strdup_printf("%s: %s", (what), rep_));                                         \
    g_free(rep_);                                                                                           \
  } while (0)

/* Deterministic test data (GLib's Mersenne Twister; not the library RNG). */
RatTensor *rat_test_randn(RatShape s, guint32 seed);
RatTensor *rat_test_uniform(RatShape s, float lo, float hi, guint32 seed);
/* Copies @t into a fresh leaf that requires grad. */
RatTensor *rat_test_leaf(RatTensor *t);

/* Fixtures: tests/fixtures/NAME.safetensors with a JSON "cases" array in its metadata. */
typedef struct {
  RatSafetensors *st;
  JsonParser *parser;
  JsonArray *cases;
} RatFixture;
RatFixture *rat_fixture_open(const char *name);
void rat_fixture_close(RatFixture *f);
RatTensor *rat_fixture_get(RatFixture *f, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
gboolean rat_fixture_has(RatFixture *f, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

/* Gradient checks. @fn maps the inputs to one output tensor. Each input that requires grad is checked
 * against central differences of L = sum(out * r), r fixed random; gradgradcheck checks the gradient of
 * sum_i <dL/dx_i, v_i> (computed with create_graph) the same way. At most @max_elems elements per input
 * are probed (spread evenly). */
typedef RatTensor *(*RatTestFn)(RatTensor *const *inputs, gpointer user);
void rat_gradcheck(const char *what, RatTestFn fn, gpointer user, guint n, RatTensor *const *inputs, double eps,
                   double atol, double rtol);
void rat_gradgradcheck(const char *what, RatTestFn fn, gpointer user, guint n, RatTensor *const *inputs,
                       double eps, double atol, double rtol);
extern int rat_test_max_elems;
