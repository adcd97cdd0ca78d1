/*
 * both_libs.c - a program that is a producer and a worker at once, linked
 * against librtq.a and librtq-worker.a together (tests/link/CMakeLists.txt).
 * That it links at all is most of the test; running it checks that each
 * library's entry points work next to the other's. No Redis is needed:
 * the client refuses a bad URL before connecting, and a worker connects
 * only when it runs.
 */
#include <stdio.h>
#include <string.h>

#include "rtq/client.h"
#include "rtq/worker.h"

static int fail(const char *what) {
  fprintf(stderr, "test_link_both_libs: %s\n", what);
  return 1;
}

int main(void) {
  rtq_client_options co;
  memset(&co, 0, sizeof co);
  co.redis_url = "http://not-redis";
  rtq_client *c = NULL;
  if (rtq_client_new(&co, &c) != RTQ_EINVAL || c != NULL)
    return fail("rtq_client_new accepted a URL that is not redis://");
  if (rtq_client_errstr(NULL)[0] == '\0') return fail("rtq_client_new gave no reason");

  rtq_worker_options wo;
  rtq_worker_options_init(&wo);
  rtq_worker *w = NULL;
  char err[256];
  if (rtq_worker_new(&wo, &w, err, sizeof err) != 0) return fail(err);
  int rc = rtq_worker_register_demo_handlers(w);
  rtq_worker_free(w);
  if (rc != 0) return fail("rtq_worker_register_demo_handlers failed");
  printf("librtq.a and librtq-worker.a link and run in one program\n");
  return 0;
}
