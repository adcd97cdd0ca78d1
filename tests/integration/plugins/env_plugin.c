/*
 * env_plugin.c - a handler plugin for test_worker_env: "test.env" reports
 * whether the handler, and a program it starts, can see RTQ_REDIS_URL
 * (which may hold the Redis password) or RTQ_REDIS_URL_FILE (which names
 * a file holding it). Links nothing of rtq.
 */
#include <stdlib.h>
#include <sys/wait.h>

#include <rtq/worker.h>

static int env(rtq_task_ctx *t, void *userdata) {
  (void)userdata;
  /* A program the handler starts gets the handler's environment. */
  int st = system("test -z \"$RTQ_REDIS_URL$RTQ_REDIS_URL_FILE\"");
  rtq_args *r = rtq_args_new();
  int rc = rtq_args_set_bool(r, "handler_sees_url",
                             getenv("RTQ_REDIS_URL") != NULL || getenv("RTQ_REDIS_URL_FILE") != NULL);
  if (rc == 0) rc = rtq_args_set_bool(r, "child_sees_url", !(WIFEXITED(st) && WEXITSTATUS(st) == 0));
  if (rc == 0) rc = rtq_task_set_result(t, r);
  rtq_args_free(r);
  return rc;
}

__attribute__((visibility("default"))) int rtq_plugin_register(rtq_worker *w) {
  return rtq_worker_register(w, "test.env", env, NULL);
}
