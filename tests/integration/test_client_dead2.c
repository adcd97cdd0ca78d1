/*
 * test_client_dead2.c - the dead-letter calls under protocol 2 on a
 * private redis-server: letters of two queues listed as one list (queues
 * in name order, each newest first), read, requeued (a failed task back to
 * pending; a letter without a task hash kept), requeued in bulk and
 * purged. Workers are played with the v2 scripts' call builders.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "client_internal.h"
#include "test_v2_play.h"

#define W "w1"

static rtq_client *CL;
static v2_play P;

static int setup(void **state) {
  (void)state;
  CL = v2_play_client();
  v2_play_init(&P);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  v2_play_destroy(&P);
  rtq_client_free(CL);
  return 0;
}

/* Tasks "<prefix>00".. of queue, taken by W. */
static void running(const char *queue, const char *prefix, int n) {
  v2_create_n(&P, queue, prefix, n);
  assert_int_equal(v2_take(&P, queue, W, n), n);
}

static void deadletter(const char *queue, const char *entry, const char *code) {
  v2_deadletter(&P, queue, W, entry, code);
}

static char *status(const char *queue, const char *id) {
  return rtq_test_cmd_str(P.c, "HGET", rtq_keys2_task(&P.k, queue, id).s, "s", NULL);
}

static void assert_status(const char *queue, const char *id, const char *want) {
  char *s = status(queue, id);
  assert_non_null(s);
  assert_string_equal(s, want);
  free(s);
}

/* qa: A00 (then "ghost", no task hash); qb: B00, B01, then an entry that is
 * not an id. Index order: ghost A00 | bad-entry B01 B00. */
static void letters(void) {
  running("qa", "A", 1);
  running("qb", "B", 2);
  deadletter("qa", "A00", "BAD_SIGNATURE");
  deadletter("qa", "ghost", "NO_TASK_RECORD");
  deadletter("qb", "B00", "BAD_SIGNATURE");
  deadletter("qb", "B01", "BAD_SIGNATURE");
  deadletter("qb", "not an id", "BAD_ID");
}

static void test_client_dead2_listed_across_queues(void **state) {
  (void)state;
  letters();
  rtq_dead_letters *l;
  assert_int_equal(rtq_dead_list(CL, 0, 0, &l), 0);
  assert_int_equal(l->total, 5);
  assert_int_equal(l->count, 5);
  const char *ids[] = {"ghost", "A00", "", "B01", "B00"}, *queues[] = {"qa", "qa", "qb", "qb", "qb"};
  for (size_t i = 0; i < 5; i++) {
    assert_int_equal(l->letters[i].index, i);
    assert_string_equal(l->letters[i].id, ids[i]);
    assert_string_equal(l->letters[i].queue, queues[i]);
    assert_string_equal(l->letters[i].worker, W);
    assert_null(l->letters[i].record_error);
  }
  assert_string_equal(l->letters[2].code, "BAD_ID");
  assert_memory_equal(l->letters[2].payload, "not an id", 9);
  char *json = NULL;
  assert_int_equal(rtq_dead_letter_to_json(&l->letters[1], &json), 0);
  assert_non_null(strstr(json, "\"queue\":\"qa\""));
  /* The payload is the id: the task is named by id and queue. */
  assert_non_null(strstr(json, "\"task\":{\"id\":\"A00\",\"queue\":\"qa\"}"));
  free(json);
  assert_int_equal(rtq_dead_letter_to_json(&l->letters[2], &json), 0);
  assert_non_null(strstr(json, "\"task\":null"));
  free(json);
  rtq_dead_letters_free(l);
  /* A page across the boundary of the two lists. */
  assert_int_equal(rtq_dead_list(CL, 1, 2, &l), 0);
  assert_int_equal(l->count, 2);
  assert_string_equal(l->letters[0].id, "A00");
  assert_int_equal(l->letters[1].index, 2);
  assert_string_equal(l->letters[1].queue, "qb");
  rtq_dead_letters_free(l);
  assert_int_equal(rtq_dead_list(CL, 5, 10, &l), 0);
  assert_int_equal(l->count, 0);
  assert_int_equal(l->total, 5);
  rtq_dead_letters_free(l);
  rtq_dead_letter *d;
  assert_int_equal(rtq_dead_get(CL, 3, &d), 0);
  assert_string_equal(d->id, "B01");
  rtq_dead_letter_free(d);
  assert_int_equal(rtq_dead_get(CL, 5, &d), RTQ_ENOTFOUND);
  rtq_stats *st;
  assert_int_equal(rtq_get_stats(CL, &st), 0);
  assert_int_equal(st->dead, 5);
  rtq_stats_free(st);
}

static void test_client_dead2_requeue_across_queues(void **state) {
  (void)state;
  letters();
  assert_status("qb", "B01", "failed");
  /* The index of another letter, or a letter of another queue: nothing. */
  assert_int_equal(rtq_dead_requeue_if(CL, 3, "B00", NULL, NULL), RTQ_ESTATE);
  assert_int_equal(rtq_dead_requeue(CL, 3, "qa", NULL), RTQ_ENOTFOUND);
  char *id = NULL;
  assert_int_equal(rtq_dead_requeue_if(CL, 3, "B01", "qb", &id), 0);
  assert_string_equal(id, "B01");
  free(id);
  assert_status("qb", "B01", "pending");
  assert_int_equal(rtq_test_cmd_int(P.c, "LLEN", rtq_keys2_queue(&P.k, "qb").s, NULL), 1);
  assert_int_equal(rtq_test_cmd_int(P.c, "LLEN", rtq_keys2_dead(&P.k, "qb").s, NULL), 2);
  /* No task hash: refused, the letter kept. */
  assert_int_equal(rtq_dead_requeue(CL, 0, NULL, NULL), RTQ_ESTATE);
  assert_non_null(strstr(rtq_client_errstr(CL), "no record"));
  assert_int_equal(rtq_test_cmd_int(P.c, "LLEN", rtq_keys2_dead(&P.k, "qa").s, NULL), 2);
  /* Not an id: refused, kept. */
  assert_int_equal(rtq_dead_requeue(CL, 2, NULL, NULL), RTQ_EDECODE);
  /* A record that does not decode: refused, kept. */
  rtq_test_cmd_int(P.c, "LPUSH", rtq_keys2_dead(&P.k, "qb").s, "junk", NULL);
  assert_int_equal(rtq_dead_requeue(CL, 2, NULL, NULL), RTQ_EDECODE); /* "junk" is qb's newest now */

  /* In bulk: A00 and B00 go back; ghost, the bad entry and junk stay. */
  rtq_dead_counts n;
  assert_int_equal(rtq_dead_requeue_all(CL, NULL, &n), 0);
  assert_int_equal(n.done, 2);
  assert_int_equal(n.refused, 3);
  assert_status("qa", "A00", "pending");
  assert_status("qb", "B00", "pending");
  rtq_dead_letters *l;
  assert_int_equal(rtq_dead_list(CL, 0, 0, &l), 0);
  assert_int_equal(l->total, 3);
  assert_string_equal(l->letters[0].id, "ghost");
  rtq_dead_letters_free(l);

  /* Purge one queue, then all. */
  assert_int_equal(rtq_dead_purge(CL, "qb", &n), 0);
  assert_int_equal(n.done, 2);
  assert_int_equal(rtq_test_cmd_int(P.c, "LLEN", rtq_keys2_dead(&P.k, "qa").s, NULL), 1);
  assert_int_equal(rtq_dead_purge(CL, NULL, &n), 0);
  assert_int_equal(n.done, 1);
  assert_int_equal(rtq_dead_list(CL, 0, 0, &l), 0);
  assert_int_equal(l->total, 0);
  rtq_dead_letters_free(l);
  assert_int_equal(rtq_dead_purge(CL, "bad queue", &n), RTQ_EINVAL);
}

/* Letters no record could be (empty, or past dead_requeue.lua's 64 KiB)
 * are refused and kept, alone: a bulk requeue goes on past them. */
static void test_client_dead2_requeue_all_passes_unfit_letters(void **state) {
  (void)state;
  running("qa", "A", 1);
  deadletter("qa", "A00", "BAD_TASK");
  rtq_key2 dead = rtq_keys2_dead(&P.k, "qa");
  size_t big = 65537;
  char *huge = malloc(big + 1);
  assert_non_null(huge);
  memset(huge, 'x', big);
  huge[big] = '\0';
  /* Older than A00's letter, so a walk from the oldest meets them first. */
  rtq_test_cmd_int(P.c, "RPUSH", dead.s, "", huge, NULL);
  free(huge);
  assert_int_equal(rtq_dead_requeue(CL, 1, NULL, NULL), RTQ_EDECODE);
  assert_non_null(strstr(rtq_client_errstr(CL), "letter kept"));
  rtq_dead_counts n;
  memset(&n, 0, sizeof n);
  assert_int_equal(rtq_dead_requeue_all(CL, NULL, &n), 0);
  assert_int_equal(n.done, 1);
  assert_int_equal(n.refused, 2);
  assert_status("qa", "A00", "pending");
  assert_int_equal(rtq_test_cmd_int(P.c, "LLEN", dead.s, NULL), 2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_client_dead2_listed_across_queues, setup, teardown),
      cmocka_unit_test_setup_teardown(test_client_dead2_requeue_across_queues, setup, teardown),
      cmocka_unit_test_setup_teardown(test_client_dead2_requeue_all_passes_unfit_letters, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
