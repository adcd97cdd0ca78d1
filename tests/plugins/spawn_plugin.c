/*
 * spawn_plugin.c - a handler plugin for the tests: test.spawn starts a
 * grandchild (`sleep 1000`, in the handler's process group), writes its
 * pid to args.pidfile and returns at once, as a handler that forgets a
 * background job would.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rtq/worker.h"

static int spawn(rtq_task_ctx *t, void *userdata) {
  (void)userdata;
  char path[512];
  if (rtq_args_get_cstr(rtq_task_args(t), "pidfile", path, sizeof path) != 0)
    return rtq_task_fail(t, "BAD_ARGS", "test.spawn needs a pidfile", NULL);
  pid_t pid = fork();
  if (pid < 0) return rtq_task_fail(t, "FORK", "fork failed", NULL);
  if (pid == 0) {
    execlp("sleep", "sleep", "1000", (char *)NULL);
    _exit(127);
  }
  FILE *f = fopen(path, "w");
  if (f == NULL) return rtq_task_fail(t, "PIDFILE", "cannot write the pidfile", NULL);
  fprintf(f, "%ld\n", (long)pid);
  fclose(f);
  return 0;
}

RTQ_PLUGIN_EXPORT int rtq_plugin_register(rtq_worker *w) {
  return rtq_worker_register(w, "test.spawn", spawn, NULL);
}
