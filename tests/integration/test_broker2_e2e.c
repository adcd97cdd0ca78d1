/*
 * test_broker2_e2e.c - rtq-broker and real rtq-worker processes under
 * protocol 2: a worker killed with -9 mid-batch loses nothing (the broker
 * redelivers what it held, another worker completes it, each task ends
 * once), and a worker that was only paused (SIGSTOP) past the heartbeat
 * TTL gets its late results fenced off when it wakes. The event stream
 * (librtq's rtq_events_subscribe) shows one terminal event per task and a
 * redelivery for each extra attempt.
 *
 * Each test prints its figures (tasks in flight, tasks run twice, time to
 * recover).
 */
#include <jansson.h>

#include "rtq/client.h"
#include "test_broker2_helpers.h"

#define QUEUE "qe2e"
#define NTASKS 40

static void create_tasks(tb *t);

static pid_t start_worker(tb *t, const char *log_name) {
  return tb_start_worker(t, log_name, QUEUE, "2");
}

static bool worker_id_of(tb *t, pid_t pid, char out[TB_ID_MAX + 1]) {
  return tb_worker_id(t, rtq_keys2_workers(&K2).s, pid, out);
}

/* The event stream of the namespace, subscribed with the queue known, so
 * its channel is in the subscription from the start. */
typedef struct events {
  rtq_client *c;
  rtq_subscription *s;
} events;

static void events_open(tb *t, events *ev) {
  rtq_test_cmd_int(t->c, "SADD", rtq_keys2_queues(&K2).s, QUEUE, NULL);
  rtq_client_options o = {.redis_url = t->url, .ns = "rtq", .protocol = 2};
  assert_int_equal(rtq_client_new(&o, &ev->c), 0);
  assert_int_equal(rtq_events_subscribe(ev->c, &ev->s), 0);
}

static void events_close(events *ev) {
  rtq_subscription_free(ev->s);
  rtq_client_free(ev->c);
}

typedef struct tally {
  int terminal[NTASKS];
  int redelivered[NTASKS];
} tally;

/* Reads the events buffered so far (until 500 ms of silence) and counts,
 * per task, terminal events and redeliveries. */
static void drain_events(events *ev, tally *t) {
  memset(t, 0, sizeof *t);
  char *msg = NULL;
  for (int i = 0; i < 100000 && rtq_subscription_next(ev->s, 500, &msg) == 0; i++) {
    json_t *e = json_loads(msg, 0, NULL);
    free(msg);
    assert_non_null(e);
    const char *id = json_string_value(json_object_get(e, "id"));
    const char *st = json_string_value(json_object_get(e, "status"));
    int n = -1;
    if (id != NULL && st != NULL && sscanf(id, "e2e-%d", &n) == 1 && n >= 0 && n < NTASKS) {
      rtq_status s;
      if (rtq_status_parse(st, &s) == 0 && rtq_status_is_terminal(s)) t->terminal[n]++;
      if (json_is_true(json_object_get(e, "redelivered"))) t->redelivered[n]++;
    }
    json_decref(e);
  }
}

/* A broker, worker A (its id in wid_a) and NTASKS one-second tasks, once A
 * runs 15 of them; *in_flight is A's list then, after stop(A, sig). */
static pid_t begin(tb *t, const char *log_a, pid_t *a, char wid_a[TB_ID_MAX + 1], int sig,
                   int *in_flight) {
  pid_t broker = tb2_broker_start(t, "--sweep-interval", "100ms", "--heartbeat-ttl", "1s",
                                  "--lease-ttl", "1500ms");
  *a = start_worker(t, log_a);
  RTQ_TEST_WAIT_FOR(worker_id_of(t, *a, wid_a), 5000);
  create_tasks(t);
  rtq_key2 proc_a = rtq_keys2_processing(&K2, QUEUE, wid_a);
  RTQ_TEST_WAIT_FOR(tb2_len(t, proc_a) >= 15, 5000);
  assert_int_equal(rtq_test_kill(*a, sig), 0);
  *in_flight = (int)tb2_len(t, proc_a);
  return broker;
}

static void create_tasks(tb *t) {
  char args[32];
  tb2_opts o = {.name = "rtq.sleep", .args = args, .args_len = tb_sleep_args(args, 1.0)};
  tb2_create_n(t, QUEUE, "e2e", NTASKS, &o);
}

static int count_completed(tb *t) {
  int n = 0;
  for (int i = 0; i < NTASKS; i++) {
    char id[32];
    snprintf(id, sizeof id, "e2e-%04d", i);
    n += tb2_field_is(t, QUEUE, id, "s", "completed");
  }
  return n;
}

/* Every task completed once (the done list holds each id once, the
 * stream one terminal event), its attempt 1 or 2 and one more than its
 * redeliveries; returns how many ran twice, which the queue's redelivered
 * counter must match. */
static int assert_completed_once(tb *t, events *evs, int in_flight, const char *not_by) {
  tally ev;
  drain_events(evs, &ev);
  redisReply *r = rtq_test_command(t->c, "LRANGE",
                                   rtq_keys2_done(&K2, QUEUE, RTQ_STATUS_COMPLETED).s, "0", "-1", NULL);
  assert_int_equal(r->elements, NTASKS);
  freeReplyObject(r);
  int twice = 0;
  for (int i = 0; i < NTASKS; i++) {
    char id[32];
    snprintf(id, sizeof id, "e2e-%04d", i);
    char *a = tb2_field(t, QUEUE, id, "a");
    assert_non_null(a);
    assert_true(atoi(a) == 1 || atoi(a) == 2);
    twice += atoi(a) == 2;
    if (ev.terminal[i] != 1) fail_msg("%s: %d terminal events", id, ev.terminal[i]);
    assert_int_equal(atoi(a), 1 + ev.redelivered[i]);
    free(a);
    assert_true(rtq_test_cmd_int(t->c, "TTL", rtq_keys2_task(&K2, QUEUE, id).s, NULL) > 0);
    if (not_by != NULL) assert_false(tb2_field_is(t, QUEUE, id, "w", not_by));
  }
  assert_true(twice > 0 && twice <= in_flight);
  assert_int_equal(tb2_stat(t, QUEUE, "completed"), NTASKS);
  assert_int_equal(tb2_stat(t, QUEUE, "redelivered"), twice);
  return twice;
}

static void test_broker2_e2e_kill9_worker_tasks_completed_by_another(void **state) {
  tb *t = *state;
  pid_t a;
  char wid_a[TB_ID_MAX + 1];
  int in_flight;
  events evs;
  events_open(t, &evs);
  pid_t broker = begin(t, "worker-a", &a, wid_a, SIGKILL, &in_flight);
  rtq_key2 proc_a = rtq_keys2_processing(&K2, QUEUE, wid_a);
  assert_int_equal(rtq_test_wait_exit(a, 5000, NULL), 0);
  uint64_t killed_at = rtq_test_now_ms();
  pid_t b = start_worker(t, "worker-b");
  RTQ_TEST_WAIT_FOR(tb2_len(t, proc_a) == 0, 5000);
  uint64_t recovered_in = rtq_test_now_ms() - killed_at;
  RTQ_TEST_WAIT_FOR(count_completed(t) == NTASKS, 20000);
  int twice = assert_completed_once(t, &evs, in_flight, NULL);
  printf("v2 kill -9: %d of %d tasks in flight, recovered %llu ms after the kill (heartbeat ttl "
         "1000 ms), %d ran twice, 0 lost\n",
         in_flight, NTASKS, (unsigned long long)recovered_in, twice);
  RTQ_TEST_WAIT_FOR(!worker_id_of(t, a, wid_a), 5000);
  tb_broker_stop(t, broker);
  assert_int_equal(rtq_test_terminate(b, SIGTERM, 10000, NULL), 0);
  events_close(&evs);
}

static void test_broker2_e2e_paused_worker_late_results_rejected(void **state) {
  tb *t = *state;
  pid_t a;
  char wid_a[TB_ID_MAX + 1];
  int in_flight;
  events evs;
  events_open(t, &evs);
  pid_t broker = begin(t, "worker-paused", &a, wid_a, SIGSTOP, &in_flight);
  rtq_key2 proc_a = rtq_keys2_processing(&K2, QUEUE, wid_a);
  pid_t b = start_worker(t, "worker-b2");
  /* Past the heartbeat TTL the broker takes A's tasks back. */
  RTQ_TEST_WAIT_FOR(tb2_len(t, proc_a) == 0, 5000);
  RTQ_TEST_WAIT_FOR(count_completed(t) == NTASKS, 20000);
  /* A wakes up, its handlers finish, its results are fenced off. */
  assert_int_equal(rtq_test_kill(a, SIGCONT), 0);
  char log_a[512];
  snprintf(log_a, sizeof log_a, "%s/worker-paused.log", rtq_test_redis_dir(rtq_test_redis_default()));
  RTQ_TEST_WAIT_FOR(tb_file_contains(log_a, "late result rejected"), 10000);
  assert_int_equal(rtq_test_terminate(a, SIGTERM, 10000, NULL), 0);
  int twice = assert_completed_once(t, &evs, in_flight, wid_a);
  printf("v2 SIGSTOP: %d tasks redelivered from the paused worker, %d ran twice, late results "
         "rejected\n",
         in_flight, twice);
  tb_broker_stop(t, broker);
  assert_int_equal(rtq_test_terminate(b, SIGTERM, 10000, NULL), 0);
  events_close(&evs);
}

static int e2e_setup(void **state) { return tb_need_worker() != 0 ? -1 : tb2_setup(state); }

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_broker2_e2e_kill9_worker_tasks_completed_by_another,
                                      e2e_setup, tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker2_e2e_paused_worker_late_results_rejected,
                                      e2e_setup, tb_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
