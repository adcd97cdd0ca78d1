/*
 * test_worker_queues.c - several queues: under weights 3:1 both queues are
 * served in that proportion while both have a backlog (the light one is
 * not starved); under strict priority the lower queue waits until the
 * higher one is empty.
 */
#include "test_worker_util.h"

#define PER_QUEUE 120

static rtq_client *cl;
static rtq_conn *rc_;
static tw_worker wk;

static int setup(void **state) {
  (void)state;
  tw_open(&cl, &rc_, &wk);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  tw_close(cl, rc_, &wk, true);
  return 0;
}

typedef struct started {
  uint64_t at;
  int queue; /* 0 critical, 1 default */
} started;

static int by_time(const void *a, const void *b) {
  const started *x = a, *y = b;
  return x->at < y->at ? -1 : x->at > y->at;
}

/* Enqueues PER_QUEUE 5 ms tasks on each queue, runs one worker with a
 * single slot until all are done, and returns them ordered by start. */
static void run_backlog(started *out, const char *const *flags) {
  static char ids[2][PER_QUEUE][RTQ_TASK_ID_SIZE];
  const char *queues[2] = {"critical", "default"};
  for (int q = 0; q < 2; q++) {
    rtq_task_options o;
    memset(&o, 0, sizeof o);
    o.queue = queues[q];
    for (int i = 0; i < PER_QUEUE; i++) tw_enqueue(cl, "rtq.sleep", "{\"seconds\":0.005,\"steps\":1}", &o, ids[q][i]);
  }
  tw_start_v(&wk, rtq_test_redis_url(), flags);
  for (int q = 0; q < 2; q++) {
    for (int i = 0; i < PER_QUEUE; i++) {
      rtq_task *t = tw_wait(cl, ids[q][i], 30000);
      assert_int_equal(t->status, RTQ_STATUS_COMPLETED);
      out[q * PER_QUEUE + i].at = t->started_at;
      out[q * PER_QUEUE + i].queue = q;
      rtq_task_free(t);
    }
  }
  qsort(out, 2 * PER_QUEUE, sizeof *out, by_time);
}

static void test_worker_weighted_queues_share_3_to_1(void **state) {
  (void)state;
  const char *flags[] = {"--queue", "critical:3", "--queue", "default:1", "--concurrency", "1", NULL};
  started s[2 * PER_QUEUE];
  run_backlog(s, flags);
  /* While both queues had work (the first 120 starts), default got about
   * a quarter; it was never starved. */
  int dflt = 0, first_default = -1;
  for (int i = 0; i < PER_QUEUE; i++) {
    if (s[i].queue == 1) {
      dflt++;
      if (first_default < 0) first_default = i;
    }
  }
  printf("  weights 3:1: default got %d of the first %d starts; its first start was #%d\n", dflt, PER_QUEUE,
         first_default + 1);
  assert_true(dflt >= PER_QUEUE / 4 - 8 && dflt <= PER_QUEUE / 4 + 8);
  assert_true(first_default >= 0 && first_default < 8);
}

static void test_worker_strict_priority_drains_first_queue(void **state) {
  (void)state;
  const char *flags[] = {"--queue", "critical", "--queue", "default", "--strict-priority", "--concurrency", "1",
                         NULL};
  started s[2 * PER_QUEUE];
  run_backlog(s, flags);
  for (int i = 0; i < PER_QUEUE; i++) assert_int_equal(s[i].queue, 0);
  for (int i = PER_QUEUE; i < 2 * PER_QUEUE; i++) assert_int_equal(s[i].queue, 1);
}

static void test_worker_weighted_picks_up_idle_queues(void **state) {
  (void)state;
  /* Idle worker on three queues: work on any of them is picked up within
   * the poll interval, not the block timeout. */
  const char *flags[] = {"--queue", "a:1", "--queue", "b:1", "--queue", "c:5", NULL};
  tw_start_v(&wk, rtq_test_redis_url(), flags);
  const char *names[] = {"a", "b", "c"};
  long long took[6];
  int n = 0;
  for (int round = 0; round < 2; round++) {
    for (int q = 0; q < 3; q++) {
      rtq_task_options o;
      memset(&o, 0, sizeof o);
      o.queue = names[q];
      char id[RTQ_TASK_ID_SIZE];
      tw_enqueue(cl, "rtq.noop", NULL, &o, id);
      rtq_task *t = tw_wait(cl, id, 5000);
      assert_int_equal(t->status, RTQ_STATUS_COMPLETED);
      long long ms = (long long)t->started_at - (long long)t->created_at;
      printf("  idle pick-up on queue %s: %lld ms\n", names[q], ms);
      /* Each well under the 2 s block timeout, however busy the machine. */
      assert_true(ms < 1000);
      took[n++] = ms;
      rtq_task_free(t);
    }
  }
  /* Typically within the 100 ms poll interval and a wake-up: the median,
   * so that one late scheduling on a loaded machine does not decide it. */
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0 && took[j - 1] > took[j]; j--) {
      long long x = took[j];
      took[j] = took[j - 1];
      took[j - 1] = x;
    }
  printf("  median idle pick-up: %lld ms\n", took[n / 2]);
  assert_true(took[n / 2] <= 160);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_worker_weighted_queues_share_3_to_1, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_strict_priority_drains_first_queue, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_weighted_picks_up_idle_queues, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
