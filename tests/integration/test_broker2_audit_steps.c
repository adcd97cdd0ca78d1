/*
 * test_broker2_audit_steps.c - the audit of processing lists
 * (broker/audit2.c) driven sweep by sweep in this process, against the
 * harness's redis-server, to look at its state between sweeps.
 *
 *   large reply    a SCAN reply holds more keys than a step looks at: the
 *                  rest are looked at by the next steps, and sweeps, and
 *                  the cursor moves on only after the last, so every list
 *                  of the walk becomes a suspect.
 *   failed retry   the recovery of a suspect gets an error reply: the
 *                  suspect stays, first seen as before, and the next sweep
 *                  recovers the list, without waiting for another walk
 *                  and another heartbeat TTL; one that keeps failing is
 *                  let go after RTQ_BROKER2_AUDIT_RETRIES attempts.
 *   scan refused   a broker user without +scan gets the hint to grant it;
 *                  a SCAN refused for another reason is logged without it.
 */
#include <fcntl.h>

#include "internal2.h"
#include "log.h"
#include "test_broker2_helpers.h"

/* A broker of this process on the test server; its log lines go to a
 * file in the server's dir. */
typedef struct audit_env {
  tb *t;
  rtq_broker *b;
  char log[512];
  int fd;
} audit_env;

static void env_open(audit_env *e, tb *t, const char *url, int heartbeat_ttl_ms) {
  e->t = t;
  snprintf(e->log, sizeof e->log, "%s/audit-steps.log", rtq_test_redis_dir(rtq_test_redis_default()));
  e->fd = open(e->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  assert_true(e->fd >= 0);
  rtq_log_set_fd(e->fd);
  rtq_log_set_level(RTQ_LOG_DEBUG);
  rtq_broker_options o;
  rtq_broker_options_defaults(&o);
  snprintf(o.config.redis_url, sizeof o.config.redis_url, "%s", url);
  o.config.protocol = 2;
  o.config.log_level = RTQ_LOG_DEBUG;
  o.heartbeat_ttl_ms = heartbeat_ttl_ms;
  o.ignore_lease = true;
  char err[256] = "";
  if (rtq_broker_new(&o, &e->b, err, sizeof err) != 0) fail_msg("rtq_broker_new: %s", err);
}

static void env_close(audit_env *e) {
  rtq_broker_free(e->b);
  rtq_log_set_fd(-1);
  close(e->fd);
}

static void sweep(audit_env *e) { assert_int_equal(rtq_broker_sweep(e->b), 0); }

/* The lines of the log that hold both texts. */
static int lines_with2(const char *path, const char *a, const char *b) {
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  char line[8192];
  int n = 0;
  while (fgets(line, sizeof line, f) != NULL) n += strstr(line, a) != NULL && strstr(line, b) != NULL;
  fclose(f);
  return n;
}

static int lines_with(const char *path, const char *text) { return lines_with2(path, text, text); }

static bool is_suspect(const rtq__broker2 *s, const char *wid, const char *queue) {
  for (size_t i = 0; i < s->au_nsuspects; i++)
    if (strcmp(s->au_suspects[i].wid, wid) == 0 && strcmp(s->au_suspects[i].queue, queue) == 0) return true;
  return false;
}

#define NLISTS 200

/* NLISTS lists of workers that are not alive (no entry, no record), one
 * reply of SCAN COUNT 250 or two; a step looks at one key. Every list is
 * a suspect at the end of the walk, after several sweeps (40 steps each,
 * at most). */
static void test_broker2_audit_steps_look_at_every_key_of_a_reply(void **state) {
  tb *t = *state;
  for (int i = 0; i < NLISTS; i++) {
    char wid[32];
    snprintf(wid, sizeof wid, "w-gone-%03d", i);
    rtq_test_cmd_int(t->c, "RPUSH", rtq_keys2_processing(&K2, "qbig", wid).s, "some-id", NULL);
  }
  audit_env e;
  env_open(&e, t, t->url, 600000); /* no second look during the test */
  e.b->v2->au_per_look = 1;
  sweep(&e);
  rtq__broker2 *s = e.b->v2;
  /* One sweep: at most its 40 steps, one key each; the walk goes on. */
  assert_true(s->au_nsuspects >= 1 && s->au_nsuspects <= RTQ_BROKER2_AUDIT_SCANS_PER_SWEEP);
  assert_int_equal(s->au_cycles, 0);
  for (int i = 0; i < 100 && s->au_cycles == 0; i++) sweep(&e);
  assert_int_equal(s->au_cycles, 1);
  assert_int_equal(s->au_nsuspects, NLISTS);
  for (int i = 0; i < NLISTS; i++) {
    char wid[32];
    snprintf(wid, sizeof wid, "w-gone-%03d", i);
    if (!is_suspect(s, wid, "qbig")) fail_msg("%s's list was not looked at", wid);
  }
  assert_null(s->au_page);
  env_close(&e);
}

#define TTL_MS 1500

/* Waits until the Redis clock is at least `at`. */
static void wait_until_redis(tb *t, uint64_t at) {
  RTQ_TEST_WAIT_FOR(tb_redis_now(t) >= at, TTL_MS * 4);
}

/* A dead worker's list holding one running task of queue, no index
 * leading to it. */
static void orphan(tb *t, const char *queue, const char *wid, const char *id) {
  tb2_heartbeat(t, wid, 600000, "other:1");
  tb2_create(t, queue, id, NULL);
  assert_int_equal(tb2_take_all(t, wid, queue), 1);
  rtq_test_cmd_int(t->c, "ZREM", rtq_keys2_workers(&K2).s, wid, NULL);
  rtq_test_cmd_int(t->c, "DEL", rtq_keys2_worker(&K2, wid).s, NULL);
  /* Out of the registry too, so no other phase reads the queue's keys. */
  rtq_test_cmd_int(t->c, "SREM", rtq_keys2_queues(&K2).s, queue, NULL);
}

/* The queue's list as a string: recover.lua refuses every call on it. */
static void break_queue(tb *t, const char *queue) {
  rtq_test_cmd_ok(t->c, "SET", rtq_keys2_queue(&K2, queue).s, "in the way", NULL);
}

static void test_broker2_audit_steps_retry_a_failed_recovery_next_sweep(void **state) {
  tb *t = *state;
  orphan(t, "qr", "w-gone", "r-1");
  break_queue(t, "qr");
  audit_env e;
  env_open(&e, t, t->url, TTL_MS);
  rtq__broker2 *s = e.b->v2;
  sweep(&e);
  assert_true(is_suspect(s, "w-gone", "qr"));
  uint64_t first = s->au_suspects[0].seen_at;
  wait_until_redis(t, first + TTL_MS + 10);
  sweep(&e); /* the second look: its recovery fails */
  assert_int_equal(lines_with(e.log, "recover step failed"), 1);
  assert_true(tb2_field_is(t, "qr", "r-1", "s", "running"));
  assert_int_equal(s->au_nsuspects, 1);
  assert_int_equal(s->au_suspects[0].seen_at, first); /* kept, not found again */
  assert_int_equal(s->au_suspects[0].failures, 1);
  rtq_test_cmd_int(t->c, "DEL", rtq_keys2_queue(&K2, "qr").s, NULL);
  sweep(&e); /* the very next sweep, well within a heartbeat TTL */
  assert_true(tb2_field_is(t, "qr", "r-1", "s", "pending"));
  assert_int_equal(tb2_len(t, rtq_keys2_processing(&K2, "qr", "w-gone")), 0);
  assert_int_equal(tb2_len(t, rtq_keys2_queue(&K2, "qr")), 1);
  assert_int_equal(s->au_nsuspects, 0);
  assert_int_equal(lines_with2(e.log, "looking again after the heartbeat TTL", "w-gone"), 1);
  assert_int_equal(lines_with(e.log, "no index led to"), 1);
  env_close(&e);
}

static void test_broker2_audit_steps_let_go_of_a_list_that_keeps_failing(void **state) {
  tb *t = *state;
  orphan(t, "qf", "w-stuck", "f-1");
  break_queue(t, "qf");
  audit_env e;
  env_open(&e, t, t->url, TTL_MS);
  rtq__broker2 *s = e.b->v2;
  sweep(&e);
  wait_until_redis(t, s->au_suspects[0].seen_at + TTL_MS + 10);
  for (int i = 1; i < RTQ_BROKER2_AUDIT_RETRIES; i++) {
    sweep(&e);
    assert_int_equal(s->au_nsuspects, 1);
    assert_int_equal(s->au_suspects[0].failures, i);
  }
  assert_int_equal(lines_with(e.log, "keeps failing"), 0);
  sweep(&e); /* the last attempt: let go, then found again by the walk */
  assert_int_equal(lines_with(e.log, "recover step failed"), RTQ_BROKER2_AUDIT_RETRIES);
  assert_int_equal(lines_with2(e.log, "keeps failing", "w-stuck"), 1);
  assert_int_equal(lines_with2(e.log, "looking again after the heartbeat TTL", "w-stuck"), 2);
  assert_int_equal(s->au_nsuspects, 1);
  assert_int_equal(s->au_suspects[0].failures, 0);
  assert_true(tb2_field_is(t, "qf", "f-1", "s", "running"));
  env_close(&e);
}

/* A broker user that may do all but SCAN: the hint to grant +scan. */
static void test_broker2_audit_steps_hint_scan_only_on_noperm(void **state) {
  tb *t = *state;
  rtq_test_cmd_ok(t->c, "ACL", "SETUSER", "no-scan", "reset", "on", ">pw", "~*", "&*", "+@all", "-scan", NULL);
  char url[512];
  const char *hostport = strstr(t->url, "://");
  assert_non_null(hostport);
  snprintf(url, sizeof url, "redis://no-scan:pw@%s", hostport + 3);
  audit_env e;
  env_open(&e, t, url, TTL_MS);
  sweep(&e);
  sweep(&e);
  assert_int_equal(lines_with(e.log, "cannot SCAN"), 1); /* once */
  assert_int_equal(lines_with2(e.log, "cannot SCAN", "NOPERM"), 1);
  assert_int_equal(lines_with2(e.log, "cannot SCAN", "+scan"), 1);
  env_close(&e);
  rtq_test_cmd_int(t->c, "ACL", "DELUSER", "no-scan", NULL);

  /* Another refusal (a cursor the server does not take): no hint. */
  env_open(&e, t, t->url, TTL_MS);
  sweep(&e);
  snprintf(e.b->v2->au_cursor, sizeof e.b->v2->au_cursor, "not-a-cursor");
  sweep(&e);
  sweep(&e);
  assert_int_equal(lines_with(e.log, "cannot SCAN"), 1);
  assert_int_equal(lines_with2(e.log, "cannot SCAN", "invalid cursor"), 1);
  assert_int_equal(lines_with(e.log, "+scan"), 0);
  env_close(&e);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_broker2_audit_steps_look_at_every_key_of_a_reply, tb2_setup,
                                      tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker2_audit_steps_retry_a_failed_recovery_next_sweep, tb2_setup,
                                      tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker2_audit_steps_let_go_of_a_list_that_keeps_failing, tb2_setup,
                                      tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker2_audit_steps_hint_scan_only_on_noperm, tb2_setup, tb_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
