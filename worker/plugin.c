/*
 * plugin.c - handler plugins: shared objects loaded with dlopen().
 *
 * A plugin exports
 *
 *     int rtq_plugin_register(rtq_worker *w);
 *
 * which calls rtq_worker_register() for its handlers and returns 0. It
 * links against nothing of rtq: the rtq_task_* and rtq_args_* functions it
 * calls resolve against the rtq-worker binary, which exports them. Plugins
 * are never unloaded: an abandoned handler thread may still be running
 * plugin code when the worker shuts down.
 */
#include <dlfcn.h>

#include "internal.h"

typedef int (*register_fn)(rtq_worker *w);

int rtq_worker_load_plugin(rtq_worker *w, const char *path) {
  if (w == NULL || path == NULL) return RTQ_EINVAL;
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (h == NULL) {
    rtq__set_err(w, "plugin %s: %s", path, dlerror());
    return RTQ_EIO;
  }
  /* POSIX: a data pointer to function pointer conversion through a union. */
  union {
    void *p;
    register_fn f;
  } sym;
  sym.p = dlsym(h, "rtq_plugin_register");
  if (sym.p == NULL) {
    rtq__set_err(w, "plugin %s does not export rtq_plugin_register", path);
    return RTQ_EIO;
  }
  int rc = sym.f(w);
  if (rc != 0) {
    if (w->errstr[0] == '\0') rtq__set_err(w, "plugin %s: rtq_plugin_register returned %d", path, rc);
    return rc < 0 ? rc : RTQ_EINVAL;
  }
  return 0;
}
