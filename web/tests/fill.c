/*
 * fill.c - rtq-web-fill: enqueues N tasks through librtq, for
 * web/tests/figures.sh (the dashboard with a million tasks stored).
 *
 *   rtq-web-fill REDIS_URL N [NAME [QUEUE]]
 *
 * Tasks go in rtq_create_tasks batches of 1000; args are {"i": n}.
 */
#include <stdio.h>
#include <stdlib.h>

#include "rtq/client.h"

#define CHUNK 1000

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: rtq-web-fill REDIS_URL N [NAME [QUEUE]]\n");
    return 2;
  }
  long n = atol(argv[2]);
  const char *name = argc > 3 ? argv[3] : "rtq.noop";
  rtq_task_options o = {.queue = argc > 4 ? argv[4] : NULL};
  rtq_client_options co = {.redis_url = argv[1]};
  rtq_client *c = NULL;
  if (n <= 0 || rtq_client_new(&co, &c) != 0) {
    fprintf(stderr, "rtq-web-fill: %s\n", n <= 0 ? "N must be positive" : rtq_client_errstr(NULL));
    return 2;
  }
  static rtq_task_spec specs[CHUNK];
  static rtq_args *args[CHUNK];
  int rc = 0;
  for (long done = 0; done < n && rc == 0;) {
    size_t k = (size_t)(n - done < CHUNK ? n - done : CHUNK);
    for (size_t i = 0; i < k; i++) {
      args[i] = rtq_args_new();
      rtq_args_set_int(args[i], "i", done + (long)i);
      specs[i] = (rtq_task_spec){.name = name, .args = args[i], .opts = &o};
    }
    rc = rtq_create_tasks(c, specs, k);
    if (rc != 0) fprintf(stderr, "rtq-web-fill: %s\n", rtq_client_errstr(c));
    for (size_t i = 0; i < k; i++) rtq_args_free(args[i]);
    done += (long)k;
  }
  rtq_client_free(c);
  return rc == 0 ? 0 : 1;
}
