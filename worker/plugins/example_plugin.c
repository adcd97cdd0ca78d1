/*
 * example_plugin.c - a handler plugin for rtq-worker --plugin, and the
 * template for writing one. Build it as a shared object that links nothing
 * of rtq: the rtq_* functions it calls resolve against rtq-worker itself.
 *
 *   cc -shared -fPIC -I<rtq>/include -o myplugin.so myplugin.c
 *   rtq-worker --plugin ./myplugin.so
 *
 * Handlers:
 *   plugin.shout {text}   result {"text": TEXT, "attempt": n}
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "rtq/worker.h"

static int shout(rtq_task_ctx *t, void *userdata) {
  (void)userdata;
  const char *text;
  size_t len;
  if (rtq_args_get_str(rtq_task_args(t), "text", &text, &len) != 0)
    return rtq_task_fail(t, "BAD_ARGS", "plugin.shout needs a text argument", NULL);
  char *up = malloc(len + 1);
  if (up == NULL) return RTQ_ENOMEM;
  for (size_t i = 0; i < len; i++) up[i] = (char)toupper((unsigned char)text[i]);
  up[len] = '\0';
  rtq_args *r = rtq_args_new();
  int rc = r ? rtq_args_set_str(r, "text", up) : RTQ_ENOMEM;
  if (rc == 0) rc = rtq_args_set_int(r, "attempt", rtq_task_attempt(t));
  if (rc == 0) rc = rtq_task_set_result(t, r);
  rtq_args_free(r);
  free(up);
  return rc;
}

RTQ_PLUGIN_EXPORT int rtq_plugin_register(rtq_worker *w) {
  return rtq_worker_register(w, "plugin.shout", shout, NULL);
}
