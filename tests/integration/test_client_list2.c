/*
 * test_client_list2.c - rtq_list_tasks under protocol 2 on a private
 * redis-server (the client given protocol 2 explicitly):
 * queue by queue, pending oldest first then delayed, running from the
 * processing lists of live workers only, ended from the done lists; the
 * filters, offset and limit; paging with next_after over several windows
 * and across a claim that shifts the pending list.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"
#include "keys2.h"
#include "rtq/client.h"
#include "test_client_fixture2.h"
#include "test_client_fake_worker2.h"

static void create(const char *name, const char *queue, uint64_t delay_ms, char *id) {
  rtq_task_options o = {.queue = queue, .delay_ms = delay_ms};
  if (rtq_create_task(CL, name, NULL, &o, id, NULL) != 0)
    fail_msg("create: %s", rtq_client_errstr(CL));
}

/* Marks worker wid alive (heartbeat now) or dead (a minute ago). */
static void heartbeat(const char *wid, bool alive) {
  redisReply *r = rtq_test_command(C, "TIME", NULL);
  long long ms = atoll(r->element[0]->str) * 1000 + atoll(r->element[1]->str) / 1000;
  freeReplyObject(r);
  char score[32];
  snprintf(score, sizeof score, "%lld", alive ? ms : ms - 60000);
  rtq_test_cmd_int(C, "ZADD", "{rtq}:workers", score, wid, NULL);
}

static rtq_task_list *list(unsigned statuses, const char *queue, const char *name, size_t limit,
                           size_t offset, const char *after) {
  rtq_task_filter f = {.statuses = statuses, .queue = queue, .name = name, .limit = limit,
                       .offset = offset, .after = after};
  rtq_task_list *l = NULL;
  if (rtq_list_tasks(CL, &f, &l) != 0) fail_msg("list: %s", rtq_client_errstr(CL));
  return l;
}

static void test_client_list2_sources_and_filters(void **state) {
  (void)state;
  char p1[RTQ_TASK_ID_SIZE], p2[RTQ_TASK_ID_SIZE], p3[RTQ_TASK_ID_SIZE], d1[RTQ_TASK_ID_SIZE];
  char x1[RTQ_TASK_ID_SIZE], r1[RTQ_TASK_ID_SIZE], r2[RTQ_TASK_ID_SIZE], c1[RTQ_TASK_ID_SIZE];
  create("mail", "a", 0, p1);
  create("mail", "a", 0, p2);
  create("sms", "a", 0, p3);
  create("mail", "a", 3600000, d1);
  create("mail", "a", 0, x1);
  assert_int_equal(rtq_cancel_task(CL, x1, NULL), 0); /* stays in a's queue list */
  create("sum", "b", 0, c1);
  create("sum", "b", 0, r1);
  create("sum", "b", 0, r2);
  fake_job2 j;
  assert_int_equal(fw2_take(C, &K, "b", "w-live", &j), 0);
  assert_string_equal(j.id, c1);
  assert_int_equal(fw2_end(C, &K, &j, RTQ_STATUS_COMPLETED), 0);
  assert_int_equal(fw2_take(C, &K, "b", "w-live", &j), 0);
  assert_string_equal(j.id, r1);
  assert_int_equal(fw2_take(C, &K, "b", "w-dead", &j), 0);
  assert_string_equal(j.id, r2);
  heartbeat("w-live", true);
  heartbeat("w-dead", false);

  rtq_task_list *l = list(0, NULL, NULL, 0, 0, NULL);
  /* a: pending oldest first, delayed, cancelled; b: running (live worker
   * only), completed. */
  const char *want[] = {p1, p2, p3, d1, x1, r1, c1};
  assert_int_equal(l->count, 7);
  for (size_t i = 0; i < 7; i++) assert_string_equal(l->tasks[i]->id, want[i]);
  assert_int_equal(l->tasks[4]->status, RTQ_STATUS_CANCELLED);
  assert_string_equal(l->tasks[5]->queue, "b");
  assert_string_equal(l->next_after, "");
  assert_false(l->truncated);
  rtq_task_list_free(l);

  l = list(RTQ_STATUS_BIT(RTQ_STATUS_PENDING), "a", "mail", 0, 0, NULL);
  assert_int_equal(l->count, 3);
  assert_string_equal(l->tasks[0]->id, p1);
  assert_string_equal(l->tasks[1]->id, p2);
  assert_string_equal(l->tasks[2]->id, d1);
  rtq_task_list_free(l);
  l = list(RTQ_STATUS_BIT(RTQ_STATUS_RUNNING) | RTQ_STATUS_BIT(RTQ_STATUS_COMPLETED), NULL, NULL,
           0, 0, NULL);
  assert_int_equal(l->count, 2);
  rtq_task_list_free(l);
  /* offset and limit */
  l = list(0, NULL, NULL, 2, 1, NULL);
  assert_int_equal(l->count, 2);
  assert_string_equal(l->tasks[0]->id, p2);
  assert_string_equal(l->tasks[1]->id, p3);
  assert_true(strlen(l->next_after) > 0);
  rtq_task_list_free(l);

  rtq_task_filter bad = {.after = "bad id"};
  rtq_task_list *none = NULL;
  assert_int_equal(rtq_list_tasks(CL, &bad, &none), RTQ_EINVAL);
  bad.after = "no-such-task";
  assert_int_equal(rtq_list_tasks(CL, &bad, &none), RTQ_ENOTFOUND);
  bad.after = "x/q12";
  bad.queue = "bad queue";
  assert_int_equal(rtq_list_tasks(CL, &bad, &none), RTQ_EINVAL);
  assert_null(none);
}

/* Pages through everything with limit per page: each id once, in order. */
static void test_client_list2_pages_over_windows(void **state) {
  (void)state;
  enum { N = 700 };
  rtq_task_spec *s = calloc(N, sizeof *s);
  for (int i = 0; i < N; i++) s[i].name = i == N - 1 ? "last" : "t";
  assert_int_equal(rtq_create_tasks(CL, s, N), 0);
  /* A filter that matches only the last: examines all 700, 3 windows. */
  rtq_task_list *l = list(0, NULL, "last", 0, 0, NULL);
  assert_int_equal(l->count, 1);
  assert_string_equal(l->tasks[0]->id, s[N - 1].id);
  assert_int_equal(l->examined, N);
  rtq_task_list_free(l);
  char after[RTQ_TASK_ID_SIZE] = "";
  int seen = 0, pages = 0;
  for (; pages < 20; pages++) {
    l = list(0, NULL, NULL, 128, 0, after[0] ? after : NULL);
    for (size_t i = 0; i < l->count; i++) assert_string_equal(l->tasks[i]->id, s[seen++].id);
    snprintf(after, sizeof after, "%s", l->next_after);
    rtq_task_list_free(l);
    if (after[0] == '\0') break;
  }
  assert_int_equal(seen, N);
  assert_int_equal(pages, N / 128); /* 5 full pages, then the last of 60 */
  /* A plain id works as after too. */
  l = list(0, NULL, NULL, 2, 0, s[10].id);
  assert_int_equal(l->count, 2);
  assert_string_equal(l->tasks[0]->id, s[11].id);
  rtq_task_list_free(l);
  free(s);
}

static void test_client_list2_paging_across_a_claim(void **state) {
  (void)state;
  char id[10][RTQ_TASK_ID_SIZE];
  for (int i = 0; i < 10; i++) create("t", "q", 0, id[i]);
  unsigned pending = RTQ_STATUS_BIT(RTQ_STATUS_PENDING);
  rtq_task_list *l = list(pending, NULL, NULL, 4, 0, NULL);
  assert_int_equal(l->count, 4);
  assert_string_equal(l->tasks[3]->id, id[3]);
  char after[RTQ_TASK_ID_SIZE];
  snprintf(after, sizeof after, "%s", l->next_after);
  rtq_task_list_free(l);
  /* Two claims take the oldest two: every id moves two places. */
  fake_job2 j;
  assert_int_equal(fw2_take(C, &K, "q", "w", &j), 0);
  assert_int_equal(fw2_take(C, &K, "q", "w", &j), 0);
  l = list(pending, NULL, NULL, 4, 0, after);
  assert_int_equal(l->count, 4);
  for (int i = 0; i < 4; i++) assert_string_equal(l->tasks[i]->id, id[4 + i]);
  snprintf(after, sizeof after, "%s", l->next_after);
  rtq_task_list_free(l);
  /* The cursor's own task is claimed now, and the older ones before it:
   * the page goes on with the oldest pending. */
  for (int i = 0; i < 6; i++) assert_int_equal(fw2_take(C, &K, "q", "w", &j), 0);
  assert_string_equal(j.id, id[7]);
  l = list(pending, NULL, NULL, 4, 0, after);
  assert_int_equal(l->count, 2);
  assert_string_equal(l->tasks[0]->id, id[8]);
  assert_string_equal(l->tasks[1]->id, id[9]);
  assert_string_equal(l->next_after, "");
  rtq_task_list_free(l);
}

/* Entries a writer with access may put in the lists: skipped, counted as
 * examined, no key built from them; a queue of the registry that is not a
 * name is never read. */
static void test_client_list2_skips_junk_entries(void **state) {
  (void)state;
  char a[RTQ_TASK_ID_SIZE], b[RTQ_TASK_ID_SIZE];
  create("t", "j", 0, a);
  rtq_key2 q = rtq_keys2_queue(&K, "j");
  rtq_test_cmd_int(C, "LPUSH", q.s, "bad id", "{x}", "", NULL);
  rtq_argv nul; /* an entry with a NUL byte in it */
  rtq_argv_init(&nul);
  rtq_argv_add_str(&nul, "LPUSH");
  rtq_argv_add_str(&nul, q.s);
  rtq_argv_add(&nul, "a\0b", 3);
  freeReplyObject(rtq_test_command_argv(C, &nul));
  rtq_argv_destroy(&nul);
  create("t", "j", 0, b);
  rtq_test_cmd_int(C, "LPUSH", rtq_keys2_done(&K, "j", RTQ_STATUS_FAILED).s, "no/such", "ghost", NULL);
  rtq_test_cmd_int(C, "SADD", "{rtq}:queues", "bad queue", NULL);
  /* A listed id whose task key is of another type. */
  rtq_test_cmd_int(C, "LPUSH", rtq_keys2_done(&K, "j", RTQ_STATUS_FAILED).s, "str-key", NULL);
  rtq_test_cmd_ok(C, "SET", rtq_keys2_task(&K, "j", "str-key").s, "x", NULL);
  rtq_task_list *l = list(0, NULL, NULL, 0, 0, NULL);
  assert_int_equal(l->count, 2);
  assert_string_equal(l->tasks[0]->id, a);
  assert_string_equal(l->tasks[1]->id, b);
  assert_int_equal(l->examined, 9);
  rtq_task_list_free(l);
  /* A page boundary on a junk entry still pages on. */
  l = list(0, NULL, NULL, 1, 0, NULL);
  char after[RTQ_TASK_ID_SIZE];
  snprintf(after, sizeof after, "%s", l->next_after);
  rtq_task_list_free(l);
  l = list(0, NULL, NULL, 1, 0, after);
  assert_int_equal(l->count, 1);
  assert_string_equal(l->tasks[0]->id, b);
  rtq_task_list_free(l);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_client_list2_sources_and_filters, setup, teardown),
      cmocka_unit_test_setup_teardown(test_client_list2_pages_over_windows, setup, teardown),
      cmocka_unit_test_setup_teardown(test_client_list2_paging_across_a_claim, setup, teardown),
      cmocka_unit_test_setup_teardown(test_client_list2_skips_junk_entries, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
