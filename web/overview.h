/*
 * overview.h - the figures of the dashboard's overview and of /metrics,
 * read through librtq only: rtq_get_stats, rtq_get_queue_loads and
 * rtq_list_workers. Depends on nothing of rtq-web, so any rtq binary that
 * links librtq can serve the same /metrics.
 */
#ifndef RTQ_WEB_OVERVIEW_H
#define RTQ_WEB_OVERVIEW_H

#include <stddef.h>
#include <stdint.h>

#include "rtq/client.h"

/* The P:stats pseudo-queue that holds the broker's counters. */
#define WEB_BROKER_QUEUE "broker"

/* Storage the caller owns: web_overview_read fills it, destroy frees. */
typedef struct web_overview {
  rtq_stats *stats;
  rtq_queue_loads *loads;
  rtq_alive_workers *workers;
  uint64_t busy_slots;         /* sum over alive workers */
  uint64_t slots;
} web_overview;

/* Reads everything (7 round trips at most). 0, or an RTQ_E* code with the
 * detail in rtq_client_errstr(c); o is then empty. */
int web_overview_read(rtq_client *c, web_overview *o);
void web_overview_destroy(web_overview *o);
/* The load of a queue; NULL when the loads do not name it. */
const rtq_queue_load *web_overview_load(const web_overview *o, const char *queue);
/* Whether a P:stats queue is a real queue, not the broker's counters. */
int web_overview_is_queue(const web_overview *o, const rtq_queue_stats *q);
/* A counter of a queue; 0 when absent. */
uint64_t web_counter(const rtq_queue_stats *q, const char *name);

/* The Prometheus text exposition (version 0.0.4) of o, malloc'd.
 * 0 or RTQ_ENOMEM. */
int web_metrics_text(const web_overview *o, char **text, size_t *len);
/* The exposition when Redis could not be read: rtq_up 0 only. */
int web_metrics_down(char **text, size_t *len);

#endif
