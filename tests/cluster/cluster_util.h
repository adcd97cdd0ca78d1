/* cluster_util.h - what the cluster and sentinel tests share. */
#ifndef RTQ_TEST_CLUSTER_UTIL_H
#define RTQ_TEST_CLUSTER_UTIL_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"
#include "integration/test_cli_run.h"

/* SIGTERM, and a clean exit 0 in time (a sanitizer report would change
 * it). (asserts) */
static inline void stop_clean(pid_t pid) {
  int status = 0;
  assert_int_equal(rtq_test_terminate(pid, SIGTERM, 10000, &status), 0);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
}

/* Starts the built binary rel (e.g. "worker/rtq-worker") with args
 * (NULL-terminated, at most 22), output to log. (asserts) */
static inline pid_t cluster_spawn(const char *rel, const char *const *args, const char *log) {
  char bin[512];
  assert_non_null(rtq_test_bin_path(rel, bin, sizeof bin));
  const char *argv[24];
  int n = 0;
  argv[n++] = bin;
  for (int i = 0; args[i] != NULL && n < 23; i++) argv[n++] = args[i];
  argv[n] = NULL;
  rtq_test_spawn_options so = {.path = bin, .argv = argv, .output_path = log};
  pid_t pid = rtq_test_spawn_ex(&so);
  assert_true(pid > 0);
  return pid;
}

/* True when node of cl answers ROLE with role ("master", "slave"). */
static inline bool cluster_role_is(rtq_test_cluster *cl, int node, const char *role) {
  rtq_conn_options o = {.url = rtq_test_redis_url_of(rtq_test_cluster_node(cl, node)), .connect_timeout_ms = 500};
  rtq_conn *c = NULL;
  char err[256];
  if (rtq_conn_new(&o, &c, err, sizeof err) != 0) return false;
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "ROLE");
  redisReply *r = NULL;
  bool yes = rtq_conn_command(c, &a, &r) == 0 && r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
             strcmp(r->element[0]->str, role) == 0;
  if (r != NULL) freeReplyObject(r);
  rtq_argv_destroy(&a);
  rtq_conn_free(c);
  return yes;
}

/* How often the worker log has `<what> task=<prefix><i>` with, when
 * need_replica, a replica count of at least 1 after it: counts[i] for
 * i < n. */
static inline void cluster_count_log(const char *log, const char *what, const char *prefix, bool need_replica,
                                     int *counts, int n) {
  char *s = cli_slurp(log);
  char needle[96];
  snprintf(needle, sizeof needle, "msg=\"%s\" task=%s", what, prefix);
  for (const char *p = strstr(s, needle); p != NULL; p = strstr(p + 1, needle)) {
    int i = atoi(p + strlen(needle));
    const char *eol = strchr(p, '\n');
    const char *rep = strstr(p, " replicas=");
    if (need_replica && (rep == NULL || (eol != NULL && rep > eol) || atoi(rep + 10) < 1)) continue;
    if (i >= 0 && i < n) counts[i]++;
  }
  free(s);
}

#endif
