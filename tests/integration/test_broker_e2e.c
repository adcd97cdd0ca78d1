/*
 * test_broker_e2e.c - the broker with real rtq-worker processes.
 *
 *   kill -9 a worker with tasks in flight: every task is requeued and
 *   completed by a second worker; none is lost, and each has exactly one
 *   terminal event on P:chan:events.
 *
 *   SIGSTOP a worker past its heartbeat TTL, then SIGCONT it: its tasks
 *   were redelivered, and its late results are rejected; each task
 *   completes once, by the other worker.
 *
 * Each test prints its figures (tasks in flight, tasks run twice, time to
 * recover).
 */
#include "test_broker_helpers.h"

#include <jansson.h>

#define QUEUE "qe2e"
#define NTASKS 40

static pid_t start_worker(tb *t, const char *log_name) {
  return tb_start_worker(t, log_name, QUEUE, "1");
}

static bool has_id(tb *t, pid_t pid, char out[RTQ_NAME_MAX + 1]) {
  return tb_worker_id(t, rtq_keys_workers(&t->k).s, pid, out);
}

static void worker_id_of(tb *t, pid_t pid, char out[RTQ_NAME_MAX + 1]) { (void)has_id(t, pid, out); }

static int count_status(tb *t, const char *status) {
  int n = 0;
  char id[32];
  for (int i = 0; i < NTASKS; i++) {
    snprintf(id, sizeof id, "e2e-%02d", i);
    char *st = tb_task_field(t, id, "status");
    n += st != NULL && strcmp(st, status) == 0;
    free(st);
  }
  return n;
}

/* A subscriber that gives up after 500 ms of silence, so the events
 * buffered during the test can be drained at the end. */
static rtq_conn *events_subscriber(tb *t) {
  rtq_conn_options co = {.url = t->url, .command_timeout_ms = 500};
  rtq_conn *s = NULL;
  char err[256];
  assert_int_equal(rtq_conn_new(&co, &s, err, sizeof err), 0);
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "SUBSCRIBE");
  rtq_key k = rtq_keys_chan_events(&t->k);
  rtq__argv_add_key(&a, k);
  redisReply *r = NULL;
  assert_int_equal(rtq_conn_command(s, &a, &r), 0);
  freeReplyObject(r);
  rtq_argv_destroy(&a);
  return s;
}

typedef struct tally {
  int terminal[NTASKS];
  int redelivered[NTASKS];
} tally;

/* Reads every buffered event and counts, per task, terminal events and
 * redeliveries. */
static void drain_events(rtq_conn *s, tally *t) {
  memset(t, 0, sizeof *t);
  char *msg;
  while ((msg = tb_next_message(s)) != NULL) {
    json_t *ev = json_loads(msg, 0, NULL);
    free(msg);
    assert_non_null(ev);
    const char *id = json_string_value(json_object_get(ev, "id"));
    const char *st = json_string_value(json_object_get(ev, "status"));
    int n = -1;
    if (id != NULL && st != NULL && sscanf(id, "e2e-%d", &n) == 1 && n >= 0 && n < NTASKS) {
      rtq_status s;
      if (rtq_status_parse(st, &s) == 0 && rtq_status_is_terminal(s)) t->terminal[n]++;
      if (json_is_true(json_object_get(ev, "redelivered"))) t->redelivered[n]++;
    }
    json_decref(ev);
  }
}

static void create_tasks(tb *t, double seconds) {
  char args[32], id[32];
  tb_task_opts o = {.queue = QUEUE, .name = "rtq.sleep", .args = args};
  o.args_len = tb_sleep_args(args, seconds);
  for (int i = 0; i < NTASKS; i++) {
    snprintf(id, sizeof id, "e2e-%02d", i);
    free(tb_create(t, id, &o, &(size_t){0}));
  }
}

/* Asserts the end state; returns how many tasks ran twice. */
static int assert_all_completed_once(tb *t, rtq_conn *sub, int in_flight) {
  tally ev;
  drain_events(sub, &ev);
  int twice = 0;
  char id[32];
  for (int i = 0; i < NTASKS; i++) {
    snprintf(id, sizeof id, "e2e-%02d", i);
    if (ev.terminal[i] != 1) fail_msg("%s: %d terminal events", id, ev.terminal[i]);
    char *attempt = tb_task_field(t, id, "attempt");
    assert_non_null(attempt);
    twice += atoi(attempt) > 1;
    assert_int_equal(atoi(attempt), 1 + ev.redelivered[i]);
    free(attempt);
    assert_true(rtq_test_cmd_int(t->c, "TTL", rtq_keys_task(&t->k, id).s, NULL) > 0);
  }
  /* The tasks that were running when their worker went ran twice; an
   * envelope taken but not yet marked running runs once. */
  assert_true(twice > 0 && twice <= in_flight);
  assert_int_equal(tb_stat(t, QUEUE, "completed"), NTASKS);
  assert_int_equal(tb_stat(t, QUEUE, "redelivered"), twice);
  return twice;
}

static void test_broker_e2e_kill9_worker_tasks_completed_by_another(void **state) {
  tb *t = *state;
  rtq_conn *sub = events_subscriber(t);
  pid_t broker = tb_broker_start(t, "--sweep-interval", "100ms", "--heartbeat-ttl", "1s", "--lease-ttl", "1500ms");
  pid_t a = start_worker(t, "worker-a");
  char wid_a[RTQ_NAME_MAX + 1];
  RTQ_TEST_WAIT_FOR(has_id(t, a, wid_a), 5000);
  create_tasks(t, 1.0);
  rtq_key proc_a = rtq_keys_processing(&t->k, wid_a);
  RTQ_TEST_WAIT_FOR(tb_llen(t, proc_a) >= 15, 5000);

  assert_int_equal(rtq_test_kill(a, SIGKILL), 0);
  int in_flight = (int)tb_llen(t, proc_a);
  assert_int_equal(rtq_test_wait_exit(a, 5000, NULL), 0);
  uint64_t killed_at = rtq_test_now_ms();
  pid_t b = start_worker(t, "worker-b");
  RTQ_TEST_WAIT_FOR(tb_llen(t, proc_a) == 0, 5000);
  uint64_t recovered_in = rtq_test_now_ms() - killed_at;
  RTQ_TEST_WAIT_FOR(count_status(t, "completed") == NTASKS, 20000);

  int twice = assert_all_completed_once(t, sub, in_flight);
  printf("kill -9: %d of %d tasks in flight, recovered %llu ms after the kill (heartbeat ttl 1000 ms), "
         "%d ran twice, 0 lost\n",
         in_flight, NTASKS, (unsigned long long)recovered_in, twice);
  assert_false(tb_zhas(t, rtq_keys_workers(&t->k), wid_a));
  tb_broker_stop(t, broker);
  assert_int_equal(rtq_test_terminate(b, SIGTERM, 10000, NULL), 0);
  rtq_conn_free(sub);
}

static void test_broker_e2e_paused_worker_late_results_rejected(void **state) {
  tb *t = *state;
  rtq_conn *sub = events_subscriber(t);
  pid_t broker = tb_broker_start(t, "--sweep-interval", "100ms", "--heartbeat-ttl", "1s", "--lease-ttl", "1500ms");
  pid_t a = start_worker(t, "worker-paused");
  char wid_a[RTQ_NAME_MAX + 1];
  RTQ_TEST_WAIT_FOR(has_id(t, a, wid_a), 5000);
  create_tasks(t, 1.0);
  rtq_key proc_a = rtq_keys_processing(&t->k, wid_a);
  RTQ_TEST_WAIT_FOR(tb_llen(t, proc_a) >= 15, 5000);

  assert_int_equal(rtq_test_kill(a, SIGSTOP), 0);
  int in_flight = (int)tb_llen(t, proc_a);
  pid_t b = start_worker(t, "worker-b2");
  /* Past the heartbeat TTL the broker takes A's tasks back. */
  RTQ_TEST_WAIT_FOR(tb_llen(t, proc_a) == 0, 5000);
  RTQ_TEST_WAIT_FOR(count_status(t, "completed") == NTASKS, 20000);
  /* A wakes up, its handlers finish, its results are fenced off. */
  assert_int_equal(rtq_test_kill(a, SIGCONT), 0);
  char log_a[512];
  snprintf(log_a, sizeof log_a, "%s/worker-paused.log", rtq_test_redis_dir(rtq_test_redis_default()));
  RTQ_TEST_WAIT_FOR(tb_file_contains(log_a, "late result rejected"), 10000);
  assert_int_equal(rtq_test_terminate(a, SIGTERM, 10000, NULL), 0);

  int twice = assert_all_completed_once(t, sub, in_flight);
  char id[32];
  char wid_b[RTQ_NAME_MAX + 1];
  worker_id_of(t, b, wid_b);
  for (int i = 0; i < NTASKS; i++) {
    snprintf(id, sizeof id, "e2e-%02d", i);
    char *w = tb_task_field(t, id, "worker");
    assert_non_null(w);
    assert_string_not_equal(w, wid_a); /* the redelivery's result won */
    free(w);
  }
  printf("SIGSTOP: %d tasks redelivered from the paused worker, %d ran twice, late results rejected\n",
         in_flight, twice);
  tb_broker_stop(t, broker);
  assert_int_equal(rtq_test_terminate(b, SIGTERM, 10000, NULL), 0);
  rtq_conn_free(sub);
}

static int e2e_setup(void **state) { return tb_need_worker() != 0 ? -1 : tb_setup(state); }

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_broker_e2e_kill9_worker_tasks_completed_by_another, e2e_setup,
                                      tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker_e2e_paused_worker_late_results_rejected, e2e_setup, tb_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
