/*
 * test_worker_util.h - shared helpers of the test_worker_*.c integration
 * tests: spawning real rtq-worker processes against the harness's
 * redis-server, reading task hashes, and waiting on them with deadlines.
 *
 * Every worker is spawned with its output in a log file under the test's
 * temp dir, so a test can assert what the worker logged; the harness kills
 * whatever a failed test leaves running.
 */
#ifndef RTQ_TEST_WORKER_UTIL_H
#define RTQ_TEST_WORKER_UTIL_H

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "keys2.h"
#include "rtq/client.h"

typedef struct tw_worker {
  pid_t pid;
  char id[160];
  char log[256];
} tw_worker;

/*
 * The helpers below name the keys (common/keys2.h) and read the tasks
 * of namespace "rtq". Task fields go by their long names ("status"),
 * mapped to the short ones of the task hash ("s"), and a task is looked
 * for in every queue of {ns}:queues. The per-queue keys (processing list,
 * delayed set, dead letters) are the queue "default"'s.
 */
static inline const rtq_keys2 *tw_k2(void) {
  static rtq_keys2 k;
  if (k.ns_len == 0) rtq_keys2_init(&k, "rtq");
  return &k;
}

static inline rtq_key2 tw_key_worker(const char *wid) { return rtq_keys2_worker(tw_k2(), wid); }
static inline rtq_key2 tw_key_workers(void) { return rtq_keys2_workers(tw_k2()); }
static inline rtq_key2 tw_key_processing(const char *wid) {
  return rtq_keys2_processing(tw_k2(), "default", wid);
}
static inline rtq_key2 tw_key_queue(const char *q) { return rtq_keys2_queue(tw_k2(), q); }
static inline rtq_key2 tw_key_delayed(void) { return rtq_keys2_delayed(tw_k2(), "default"); }
static inline rtq_key2 tw_key_paused(void) { return rtq_keys2_paused(tw_k2()); }

/* A task field's name in the task hash. */
static inline const char *tw_field(const char *f) {
  static const char *const map[][2] = {
      {"status", "s"},       {"name", "n"},           {"created_at", "c"},     {"attempt", "a"},
      {"worker", "w"},       {"started_at", "b"},     {"deadline", "dl"},      {"progress", "p"},
      {"progress_message", "pm"}, {"cancel_requested", "cr"}, {"retry_at", "ry"}, {"handbacks", "hb"},
      {"completed_at", "e"}, {"result", "r"},          {"error_code", "ec"},    {"error_message", "em"},
      {"error_details", "ed"}, {"error_traceback", "et"}, {"timeout_ms", "to"}, {"max_retries", "mr"}};
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
    if (strcmp(map[i][0], f) == 0) return map[i][1];
  return f;
}

/* The key of task id's hash: in the first queue of {ns}:queues that has
 * it ("default" when none does). */
static inline rtq_key2 tw_key_task(rtq_conn *c, const char *id) {
  rtq_key2 qs = rtq_keys2_queues(tw_k2());
  redisReply *r = rtq_test_command(c, "SMEMBERS", qs.s, NULL);
  rtq_key2 k = rtq_keys2_task(tw_k2(), "default", id);
  for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
    rtq_key2 t = rtq_keys2_task(tw_k2(), r->element[i]->str, id);
    if (rtq_test_cmd_int(c, "EXISTS", t.s, NULL) == 1) {
      k = t;
      break;
    }
  }
  freeReplyObject(r);
  return k;
}

static inline const char *tw_bin(void) {
  static char buf[1024];
  if (rtq_test_bin_path("worker/rtq-worker", buf, sizeof buf) == NULL) fail_msg("RTQ_BIN_DIR is not set");
  return buf;
}

static inline rtq_client *tw_client(const char *url) {
  rtq_client_options o;
  memset(&o, 0, sizeof o);
  o.redis_url = url;
  rtq_client *c = NULL;
  if (rtq_client_new(&o, &c) != 0) fail_msg("client: %s", rtq_client_errstr(NULL));
  return c;
}

/* HGET as a malloc'd string (NULL when absent); field by its long name.
 * A value over 64 bytes is in the side hash. */
static inline char *tw_hget(rtq_conn *c, const char *id, const char *field) {
  rtq_key2 k = tw_key_task(c, id);
  char *v = rtq_test_cmd_str(c, "HGET", k.s, tw_field(field), NULL);
  if (v == NULL) {
    /* "{ns:Q}:t:<id>" -> "{ns:Q}:x:<id>" */
    char *t = strstr(k.s, "}:t:");
    if (t != NULL) t[2] = 'x';
    v = rtq_test_cmd_str(c, "HGET", k.s, tw_field(field), NULL);
  }
  return v;
}

/* HSET of one field of task id, by its long name. */
static inline void tw_hset(rtq_conn *c, const char *id, const char *field, const char *value) {
  rtq_key2 k = tw_key_task(c, id);
  rtq_test_cmd_int(c, "HSET", k.s, tw_field(field), value, NULL);
}

static inline bool tw_field_is(rtq_conn *c, const char *id, const char *field, const char *want) {
  char *v = tw_hget(c, id, field);
  bool ok = v != NULL && strcmp(v, want) == 0;
  free(v);
  return ok;
}

static inline long long tw_hget_ll(rtq_conn *c, const char *id, const char *field) {
  char *v = tw_hget(c, id, field);
  /* An attempt of 0 is left out of the hash. */
  bool zero = false;
  if (v == NULL && strcmp(field, "attempt") == 0) {
    char *s = tw_hget(c, id, "status");
    zero = s != NULL;
    free(s);
  }
  long long n = v ? strtoll(v, NULL, 10) : zero ? 0 : -1;
  free(v);
  return n;
}

/* The id of the worker whose record says pid, or false. */
static inline bool tw_find_worker(rtq_conn *c, pid_t pid, char *id, size_t cap) {
  rtq_key2 ws = tw_key_workers();
  redisReply *r = rtq_test_command(c, "ZRANGE", ws.s, "0", "-1", NULL);
  bool found = false;
  char want[32];
  snprintf(want, sizeof want, "%d", (int)pid);
  for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements && !found; i++) {
    rtq_key2 wk = tw_key_worker(r->element[i]->str);
    char *p = rtq_test_cmd_str(c, "HGET", wk.s, "pid", NULL);
    if (p != NULL && strcmp(p, want) == 0) {
      snprintf(id, cap, "%s", r->element[i]->str);
      found = true;
    }
    free(p);
  }
  freeReplyObject(r);
  return found;
}

/*
 * Spawns rtq-worker --redis url --demo-handlers plus the extra flags (a
 * NULL-terminated list) and waits until its heartbeat record is up
 * (tw_spawn_v: does not wait).
 */
static inline void tw_spawn_v(tw_worker *w, const char *url, const char *const *extra) {
  static int seq;
  const char *argv[64];
  int n = 0;
  argv[n++] = "rtq-worker";
  argv[n++] = "--redis";
  argv[n++] = url;
  argv[n++] = "--demo-handlers";
  for (int i = 0; extra != NULL && extra[i] != NULL && n < 62; i++) argv[n++] = extra[i];
  argv[n] = NULL;
  snprintf(w->log, sizeof w->log, "%s/worker-%d-%d.log", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
           (int)getpid(), ++seq);
  unlink(w->log);
  rtq_test_spawn_options so = {.path = tw_bin(), .argv = argv, .output_path = w->log};
  w->pid = rtq_test_spawn_ex(&so);
  assert_true(w->pid > 0);
}

static inline void tw_start_v(tw_worker *w, const char *url, const char *const *extra) {
  tw_spawn_v(w, url, extra);
  rtq_conn *c = rtq_test_conn_new(url);
  RTQ_TEST_WAIT_FOR(tw_find_worker(c, w->pid, w->id, sizeof w->id), 10000);
  rtq_conn_free(c);
}

static inline void tw_start(tw_worker *w, const char *url, ...) {
  const char *extra[48];
  int n = 0;
  va_list ap;
  va_start(ap, url);
  const char *s;
  while ((s = va_arg(ap, const char *)) != NULL && n < 47) extra[n++] = s;
  va_end(ap);
  extra[n] = NULL;
  tw_start_v(w, url, extra);
}

/* SIGTERM and wait; returns the exit code (-1 when killed by a signal,
 * -2 when it had to be killed). A clean exit removes the log; otherwise it
 * is printed and kept. */
static inline int tw_stop(tw_worker *w, int timeout_ms) {
  int st = 0;
  int rc = rtq_test_terminate(w->pid, SIGTERM, timeout_ms, &st);
  w->pid = -1;
  int code = rc != 0 ? -2 : WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  if (code == 0) {
    unlink(w->log);
  } else {
    fprintf(stderr, "worker exit %d; its log (%s):\n", code, w->log);
    FILE *f = fopen(w->log, "r");
    char line[8192];
    while (f != NULL && fgets(line, sizeof line, f) != NULL) fprintf(stderr, "  | %s", line);
    if (f != NULL) fclose(f);
  }
  return code;
}

/* The fixture most worker tests share, fresh for each test: the default
 * redis-server flushed, a producer client, a raw connection for assertions,
 * and no worker yet (wk->pid -1; the setup or the test starts one). */
static inline void tw_open(rtq_client **cl, rtq_conn **rc, tw_worker *wk) {
  rtq_test_redis_flush();
  *cl = tw_client(rtq_test_redis_url());
  *rc = rtq_test_conn();
  wk->pid = -1;
}

/* Stops the worker if one was started, asserting a clean exit (status 0)
 * when clean_exit is set, then frees the client and the connection. */
static inline void tw_close(rtq_client *cl, rtq_conn *rc, tw_worker *wk, bool clean_exit) {
  if (wk->pid > 0) {
    int code = tw_stop(wk, 15000);
    if (clean_exit) assert_int_equal(code, 0);
  }
  rtq_client_free(cl);
  rtq_conn_free(rc);
}

static inline bool tw_log_contains(const tw_worker *w, const char *needle) {
  FILE *f = fopen(w->log, "r");
  if (f == NULL) return false;
  char line[8192];
  bool found = false;
  while (!found && fgets(line, sizeof line, f) != NULL) found = strstr(line, needle) != NULL;
  fclose(f);
  return found;
}

static inline void tw_dump_log(const tw_worker *w) {
  FILE *f = fopen(w->log, "r");
  if (f == NULL) return;
  char line[8192];
  while (fgets(line, sizeof line, f) != NULL) fprintf(stderr, "  | %s", line);
  fclose(f);
}

/* RSS figures mean nothing under AddressSanitizer (shadow memory). */
#if defined(__SANITIZE_ADDRESS__)
#define TW_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TW_SANITIZED 1
#endif
#endif
#ifndef TW_SANITIZED
#define TW_SANITIZED 0
#endif

/* True when pid names no process, or only a zombie (a grandchild that
 * init has yet to reap). */
static inline bool tw_pid_gone(long pid) {
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  FILE *f = fopen(path, "r");
  if (f == NULL) return true;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  const char *paren = strrchr(buf, ')');
  return paren != NULL && paren[1] == ' ' && paren[2] == 'Z';
}

/* For the --exec tests: copies RTQ_SOURCE_DIR into src and puts the Python
 * SDK and tests/integration/exec on PYTHONPATH (the worker's handler
 * processes inherit it). */
static inline void tw_exec_env(char *src, size_t cap) {
  const char *s = getenv("RTQ_SOURCE_DIR");
  if (s == NULL) fail_msg("RTQ_SOURCE_DIR is not set");
  snprintf(src, cap, "%s", s);
  char pp[2100];
  snprintf(pp, sizeof pp, "%s/sdk/python:%s/tests/integration/exec", s, s);
  setenv("PYTHONPATH", pp, 1);
}

/* Enqueues name with JSON args (NULL: {}); opts may be NULL. */
static inline void tw_enqueue(rtq_client *cl, const char *name, const char *json,
                              const rtq_task_options *opts, char *id) {
  rtq_args *a = NULL;
  if (json != NULL && rtq_args_from_json(json, &a, NULL, 0) != 0) fail_msg("bad JSON in test: %s", json);
  if (rtq_create_task(cl, name, a, opts, id, NULL) != 0) fail_msg("create: %s", rtq_client_errstr(cl));
  rtq_args_free(a);
}

/* Waits for a terminal state and returns the task (caller frees). */
static inline rtq_task *tw_wait(rtq_client *cl, const char *id, int timeout_ms) {
  rtq_task *t = NULL;
  int rc = rtq_wait_for_task(cl, id, timeout_ms, &t);
  if (rc != 0) fail_msg("wait for %s: %s (%s)", id, rtq_err_name(rc), rtq_client_errstr(cl));
  return t;
}

#endif
