/*
 * overview.c - reading the overview: three librtq calls, then the sums the
 * page and /metrics both show.
 */
#include "overview.h"

#include <stdlib.h>
#include <string.h>

int web_overview_read(rtq_client *c, web_overview *o) {
  memset(o, 0, sizeof *o);
  int rc = rtq_get_stats(c, &o->stats);
  if (rc == 0) rc = rtq_get_queue_loads(c, &o->loads);
  if (rc == 0) rc = rtq_list_workers(c, &o->workers);
  if (rc != 0) {
    web_overview_destroy(o);
    return rc;
  }
  for (size_t i = 0; i < o->workers->count; i++) {
    const rtq_alive_worker *w = &o->workers->workers[i];
    if (w->busy > 0) o->busy_slots += (uint64_t)w->busy;
    if (w->slots > 0) o->slots += (uint64_t)w->slots;
  }
  return 0;
}

void web_overview_destroy(web_overview *o) {
  rtq_stats_free(o->stats);
  rtq_queue_loads_free(o->loads);
  rtq_alive_workers_free(o->workers);
  rtq_run_times_free(o->runs);
  memset(o, 0, sizeof *o);
}

static int load_cmp(const void *key, const void *elem) {
  return strcmp((const char *)key, ((const rtq_queue_load *)elem)->name);
}

const rtq_queue_load *web_overview_load(const web_overview *o, const char *queue) {
  if (o->loads == NULL || o->loads->count == 0) return NULL;
  return bsearch(queue, o->loads->queues, o->loads->count, sizeof *o->loads->queues, load_cmp);
}

uint64_t web_counter(const rtq_counter *c, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(c[i].name, name) == 0) return c[i].value;
  return 0;
}
