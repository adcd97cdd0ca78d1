/*
 * history.c - records the throughput history (rtq_throughput_record)
 * every RECORD_S seconds on a thread of its own, so the overview's chart
 * has a snapshot in every minute while any rtq-web runs.
 */
#include "history.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "log.h"

#define RECORD_S 10

struct web_history {
  rtq_client *c;
  pthread_t th;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool stop;
};

static void *run(void *arg) {
  web_history *h = arg;
  bool warned = false;
  pthread_mutex_lock(&h->mu);
  while (!h->stop) {
    pthread_mutex_unlock(&h->mu);
    int rc = rtq_throughput_record(h->c, NULL);
    if (rc != 0 && !warned)
      rtq_log(RTQ_LOG_WARNING, "cannot record the throughput history", "error", rtq_client_errstr(h->c), NULL);
    warned = rc != 0;
    pthread_mutex_lock(&h->mu);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += RECORD_S;
    while (!h->stop && pthread_cond_timedwait(&h->cv, &h->mu, &ts) == 0) {
    }
  }
  pthread_mutex_unlock(&h->mu);
  return NULL;
}

int web_history_start(rtq_client *c, web_history **out) {
  *out = NULL;
  web_history *h = calloc(1, sizeof *h);
  if (h == NULL) return RTQ_ENOMEM;
  h->c = c;
  pthread_mutex_init(&h->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&h->cv, &ca);
  pthread_condattr_destroy(&ca);
  if (pthread_create(&h->th, NULL, run, h) != 0) {
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    free(h);
    return RTQ_EIO;
  }
  *out = h;
  return 0;
}

void web_history_stop(web_history *h) {
  if (h == NULL) return;
  pthread_mutex_lock(&h->mu);
  h->stop = true;
  pthread_cond_signal(&h->cv);
  pthread_mutex_unlock(&h->mu);
  pthread_join(h->th, NULL);
  pthread_cond_destroy(&h->cv);
  pthread_mutex_destroy(&h->mu);
  free(h);
}
