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

#define WEB_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Storage the caller owns: web_overview_read fills it, destroy frees. */
typedef struct web_overview {
  rtq_stats *stats;
  rtq_queue_loads *loads;
  rtq_alive_workers *workers;
  uint64_t busy_slots;         /* sum over alive workers */
  uint64_t slots;
  rtq_run_times *runs;         /* /metrics only (web_metrics_scrape); else NULL */
} web_overview;

/* Reads everything (7 round trips at most). 0, or an RTQ_E* code with the
 * detail in rtq_client_errstr(c); o is then empty. */
int web_overview_read(rtq_client *c, web_overview *o);
void web_overview_destroy(web_overview *o);
/* The load of a queue; NULL when the loads do not name it. */
const rtq_queue_load *web_overview_load(const web_overview *o, const char *queue);
/* A counter of a list (a queue's, or the broker's); 0 when absent. */
uint64_t web_counter(const rtq_counter *c, size_t n, const char *name);

/* The Prometheus text exposition (version 0.0.4) of o, malloc'd.
 * 0 or RTQ_ENOMEM. */
int web_metrics_text(const web_overview *o, char **text, size_t *len);
/* The exposition when Redis could not be read: rtq_up 0 only. */
int web_metrics_down(char **text, size_t *len);
/* One scrape: the overview read through c, as text; rtq_up 0 when Redis
 * could not be read. 0 or RTQ_ENOMEM. */
int web_metrics_scrape(rtq_client *c, char **text, size_t *len);

/* A server of GET /metrics alone (metrics_server.c), for binaries other
 * than rtq-web: one thread, scrapes read through c (borrowed; it must
 * outlive the server). Any address may be served: the figures name queues
 * and counts, never task data. 0, or -1 with a reason in why. */
typedef struct web_metrics_server web_metrics_server;
int web_metrics_server_start(rtq_client *c, const char *listen, web_metrics_server **out, char *why,
                             size_t wcap);
/* The URL it serves ("http://ADDR:PORT/metrics"). Borrowed. */
const char *web_metrics_server_url(const web_metrics_server *s);
/* Stops and frees. NULL does nothing. */
void web_metrics_server_stop(web_metrics_server *s);

#endif
