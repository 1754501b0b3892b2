/* Input pipeline throughput: images per second through JPEG decode alone and through decode + the reference
 * augmentation (resize of the shorter side to 304, random 256 crop, random flip, to tensor, normalise; reference
 * §7.3) into [B,3,256,256] batches, on the JPEG files of a directory (bench/bench_data.py --make writes a set).
 * Threads: OMP_NUM_THREADS (rat_transform_load_batch decodes a batch's images in parallel). The PyTorch side,
 * bench/bench_data.py, runs PIL + torchvision on the same files with DataLoader workers = threads.
 * Usage: bench-data DIR [size] [batch] [passes]. Prints one table row per stage; asserts nothing. */
#include "config.h"

#include <ratfw/ratfw.h>
#include <stdio.h>
#include <string.h>

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: bench-data DIR [size 256] [batch 32] [passes 2]\n");
    return 2;
  }
  const char *dir = argv[1];
  int size = argc > 2 ? atoi(argv[2]) : 256, batch = argc > 3 ? atoi(argv[3]) : 32, passes = argc > 4 ? atoi(argv[4]) : 2;
  GDir *d = g_dir_open(dir, 0, NULL);
  if (!d) {
    fprintf(stderr, "bench-data: cannot open %s (make the images with bench/bench_data.py --make %s)\n", dir, dir);
    return 1;
  }
  GPtrArray *paths = g_ptr_array_new_with_free_func(g_free);
  for (const char *n; (n = g_dir_read_name(d));)
    if (g_str_has_suffix(n, ".jpg")) g_ptr_array_add(paths, g_build_filename(dir, n, NULL));
  g_dir_close(d);
  qsort(paths->pdata, paths->len, sizeof(char *), cmp);
  guint n = paths->len - paths->len % (guint)batch;
  if (n == 0) {
    fprintf(stderr, "bench-data: fewer than %d .jpg files in %s\n", batch, dir);
    return 1;
  }
  const char *th = g_getenv("OMP_NUM_THREADS");
  RatTransform t = rat_transform_reference(size);
  /* Warm the page cache and the thread pool. */
  GError *e = NULL;
  RatScope s = rat_scope_push();
  if (!rat_transform_load_batch(&t, (const char *const *)paths->pdata, (guint)batch, NULL, 1, 0, &e)) {
    fprintf(stderr, "bench-data: %s\n", e->message);
    return 1;
  }
  rat_scope_pop(s);
  gint64 t0 = g_get_monotonic_time();
  for (int p = 0; p < passes; p++)
    for (guint i = 0; i < n; i++) {
      RatImage *img = rat_image_read(paths->pdata[i], RAT_IMAGE_ALPHA_DROP, NULL);
      rat_image_free(img);
    }
  double dec = (g_get_monotonic_time() - t0) / 1e6;
  t0 = g_get_monotonic_time();
  for (int p = 0; p < passes; p++)
    for (guint i = 0; i < n; i += (guint)batch) {
      s = rat_scope_push();
      rat_transform_load_batch(&t, (const char *const *)paths->pdata + i, (guint)batch, NULL, 7, i + (guint64)p * n, NULL);
      rat_scope_pop(s);
    }
  double full = (g_get_monotonic_time() - t0) / 1e6;
  RatImage *first = rat_image_read(paths->pdata[0], RAT_IMAGE_ALPHA_DROP, NULL);
  printf("%-6s %-44s %8s %10s\n", "impl", "stage", "threads", "images/s");
  printf("%-6s decode (1 thread)%*s %8d %10.1f\n", "ratfw", 27, "", 1, passes * n / dec);
  printf("%-6s decode + augment + batch%*s %8s %10.1f\n", "ratfw", 20, "", th ? th : "all", passes * n / full);
  fprintf(stderr, "# %u files of %dx%d, output %d px, batch %d\n", n, first->width, first->height, size, batch);
  rat_image_free(first);
  g_ptr_array_unref(paths);
  return 0;
}
