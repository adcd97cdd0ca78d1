/*
 * test_cli_dead.h - what the `rtq dead` tests share (after
 * test_cli_env.h): the length of P:dead, and enqueueing an rtq.echo task
 * whose args hold n bytes, so that a worker with a small --max-payload
 * dead-letters it (whole up to 4096 bytes, cut beyond).
 */
#ifndef RTQ_TEST_CLI_DEAD_H
#define RTQ_TEST_CLI_DEAD_H

static inline long long dead_len(void) {
  rtq_key d = rtq_keys_dead(&keys);
  return rtq_test_cmd_int(rc_, "LLEN", d.s, NULL);
}

static inline void enqueue_blob(const char *id, size_t n) {
  char *args = malloc(n + 16);
  snprintf(args, n + 16, "{\"blob\":\"");
  memset(args + 9, 'x', n);
  strcpy(args + 9 + n, "\"}");
  cli_run r;
  RUN(&r, "enqueue", "rtq.echo", args, "--id", id);
  free(args);
  if (r.code != 0) fail_msg("enqueue: %s", r.err);
  cli_free(&r);
}

#endif
