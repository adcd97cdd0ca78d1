/*
 * test_client_fake_worker2.h - a worker's side of protocol 2 for the
 * client tests: take (common/lua2/take.lua), progress and finish through
 * the calls2 builders, so the tests do not depend on the worker library.
 *
 * Every function returns 0 or an RTQ_E* code and never fails the test
 * itself, so it may run on a helper thread.
 */
#ifndef RTQ_TEST_CLIENT_FAKE_WORKER2_H
#define RTQ_TEST_CLIENT_FAKE_WORKER2_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "argv.h"
#include "calls2.h"
#include "conn.h"
#include "keys2.h"
#include "rtq/args.h"
#include "scripts2.h"

/* A taken task: what finish needs. */
typedef struct fake_job2 {
  char queue[129];
  char id[129];
  char worker[129];
  long long attempt;
} fake_job2;

/* Takes one task of queue for worker wid. RTQ_ENOTFOUND when the queue
 * is empty, RTQ_ESTATE when the id moved was not pending (skipped). */
static inline int fw2_take(rtq_conn *c, const rtq_keys2 *k, const char *queue, const char *wid,
                           fake_job2 *j) {
  memset(j, 0, sizeof *j);
  rtq_argv a;
  rtq_argv_init(&a);
  int rc = rtq__call2_take(&a, k, false, queue, wid, 300000, 1, 1 << 20);
  redisReply *r = NULL;
  if (rc == 0) rc = rtq_script2_run(c, &a, &r);
  rtq_argv_destroy(&a);
  rtq__claim2_entry e[2];
  int n = 0;
  if (rc == 0 && rtq__reply2_claim(r, e, 2, &n) != 0) rc = RTQ_EDECODE;
  if (rc == 0 && n < 1) rc = RTQ_ENOTFOUND;
  if (rc == 0 && e[0].kind != RTQ__CLAIM2_OK) rc = RTQ_ESTATE;
  if (rc == 0) {
    snprintf(j->queue, sizeof j->queue, "%s", queue);
    snprintf(j->id, sizeof j->id, "%.*s", (int)e[0].id_len, e[0].id);
    snprintf(j->worker, sizeof j->worker, "%s", wid);
    j->attempt = e[0].attempt;
  }
  if (r != NULL) freeReplyObject(r);
  return rc;
}

static inline int fw2_progress(rtq_conn *c, const rtq_keys2 *k, const fake_job2 *j, int pct,
                               const char *msg) {
  rtq_argv a;
  rtq_argv_init(&a);
  int rc = rtq__call2_progress(&a, k, false, j->queue, j->id, j->worker, (uint64_t)j->attempt,
                               pct, msg);
  redisReply *r = NULL;
  if (rc == 0) rc = rtq_script2_run(c, &a, &r);
  rtq_argv_destroy(&a);
  if (rc == 0 && (r->type != REDIS_REPLY_INTEGER || r->integer != 1)) rc = RTQ_ESTATE;
  if (r != NULL) freeReplyObject(r);
  return rc;
}

/* Finishes j with t's outcome (t.id and t.attempt are filled in; a
 * progress of 0 leaves the progress) and the history settings of keep.
 * 0 with the outcome's word ("ok", "retry", "stale") in word. */
static inline int fw2_finish_keep(rtq_conn *c, const rtq_keys2 *k, const fake_job2 *j,
                                  rtq__finish2_task t, const rtq__keep2 *keep, char word[16]) {
  t.id = j->id;
  t.attempt = (uint64_t)j->attempt;
  if (t.progress == 0) t.progress = -1;
  rtq_argv a;
  rtq_argv_init(&a);
  int rc = rtq__call2_finish(&a, k, false, j->queue, j->worker, keep, NULL, 0, &t, 1);
  redisReply *r = NULL;
  if (rc == 0) rc = rtq_script2_run(c, &a, &r);
  rtq_argv_destroy(&a);
  rtq__finish2_entry e[1];
  int n = 0;
  if (rc == 0 && (rtq__reply2_finish(r, e, 1, &n) != 0 || n != 1)) rc = RTQ_EDECODE;
  if (rc == 0)
    snprintf(word, 16, "%s", e[0].kind == RTQ__FINISH2_OK      ? "ok"
                             : e[0].kind == RTQ__FINISH2_RETRY ? "retry"
                                                               : "stale");
  if (r != NULL) freeReplyObject(r);
  return rc;
}

/* fw2_finish_keep with history on; RTQ_ESTATE when fenced off (stale). */
static inline int fw2_finish(rtq_conn *c, const rtq_keys2 *k, const fake_job2 *j,
                             rtq__finish2_task t) {
  rtq__keep2 keep = {86400, true, 10000};
  char word[16];
  int rc = fw2_finish_keep(c, k, j, t, &keep, word);
  if (rc == 0 && strcmp(word, "stale") == 0) rc = RTQ_ESTATE;
  return rc;
}

/* Finishes j with status only. */
static inline int fw2_end(rtq_conn *c, const rtq_keys2 *k, const fake_job2 *j, rtq_status s) {
  rtq__finish2_task t;
  memset(&t, 0, sizeof t);
  t.status = s;
  return fw2_finish(c, k, j, t);
}

/* Takes the next task of queue and completes it with result_json (JSON
 * text or NULL). */
static inline int fw2_run_one(rtq_conn *c, const rtq_keys2 *k, const char *queue, const char *wid,
                              const char *result_json) {
  fake_job2 j;
  int rc = fw2_take(c, k, queue, wid, &j);
  char *res = NULL;
  size_t len = 0;
  if (rc == 0 && result_json != NULL && rtq_json_to_msgpack(result_json, &res, &len, NULL, 0) != 0)
    rc = RTQ_EJSON;
  if (rc == 0) {
    rtq__finish2_task t;
    memset(&t, 0, sizeof t);
    t.status = RTQ_STATUS_COMPLETED;
    t.result = res;
    t.result_len = len;
    rc = fw2_finish(c, k, &j, t);
  }
  free(res);
  return rc;
}

/* A heartbeat of worker wid with the usual worker record fields. */
static inline int fw2_heartbeat(rtq_conn *c, const rtq_keys2 *k, const char *wid, const char *host,
                                const char *pid, const char *queues, const char *busy,
                                const char *slots) {
  const rtq__field2 f[] = {{"host", host},   {"pid", pid},     {"queues", queues},
                           {"busy", busy},   {"slots", slots}, {"started_at", "1700000000000"}};
  rtq_argv a;
  rtq_argv_init(&a);
  int rc = rtq__call2_heartbeat(&a, k, false, wid, 30000, f, 6);
  if (rc == 0) rc = rtq_script2_run(c, &a, NULL);
  rtq_argv_destroy(&a);
  return rc;
}

#endif
