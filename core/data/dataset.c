/* Calls through the dataset kind interface (dataset.h); the pipeline itself is core/data/loader.c. */
#include <ratfw/dataset.h>
#include <ratfw/error.h>

static const RatDatasetIface *iface(RatModule *ds) {
  rat_check(ds && ds->type->kind == RAT_KIND_DATASET, "%s: not a dataset", ds ? ds->path : "(null)");
  return RAT_DATASET_IFACE(ds);
}

guint rat_dataset_count(RatModule *ds, RatSplit split) { return iface(ds)->count(ds, split); }

guint rat_dataset_n_captions(RatModule *ds, RatSplit split, guint i) { return iface(ds)->n_captions(ds, split, i); }

char *rat_dataset_caption(RatModule *ds, RatSplit split, guint i, guint k) {
  return iface(ds)->caption(ds, split, i, k);
}

RatImage *rat_dataset_image(RatModule *ds, RatSplit split, guint i, GError **error) {
  return iface(ds)->image(ds, split, i, error);
}

char *rat_dataset_item_name(RatModule *ds, RatSplit split, guint i) {
  const RatDatasetIface *f = iface(ds);
  return f->item_name ? f->item_name(ds, split, i) : g_strdup_printf("%u", i);
}

RatModule *rat_dataset_build(RatRegistry *reg, const RatModuleSpec *spec, GError **error) {
  RatBuildContext ctx = {0};
  return rat_module_build(reg, spec, "data", RAT_KIND_DATASET, &ctx, error);
}
