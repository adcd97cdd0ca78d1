/*
 * test_broker_proc.h - what every broker test shares whatever protocol it
 * plays: a flushed default redis-server and a connection to it (the tb
 * context of tb_open/tb_teardown), rtq-broker and rtq-worker run as real
 * processes, and a subscriber's messages. Broker output goes to a log
 * file in the server's temp dir (RTQ_TEST_VERBOSE=1 shows it instead); a
 * failing --once run prints its log. The producer's and worker's parts
 * are test_broker2_helpers.h's.
 */
#ifndef RTQ_TEST_BROKER_PROC_H
#define RTQ_TEST_BROKER_PROC_H

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
#include "rtq/common.h"

/* A worker id's longest text (names are at most 128 bytes). */
#define TB_ID_MAX 128

typedef struct tb {
  rtq_conn *c;
  const char *url;
  int nlog;
  char log[512];      /* log file of the last broker started */
  pid_t pids[64];     /* pids[n]: the broker whose log is broker-<n>.log */
} tb;

/* A fresh context on the flushed default server, into *state. */
static inline int tb_open(void **state) {
  tb *t = calloc(1, sizeof *t);
  if (t == NULL) return -1;
  rtq_test_redis_flush();
  t->url = rtq_test_redis_url();
  t->c = rtq_test_conn();
  *state = t;
  return 0;
}

static inline int tb_teardown(void **state) {
  tb *t = *state;
  if (t != NULL) rtq_conn_free(t->c);
  free(t);
  return 0;
}

static inline uint64_t tb_redis_now(tb *t) {
  uint64_t ms = 0;
  assert_int_equal(rtq_conn_time_ms(t->c, &ms), 0);
  return ms;
}

/* ---- rtq-worker as a process (the end-to-end tests) ---------------- */

/* rtq-worker speaking protocol ("1" or "2") with the demo handlers on
 * queue: 15 slots, a heartbeat every 200 ms with a 1 s TTL; its output in
 * <log_name>.log in the server's dir. */
static inline pid_t tb_start_worker(tb *t, const char *log_name, const char *queue,
                                    const char *protocol) {
  char bin[512], log[512];
  assert_non_null(rtq_test_bin_path("worker/rtq-worker", bin, sizeof bin));
  snprintf(log, sizeof log, "%s/%s.log", rtq_test_redis_dir(rtq_test_redis_default()), log_name);
  const char *argv[] = {bin, "--redis", t->url, "--protocol", protocol, "--demo-handlers", "--queue",
                        queue, "--concurrency", "15", "--heartbeat-interval", "200ms",
                        "--heartbeat-ttl", "1s", "--shutdown-grace", "1s", NULL};
  const char *verbose = getenv("RTQ_TEST_VERBOSE");
  rtq_test_spawn_options so = {.path = bin, .argv = argv,
                               .output_path = verbose != NULL && verbose[0] == '1' ? NULL : log};
  pid_t pid = rtq_test_spawn_ex(&so);
  assert_true(pid > 0);
  return pid;
}

/* The id of worker process pid in the workers zset `workers` ("" and
 * false until it has beaten). */
static inline bool tb_worker_id(tb *t, const char *workers, pid_t pid, char out[TB_ID_MAX + 1]) {
  char needle[32];
  snprintf(needle, sizeof needle, "-%d-", (int)pid);
  out[0] = '\0';
  redisReply *r = rtq_test_command(t->c, "ZRANGE", workers, "0", "-1", NULL);
  for (size_t i = 0; i < r->elements; i++)
    if (strstr(r->element[i]->str, needle) != NULL) snprintf(out, TB_ID_MAX + 1, "%s", r->element[i]->str);
  freeReplyObject(r);
  return out[0] != '\0';
}

/* A setup step: fails when rtq-worker is not built. */
static inline int tb_need_worker(void) {
  char bin[512];
  if (rtq_test_bin_path("worker/rtq-worker", bin, sizeof bin) == NULL || access(bin, X_OK) != 0) {
    fprintf(stderr, "rtq-worker is not built: %s\n", bin);
    return -1;
  }
  return 0;
}

/* msgpack {"seconds": <double>} for rtq.sleep, into out; returns its length. */
static inline size_t tb_sleep_args(char out[32], double seconds) {
  size_t n = 0;
  out[n++] = (char)0x81;
  out[n++] = (char)(0xa0 | 7);
  memcpy(out + n, "seconds", 7);
  n += 7;
  out[n++] = (char)0xcb;
  uint64_t bits;
  memcpy(&bits, &seconds, sizeof bits);
  for (int i = 7; i >= 0; i--) out[n++] = (char)(bits >> (8 * i));
  return n;
}

/* ---- pub/sub -------------------------------------------------------- */

/* A new connection subscribed to channel. Caller frees it. */
static inline rtq_conn *tb_subscribe_to(tb *t, const char *channel) {
  rtq_conn *s = rtq_test_conn_new(t->url);
  freeReplyObject(rtq_test_command(s, "SUBSCRIBE", channel, NULL));
  return s;
}

/* The payload of the next message (malloc'd), or NULL when none arrives
 * within the connection's command timeout (5 s). */
static inline char *tb_next_message(rtq_conn *s) {
  redisReply *r = NULL;
  if (rtq_conn_get_reply(s, &r) != 0) return NULL;
  char *p = NULL;
  if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 && r->element[2]->type == REDIS_REPLY_STRING)
    p = strdup(r->element[2]->str);
  freeReplyObject(r);
  return p;
}

/* ---- rtq-broker as a process --------------------------------------- */

#define TB_MAX_ARGS 40

static inline void tb_print_log(const char *path) {
  FILE *f = fopen(path, "r");
  if (f == NULL) return;
  char line[1024];
  fprintf(stderr, "---- %s ----\n", path);
  while (fgets(line, sizeof line, f) != NULL) fputs(line, stderr);
  fclose(f);
}

/* Starts rtq-broker against the test server with the given extra flags
 * (NULL-terminated). Returns its pid. */
static inline pid_t tb_broker_startv(tb *t, const char *const *flags) {
  char bin[512];
  assert_non_null(rtq_test_bin_path("broker/rtq-broker", bin, sizeof bin));
  const char *argv[TB_MAX_ARGS];
  int n = 0;
  argv[n++] = bin;
  argv[n++] = "--redis";
  argv[n++] = t->url;
  for (int i = 0; flags != NULL && flags[i] != NULL && n < TB_MAX_ARGS - 1; i++) argv[n++] = flags[i];
  argv[n] = NULL;
  snprintf(t->log, sizeof t->log, "%s/broker-%d.log", rtq_test_redis_dir(rtq_test_redis_default()),
           t->nlog++);
  /* The server's dir outlives a test: a file another test's broker wrote
   * must not be read as this broker's log. */
  unlink(t->log);
  const char *verbose = getenv("RTQ_TEST_VERBOSE");
  rtq_test_spawn_options so = {.path = bin, .argv = argv,
                               .output_path = verbose != NULL && verbose[0] == '1' ? NULL : t->log};
  pid_t pid = rtq_test_spawn_ex(&so);
  assert_true(pid > 0);
  if (t->nlog - 1 < 64) t->pids[t->nlog - 1] = pid;
  return pid;
}

/* The log file of broker pid (t->log when it is not known). */
static inline const char *tb_log_of(tb *t, pid_t pid, char *buf, size_t cap) {
  for (int i = 0; i < t->nlog && i < 64; i++)
    if (t->pids[i] == pid) {
      snprintf(buf, cap, "%s/broker-%d.log", rtq_test_redis_dir(rtq_test_redis_default()), i);
      return buf;
    }
  return t->log;
}

/* What a process that does not exit is doing: its state, the kernel
 * function it waits in, and its current syscall. */
static inline void tb_print_proc(pid_t pid) {
  static const char *const files[] = {"wchan", "syscall", "status"};
  for (int i = 0; i < 3; i++) {
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, files[i]);
    FILE *f = fopen(path, "r");
    if (f == NULL) continue;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    fprintf(stderr, "---- %s ----\n%s\n", path, buf);
  }
}

#define tb_broker_start(t, ...) tb_broker_startv((t), (const char *const[]){__VA_ARGS__, NULL})

/* Runs `rtq-broker --once` with the given flags and asserts exit status 0
 * within 20 s. */
static inline void tb_broker_oncev(tb *t, const char *const *flags) {
  const char *all[TB_MAX_ARGS];
  int n = 0;
  all[n++] = "--once";
  for (int i = 0; flags != NULL && flags[i] != NULL && n < TB_MAX_ARGS - 1; i++) all[n++] = flags[i];
  all[n] = NULL;
  pid_t pid = tb_broker_startv(t, all);
  int status = 0;
  assert_int_equal(rtq_test_wait_exit(pid, 20000, &status), 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    tb_print_log(t->log);
    fail_msg("rtq-broker --once: status 0x%x", status);
  }
}

#define tb_broker_once(t, ...) tb_broker_oncev((t), (const char *const[]){__VA_ARGS__, NULL})

/* True when the log file at path contains needle. */
static inline bool tb_file_contains(const char *path, const char *needle) {
  FILE *f = fopen(path, "r");
  if (f == NULL) return false;
  char line[4096];
  bool found = false;
  while (!found && fgets(line, sizeof line, f) != NULL) found = strstr(line, needle) != NULL;
  fclose(f);
  return found;
}

/* SIGTERM, then asserts a clean exit (status 0) within 30 s. */
static inline void tb_broker_stop(tb *t, pid_t pid) {
  int status = 0;
  char log[512];
  const char *path = tb_log_of(t, pid, log, sizeof log);
  /* 30 s: a loaded machine running a sanitizer build has been seen to take
   * over 10 s between the broker's last log line and its exit (LeakSanitizer
   * scanning at exit); a real hang still fails here, showing the log of
   * this broker (not of the last one started) and where it is stuck. */
  (void)rtq_test_resume_if_stopped(pid); /* a stopped process holds SIGTERM */
  assert_int_equal(rtq_test_kill(pid, SIGTERM), 0);
  if (rtq_test_wait_exit(pid, 30000, &status) == RTQ_ETIMEDOUT) {
    tb_print_proc(pid);
    tb_print_log(path);
    rtq_test_terminate(pid, SIGKILL, 10000, &status);
    fail_msg("rtq-broker %d did not exit within 30 s of SIGTERM", (int)pid);
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    tb_print_log(path);
    fail_msg("rtq-broker after SIGTERM: status 0x%x", status);
  }
}

#endif
