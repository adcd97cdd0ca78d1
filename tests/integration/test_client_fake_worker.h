/*
 * test_client_fake_worker.h - the worker's side of the protocol, for the
 * client and CLI tests: take an envelope (LMOVE), claim.lua, progress.lua,
 * finish.lua and heartbeat.lua, with keys from the key schema. It plays a
 * well-behaved worker so the tests do not depend on the worker library.
 *
 * Every function returns 0 or an RTQ_E* code and never fails the test
 * itself, so it may run on a helper thread (cmocka asserts may not).
 *
 * Under RTQ_PROTOCOL=2 (the clients the tests make speak protocol 2 then)
 * the same calls play a protocol 2 worker (test_client_fake_worker2.h),
 * so a test that drives the client and this worker runs in both suites.
 */
#ifndef RTQ_TEST_CLIENT_FAKE_WORKER_H
#define RTQ_TEST_CLIENT_FAKE_WORKER_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "argv.h"
#include "conn.h"
#include "envelope.h"
#include "keys.h"
#include "rtq/args.h"
#include "scripts.h"
#include "calls.h"
#include "test_client_fake_worker2.h"

/* A claimed task: what finish needs. The envelope bytes are owned. */
typedef struct fake_job {
  char id[129];
  char queue[129]; /* protocol 2 */
  char *env;
  size_t envlen;
  long long attempt;
} fake_job;

/* Whether the tests run under protocol 2, and its keys for k's namespace. */
static inline bool fw_v2(const rtq_keys *k, rtq_keys2 *k2) {
  const char *p = getenv("RTQ_PROTOCOL");
  if (p == NULL || strcmp(p, "2") != 0) return false;
  char ns[80];
  snprintf(ns, sizeof ns, "%s", k->prefix[0] == '{' ? k->prefix + 1 : k->prefix);
  char *brace = strchr(ns, '}');
  if (brace != NULL) *brace = '\0';
  return rtq_keys2_init(k2, ns) == 0;
}

static inline fake_job2 fw_job2(const fake_job *j, const char *wid) {
  fake_job2 j2;
  memset(&j2, 0, sizeof j2);
  snprintf(j2.queue, sizeof j2.queue, "%s", j->queue);
  snprintf(j2.id, sizeof j2.id, "%s", j->id);
  snprintf(j2.worker, sizeof j2.worker, "%s", wid);
  j2.attempt = j->attempt;
  return j2;
}

static inline void fake_job_destroy(fake_job *j) {
  free(j->env);
  memset(j, 0, sizeof *j);
}

/* LMOVE one envelope from queue into the worker's processing list and run
 * claim.lua. RTQ_ENOTFOUND when the queue is empty; RTQ_ESTATE when claim
 * skipped it (not pending). */
static inline int fw_claim(rtq_conn *c, const rtq_keys *k, const char *queue, const char *wid,
                           fake_job *j) {
  memset(j, 0, sizeof *j);
  rtq_keys2 k2;
  if (fw_v2(k, &k2)) {
    fake_job2 j2;
    int rc = fw2_take(c, &k2, queue, wid, &j2);
    if (rc == 0) {
      snprintf(j->id, sizeof j->id, "%s", j2.id);
      snprintf(j->queue, sizeof j->queue, "%s", queue);
      j->attempt = j2.attempt;
    }
    return rc;
  }
  rtq_key q = rtq_keys_queue(k, queue), p = rtq_keys_processing(k, wid);
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "LMOVE");
  rtq__argv_add_key(&a, q);
  rtq__argv_add_key(&a, p);
  rtq_argv_add_str(&a, "RIGHT");
  rtq_argv_add_str(&a, "LEFT");
  redisReply *r = NULL;
  int rc = rtq_conn_command(c, &a, &r);
  rtq_argv_destroy(&a);
  if (rc == 0 && r->type != REDIS_REPLY_STRING) rc = RTQ_ENOTFOUND;
  if (rc == 0) {
    j->env = malloc(r->len);
    memcpy(j->env, r->str, r->len);
    j->envlen = r->len;
  }
  if (r != NULL) freeReplyObject(r);
  if (rc != 0) return rc;
  rtq_envelope e;
  rtq_envelope_init(&e);
  rc = rtq_envelope_decode(j->env, j->envlen, 0, &e, NULL, 0);
  snprintf(j->id, sizeof j->id, "%s", e.id);
  rtq_envelope_destroy(&e);
  if (rc != 0) return rc;

  rtq_argv_init(&a);
  const rtq__claim_task t = {j->id, j->env, j->envlen};
  rc = rtq__call_claim(&a, k, false, wid, 300000, &t, 1);
  if (rc == 0) rc = rtq_script_run(c, &a, &r);
  rtq_argv_destroy(&a);
  if (rc == 0) {
    /* One entry per task: {'ok', attempt, deadline, timeout} here. */
    const redisReply *e = r->type == REDIS_REPLY_ARRAY && r->elements == 1 ? r->element[0] : NULL;
    if (e != NULL && e->type == REDIS_REPLY_ARRAY && e->elements == 4 &&
        strcmp(e->element[0]->str, "ok") == 0)
      j->attempt = e->element[1]->integer;
    else
      rc = RTQ_ESTATE;
  }
  if (r != NULL) freeReplyObject(r);
  return rc;
}

static inline int fw_progress(rtq_conn *c, const rtq_keys *k, const char *wid, const fake_job *j,
                              int pct, const char *msg) {
  rtq_keys2 k2;
  if (fw_v2(k, &k2)) {
    fake_job2 j2 = fw_job2(j, wid);
    return fw2_progress(c, &k2, &j2, pct, msg);
  }
  rtq_argv a;
  rtq_argv_init(&a);
  char p[16];
  snprintf(p, sizeof p, "%d", pct);
  int rc = rtq__call_progress(&a, k, false, j->id, wid, (uint64_t)j->attempt, p, msg);
  if (rc == 0) rc = rtq_script_run(c, &a, NULL);
  rtq_argv_destroy(&a);
  return rc;
}

/* msgpack bytes of a JSON text ("" -> none). *buf malloc'd or NULL. */
static inline int fw_pack(const char *json, char **buf, size_t *len) {
  *buf = NULL;
  *len = 0;
  if (json == NULL || json[0] == '\0') return 0;
  return rtq_json_to_msgpack(json, buf, len, NULL, 0);
}

/* Runs finish.lua: final is "completed", "failed", "cancelled" or
 * "timeout"; result_json / details_json are JSON text or NULL. history
 * "1" or "0". Returns 0 and the script's first reply word in word. */
static inline int fw_finish_ex(rtq_conn *c, const rtq_keys *k, const char *wid, const fake_job *j,
                               const char *final, const char *result_json, const char *code,
                               const char *msg, const char *details_json, const char *tb,
                               const char *history, char word[16]) {
  rtq_status st;
  if (rtq_status_parse(final, &st) != 0) return RTQ_EINVAL;
  char *res, *det;
  size_t reslen, detlen;
  if (fw_pack(result_json, &res, &reslen) != 0 || fw_pack(details_json, &det, &detlen) != 0)
    return RTQ_EJSON;
  rtq_keys2 k2;
  if (fw_v2(k, &k2)) {
    fake_job2 j2 = fw_job2(j, wid);
    rtq__finish2_task t2 = {.status = st, .result = res, .result_len = reslen,
                            .error_code = code, .error_message = msg, .traceback = tb,
                            .error_details = det, .error_details_len = detlen};
    rtq__keep2 keep = {86400, strcmp(history, "1") == 0, 10000};
    char w2[16];
    int rc = fw2_finish_keep(c, &k2, &j2, t2, &keep, w2);
    free(res);
    free(det);
    if (rc == 0 && word != NULL) snprintf(word, 16, "%s", w2);
    return rc;
  }
  rtq_argv a;
  rtq_argv_init(&a);
  rtq__finish_task t = {.id = j->id, .env = j->env, .env_len = j->envlen,
                        .attempt = (uint64_t)j->attempt, .status = st, .result = res,
                        .result_len = reslen};
  rtq__finish_field_str(&t, "error_code", code);
  rtq__finish_field_str(&t, "error_message", msg);
  rtq__finish_field(&t, "error_details", det, detlen);
  rtq__finish_field_str(&t, "error_traceback", tb);
  rtq__finish_field_str(&t, "jitter", "0");
  int rc = rtq__call_finish(&a, k, false, wid, 86400, strcmp(history, "1") == 0, NULL, 0);
  if (rc == 0) rc = rtq__call_finish_task(&a, &t);
  free(res);
  free(det);
  redisReply *r = NULL;
  if (rc == 0) rc = rtq_script_run(c, &a, &r);
  rtq_argv_destroy(&a);
  if (rc == 0 && word != NULL) {
    /* One entry per task. */
    const redisReply *e = r->type == REDIS_REPLY_ARRAY && r->elements == 1 ? r->element[0] : NULL;
    if (e != NULL && e->type == REDIS_REPLY_ARRAY && e->elements > 0 &&
        e->element[0]->type == REDIS_REPLY_STRING)
      snprintf(word, 16, "%s", e->element[0]->str);
    else
      word[0] = '\0';
  }
  if (r != NULL) freeReplyObject(r);
  return rc;
}

static inline int fw_finish(rtq_conn *c, const rtq_keys *k, const char *wid, const fake_job *j,
                            const char *final, const char *result_json) {
  return fw_finish_ex(c, k, wid, j, final, result_json, NULL, NULL, NULL, NULL, "1", NULL);
}

/* Claims the next envelope of queue and completes it with result_json. */
static inline int fw_run_one(rtq_conn *c, const rtq_keys *k, const char *queue, const char *wid,
                             const char *result_json) {
  fake_job j;
  int rc = fw_claim(c, k, queue, wid, &j);
  if (rc == 0) rc = fw_finish(c, k, wid, &j, "completed", result_json);
  fake_job_destroy(&j);
  return rc;
}

/* heartbeat.lua with the usual worker record fields. */
static inline int fw_heartbeat(rtq_conn *c, const rtq_keys *k, const char *wid, const char *host,
                               const char *pid, const char *queues, const char *busy,
                               const char *slots) {
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_keys2 k2;
  if (fw_v2(k, &k2)) {
    const rtq__field2 f2[] = {{"host", host},   {"pid", pid},     {"queues", queues},
                              {"busy", busy},   {"slots", slots}, {"started_at", "1700000000000"}};
    int rc = rtq__call2_heartbeat(&a, &k2, false, wid, 30000, f2, 6);
    if (rc == 0) rc = rtq_script2_run(c, &a, NULL);
    rtq_argv_destroy(&a);
    return rc;
  }
  const rtq__hb_field fields[] = {{"host", host},   {"pid", pid},     {"queues", queues},
                                  {"busy", busy},   {"slots", slots}, {"started_at", "1700000000000"}};
  int rc = rtq__call_heartbeat(&a, k, false, wid, 30000, fields, 6);
  if (rc == 0) rc = rtq_script_run(c, &a, NULL);
  rtq_argv_destroy(&a);
  return rc;
}

#endif
