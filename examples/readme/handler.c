/* A handler plugin.
 * Build: cc -o hello.so handler.c $(pkg-config --cflags --libs rtq-worker)
 * Run:   rtq-worker --plugin ./hello.so */
#include <stdio.h>
#include <rtq/worker.h>

static int hello(rtq_task_ctx *t, void *userdata) {
  (void)userdata;
  char name[64], text[80];
  if (rtq_args_get_cstr(rtq_task_args(t), "name", name, sizeof name) != 0)
    return rtq_task_fail(t, "NO_NAME", "args.name (a short string) is required", NULL);
  for (int step = 1; step <= 10; step++) {
    if (rtq_task_sleep_ms(t, 100) != 0) return 0;   /* cancelled or timed out */
    rtq_task_progress(t, step * 10.0, "greeting");
  }
  snprintf(text, sizeof text, "hello, %s", name);
  rtq_args *result = rtq_args_new();
  int rc = rtq_args_set_str(result, "greeting", text);
  if (rc == 0) rc = rtq_task_set_result(t, result);
  rtq_args_free(result);
  return rc;
}

__attribute__((visibility("default"))) int rtq_plugin_register(rtq_worker *w) {
  return rtq_worker_register(w, "hello", hello, NULL);
}
