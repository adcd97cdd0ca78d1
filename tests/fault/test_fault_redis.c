/*
 * test_fault_redis.c - Redis itself failing (issue 8, tests 6, 7, 12):
 *
 *   6.  kill -9 of redis-server under load (appendonly yes, fsync always),
 *       restarted on the same port: workers and broker reconnect by
 *       themselves, and every task whose creation was acknowledged before
 *       the crash ends terminal
 *   7.  redis-server SIGSTOPped for longer than every command timeout: no
 *       process hangs (a call returns an error in time, a worker asked to
 *       stop exits), and all of them carry on after SIGCONT
 *   12. a small maxmemory with noeviction: enqueue returns RTQ_EOOM with
 *       Redis's words, nothing is half-written or dropped, and everything
 *       accepted completes once memory is available again
 */
#include "fault.h"

/* After Redis went away, f->c's socket is dead and its next command would
 * fail the test: PING (reconnecting) until Redis answers. */
static void fx_reconnect(fx *f, int timeout_ms) {
  uint64_t deadline = rtq_test_now_ms() + (uint64_t)timeout_ms;
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "PING");
  while (rtq_conn_command(f->c, &a, NULL) != 0) {
    if (rtq_test_now_ms() > deadline) fx_fail(f, "redis did not answer within %d ms", timeout_ms);
    fx_sleep_ms(20);
  }
  rtq_argv_destroy(&a);
}

static uint64_t redis_now(fx *f) {
  uint64_t ms = 0;
  assert_int_equal(rtq_conn_time_ms(f->c, &ms), 0);
  return ms;
}

/* The worker's last heartbeat is at or after ms (Redis time). */
static bool beat_since(fx *f, const fx_proc *w, uint64_t ms) {
  char *s = rtq_test_cmd_str(f->c, "ZSCORE", rtq_keys2_workers(&f->k).s, w->id, NULL);
  bool yes = s != NULL && strtod(s, NULL) >= (double)ms;
  free(s);
  return yes;
}

/* ---- 6. Redis killed under load ------------------------------------------ */

#define F6_TASKS 600

/* A producer thread: creates tasks 0..F6_TASKS-1 one by one, about 250 a
 * second, through Redis going down and coming back; rc[i] is what
 * rtq_create_task said (0: acknowledged). */
typedef struct f6_producer {
  fx *f;
  rtq_client *cl;
  pthread_t thread;
  int rc[F6_TASKS];
  atomic_int made;          /* calls returned so far */
  atomic_int acked;
  uint64_t finished_ms;
} f6_producer;

static void *f6_produce(void *arg) {
  f6_producer *p = arg;
  uint64_t deadline = rtq_test_now_ms() + 60000;
  for (int i = 0; i < F6_TASKS && rtq_test_now_ms() < deadline; i++) {
    char id[RTQ_TASK_ID_SIZE];
    fx_task_id(p->f, i, id, sizeof id);
    rtq_args *a = rtq_args_new();
    rtq_task_options o = {.id = id};
    fx_sleep_args sa = {.seconds = 0.2, .spread = 0.4};
    fx_sleep_fill(i, a, &o, &sa);
    p->rc[i] = rtq_create_task(p->cl, "rtq.sleep", a, &o, NULL, NULL);
    rtq_args_free(a);
    if (p->rc[i] == 0) atomic_fetch_add(&p->acked, 1);
    atomic_fetch_add(&p->made, 1);
    fx_sleep_ms(p->rc[i] == 0 ? 4 : 50);
  }
  p->finished_ms = rtq_test_now_ms();
  return NULL;
}

static void test_fault_redis_kill9_and_restart(void **state) {
  rtq_test_redis_options ro = {.appendonly = true};
  fx *f = fx_new(state, "fault6", &ro);
  fx_events *ev = fx_events_start(f, F6_TASKS);
  fx_proc *broker = fx_broker(f, "broker", "--command-timeout", "1000ms", NULL);
  fx_proc *a = fx_worker(f, "worker-a", "--concurrency", "20", "--command-timeout", "1s", "--connect-timeout",
                         "500ms", NULL);
  fx_proc *b = fx_worker(f, "worker-b", "--concurrency", "20", "--command-timeout", "1s", "--connect-timeout",
                         "500ms", NULL);
  pid_t pa = a->pid, pb = b->pid, pbr = broker->pid;

  f6_producer *p = calloc(1, sizeof *p);
  assert_non_null(p);
  p->f = f;
  rtq_client_options co;
  memset(&co, 0, sizeof co);
  co.redis_url = f->url;
  co.connect_timeout_ms = 500;
  co.command_timeout_ms = 1000;
  assert_int_equal(rtq_client_new(&co, &p->cl), 0);
  assert_int_equal(pthread_create(&p->thread, NULL, f6_produce, p), 0);

  RTQ_TEST_WAIT_FOR(atomic_load(&p->acked) >= 200, 20000);
  int ended_before = fx_events_terminal(ev), running_before = fx_events_running(ev);
  uint64_t t_kill = rtq_test_now_ms();
  assert_int_equal(rtq_test_redis_kill9(f->redis), 0);
  /* Every call that returned before the kill was acknowledged or not;
   * anything made from here on is judged by its own rc. */
  int made_at_kill = atomic_load(&p->made);
  int acked_at_kill = 0;
  for (int i = 0; i < made_at_kill; i++) acked_at_kill += p->rc[i] == 0;
  fx_sleep_ms(300); /* let every process notice it is down */
  assert_int_equal(rtq_test_redis_restart(f->redis), 0);
  uint64_t t_up = rtq_test_now_ms();
  fx_reconnect(f, 5000);
  uint64_t up_redis = redis_now(f);

  pthread_join(p->thread, NULL);
  rtq_client_free(p->cl);
  int acked = 0, failed = 0;
  for (int i = 0; i < F6_TASKS; i++) {
    if (p->rc[i] == 0) acked++;
    else failed++;
  }
  /* Workers and broker reconnected by themselves: fresh heartbeats and a
   * held lease, with the same pids. */
  RTQ_TEST_WAIT_FOR(beat_since(f, a, up_redis) && beat_since(f, b, up_redis), 10000);
  RTQ_TEST_WAIT_FOR(fx_leads(f, broker), 10000);
  fx_check(f, a->pid == pa && b->pid == pb && broker->pid == pbr && fx_alive(a) && fx_alive(b) && fx_alive(broker),
           "the processes outlive the crash");

  /* Every acknowledged task ends terminal; so does every other task that
   * exists (an unacknowledged create may have happened). */
  int st[F6_TASKS];
  uint64_t deadline = rtq_test_now_ms() + 30000;
  int pending_acked;
  for (;;) {
    fx_statuses(f, 0, F6_TASKS, st);
    pending_acked = 0;
    for (int i = 0; i < F6_TASKS; i++) {
      bool ended = st[i] >= 0 && rtq_status_is_terminal((rtq_status)st[i]);
      if ((p->rc[i] == 0 || st[i] >= 0) && !ended) pending_acked++;
    }
    if (pending_acked == 0 || rtq_test_now_ms() > deadline) break;
    fx_sleep_ms(50);
  }
  uint64_t t_done = rtq_test_now_ms();
  int lost = 0, exist_unacked = 0, terminal = 0, completed = 0;
  for (int i = 0; i < F6_TASKS; i++) {
    if (p->rc[i] == 0 && st[i] < 0) lost++;
    if (p->rc[i] != 0 && st[i] >= 0) exist_unacked++;
    if (st[i] >= 0 && rtq_status_is_terminal((rtq_status)st[i])) terminal++;
    if (st[i] == RTQ_STATUS_COMPLETED) completed++;
  }
  fx_tally t = fx_events_tally(ev);
  long long stat_terminal = fx_stat_terminal(f, "default");
  uint64_t messages, resubscribes;
  fx_events_counts(ev, &messages, &resubscribes);
  fx_figure(f,
            "appendonly yes: redis-server killed -9 with %d creates acknowledged (%d ended, %d running), restarted on "
            "the same port after %.1f s; %d of %d creates acknowledged in all (%d refused while down, %d of "
            "those exist anyway); %d acknowledged lost, %d still not terminal; %d terminal (%d completed), "
            "queue counters terminal transitions %lld; %d redelivered, %d ran twice, 0 ended twice in %llu events "
            "(the recorder subscribed again %llu time(s)); all done %.1f s after the restart",
            acked_at_kill, ended_before, running_before, (double)(t_up - t_kill) / 1000.0, acked, F6_TASKS, failed, exist_unacked,
            lost, pending_acked, terminal, completed, stat_terminal, t.redelivered, t.ran_twice,
            (unsigned long long)messages, (unsigned long long)resubscribes,
            (double)(t_done - t_up) / 1000.0);
  fx_check(f, lost == 0, "%d acknowledged tasks lost", lost);
  fx_check(f, pending_acked == 0, "%d tasks not terminal after 30 s", pending_acked);
  fx_check(f, stat_terminal == terminal, "one terminal transition per task: stats %lld, tasks %d", stat_terminal,
           terminal);
  fx_check(f, t.ended_twice == 0, "%d tasks with two terminal events", t.ended_twice);
  fx_check(f, acked_at_kill > 0 && failed > 0, "the crash happened under load (acked %d, refused %d)",
           acked_at_kill, failed);
  free(p);
  assert_int_equal(fx_stop(a, 10000), 0);
  assert_int_equal(fx_stop(b, 10000), 0);
  assert_int_equal(fx_stop(broker, 10000), 0);
}

/* ---- 7. Redis frozen ----------------------------------------------------- */

#define F7_TASKS 300
#define F7_MORE 10
#define F7_FREEZE_MS 6000

static void test_fault_redis_sigstop_past_command_timeout(void **state) {
  fx *f = fx_new(state, "fault7", NULL);
  fx_events *ev = fx_events_start(f, F7_TASKS + F7_MORE);
  /* A heartbeat TTL longer than the freeze: this test is about hangs; a
   * freeze past the TTL is a dead worker, which tests 1 and 2 cover. */
  fx_proc *broker = fx_broker(f, "broker", "--command-timeout", "1000ms", "--heartbeat-ttl", "10s", NULL);
  const char *wflags[] = {"--concurrency", "20", "--command-timeout", "1s", "--connect-timeout", "500ms",
                          "--heartbeat-ttl", "10s"};
  fx_proc *a = fx_worker(f, "worker-a", wflags[0], wflags[1], wflags[2], wflags[3], wflags[4], wflags[5], wflags[6],
                         wflags[7], NULL);
  fx_proc *b = fx_worker(f, "worker-b", wflags[0], wflags[1], wflags[2], wflags[3], wflags[4], wflags[5], wflags[6],
                         wflags[7], NULL);
  /* An idle worker on another queue, to be stopped while Redis is frozen. */
  fx_proc *c = fx_worker(f, "worker-c", wflags[0], wflags[1], wflags[2], wflags[3], wflags[4], wflags[5], wflags[6],
                         wflags[7], "--queue", "other", NULL);
  fx_sleep_args sa = {.seconds = 0.1, .spread = 0.2};
  fx_enqueue(f, 0, F7_TASKS, "rtq.sleep", fx_sleep_fill, &sa);
  RTQ_TEST_WAIT_FOR(fx_events_terminal(ev) >= 60, 10000);

  int ended_before = fx_events_terminal(ev);
  uint64_t t_freeze = rtq_test_now_ms();
  assert_int_equal(rtq_test_redis_sigstop(f->redis), 0);

  /* A worker asked to stop while Redis is frozen exits instead of hanging. */
  assert_int_equal(rtq_test_kill(c->pid, SIGTERM), 0);
  /* A producer's call returns an error instead of waiting for Redis. */
  char id[RTQ_TASK_ID_SIZE];
  fx_task_id(f, F7_TASKS + F7_MORE + 1, id, sizeof id);
  rtq_task_options o = {.id = id};
  uint64_t t0 = rtq_test_now_ms();
  int create_rc = rtq_create_task(f->cl, "rtq.noop", NULL, &o, NULL, NULL);
  uint64_t create_ms = rtq_test_now_ms() - t0;
  int c_status = 0;
  int64_t left = (int64_t)(t_freeze + F7_FREEZE_MS - 200) - (int64_t)rtq_test_now_ms();
  int c_rc = rtq_test_wait_exit(c->pid, left > 0 ? (int)left : 0, &c_status);
  uint64_t c_exit_ms = rtq_test_now_ms() - t_freeze;
  if (c_rc == 0) c->pid = -1;
  /* Hold the freeze for its full length, whatever happened above. */
  while (rtq_test_now_ms() < t_freeze + F7_FREEZE_MS) fx_sleep_ms(20);
  assert_int_equal(rtq_test_redis_sigcont(f->redis), 0);
  uint64_t t_thaw = rtq_test_now_ms();

  fx_check(f, create_rc == RTQ_ECONN || create_rc == RTQ_ETIMEDOUT, "create while frozen: %s",
           rtq_err_name(create_rc));
  /* rtq_create_task sends once more after RTQ_ECONN (the same id makes
   * that harmless), so the bound is two command timeouts plus a connect. */
  fx_check(f, create_ms <= 2 * 2000 + 2000 + 500, "create while frozen returned after %llu ms",
           (unsigned long long)create_ms);
  fx_check(f, c_rc == 0, "the idle worker exited while Redis was frozen (SIGTERM %llu ms ago)",
           (unsigned long long)c_exit_ms);

  /* Everything carries on. */
  uint64_t thaw_redis = redis_now(f);
  RTQ_TEST_WAIT_FOR(beat_since(f, a, thaw_redis) && beat_since(f, b, thaw_redis), 10000);
  RTQ_TEST_WAIT_FOR(fx_leads(f, broker), 10000);
  fx_enqueue(f, F7_TASKS, F7_MORE, "rtq.noop", NULL, NULL);
  RTQ_TEST_WAIT_FOR(fx_events_terminal(ev) == F7_TASKS + F7_MORE, 30000);
  uint64_t t_done = rtq_test_now_ms();
  assert_int_equal(fx_count_status(f, F7_TASKS + F7_MORE, RTQ_STATUS_COMPLETED), F7_TASKS + F7_MORE);
  fx_events_assert_once(ev);
  /* The create that timed out may or may not have happened; it counts. */
  long long extra = rtq_test_cmd_int(f->c, "EXISTS", rtq_keys2_task(&f->k, FX_QUEUE, id).s, NULL);
  assert_int_equal(fx_stat_terminal(f, "default"), F7_TASKS + F7_MORE + extra);
  fx_tally t = fx_events_tally(ev);
  fx_figure(f,
            "redis-server SIGSTOPped %.1f s (command timeouts: workers 1 s, broker 1 s, client 2 s) with %d of "
            "%d tasks ended: a create returned %s after %llu ms (it is sent twice); an idle worker got SIGTERM and exited (status "
            "%d) %.1f s into the freeze; after SIGCONT workers beat again and the broker led again, all %d "
            "tasks ended %.1f s after the thaw, each exactly once, %d redelivered",
            (double)F7_FREEZE_MS / 1000.0, ended_before, F7_TASKS, rtq_err_name(create_rc),
            (unsigned long long)create_ms, WIFEXITED(c_status) ? WEXITSTATUS(c_status) : -1,
            (double)c_exit_ms / 1000.0, F7_TASKS + F7_MORE, (double)(t_done - t_thaw) / 1000.0, t.redelivered);
  assert_int_equal(fx_stop(a, 10000), 0);
  assert_int_equal(fx_stop(b, 10000), 0);
  assert_int_equal(fx_stop(broker, 10000), 0);
}

/* ---- 12. out of memory ----------------------------------------------------- */

#define F12_MAX 20000
#define F12_PAD 1024
#define F12_HOLD_MS 2500

static void test_fault_redis_out_of_memory(void **state) {
  rtq_test_redis_options ro = {.maxmemory = "4mb"};
  fx *f = fx_new(state, "fault12", &ro);
  fx_events *ev = fx_events_start(f, F12_MAX);
  fx_proc *broker = fx_broker(f, "broker", NULL);
  /* One slot, busy with task 0 while the rest pile up and memory runs out. */
  fx_proc *w = fx_worker(f, "worker", "--concurrency", "1", NULL);
  fx_sleep_args sa = {.seconds = 6.0};
  fx_enqueue(f, 0, 1, "rtq.sleep", fx_sleep_fill, &sa);
  RTQ_TEST_WAIT_FOR(fx_events_claimed(ev) == 1, 5000);

  char pad[F12_PAD + 1];
  memset(pad, 'x', F12_PAD);
  pad[F12_PAD] = '\0';
  int *rc = calloc(F12_MAX, sizeof *rc);
  assert_non_null(rc);
  int n = 1, accepted = 1, refused = 0;
  char oom_msg[512] = "";
  uint64_t deadline = rtq_test_now_ms() + 60000;
  /* Until ten creates in a row are refused. */
  for (int in_a_row = 0; n < F12_MAX && in_a_row < 10 && rtq_test_now_ms() < deadline; n++) {
    char id[RTQ_TASK_ID_SIZE];
    fx_task_id(f, n, id, sizeof id);
    rtq_args *a = rtq_args_new();
    rtq_args_set_str(a, "pad", pad);
    rtq_task_options o = {.id = id};
    rc[n] = rtq_create_task(f->cl, "rtq.echo", a, &o, NULL, NULL);
    rtq_args_free(a);
    if (rc[n] == 0) {
      accepted++;
      in_a_row = 0;
    } else if (rc[n] == RTQ_EOOM) {
      if (refused++ == 0) snprintf(oom_msg, sizeof oom_msg, "%s", rtq_client_errstr(f->cl));
      in_a_row++;
    } else {
      fx_fail(f, "create %d: %s (%s), expected 0 or RTQ_EOOM", n, rtq_err_name(rc[n]), rtq_client_errstr(f->cl));
    }
  }
  fx_check(f, refused >= 10, "creates were refused (accepted %d of %d)", accepted, n);
  fx_check(f, strstr(oom_msg, "OOM") != NULL && strstr(oom_msg, "maxmemory") != NULL,
           "the error carries Redis's words: %s", oom_msg);

  /* Nothing half-written: each accepted task is a hash plus its id in the queue,
   * each refused one left nothing. */
  int *st = calloc((size_t)n, sizeof *st);
  assert_non_null(st);
  fx_statuses(f, 0, n, st);
  int half = 0, missing = 0;
  for (int i = 1; i < n; i++) {
    if (rc[i] == 0 && st[i] != RTQ_STATUS_PENDING) missing++;
    if (rc[i] != 0 && st[i] >= 0) half++;
  }
  fx_check(f, missing == 0 && half == 0, "accepted but missing %d, refused but present %d", missing, half);
  long long queued = fx_llen(f, rtq_keys2_queue(&f->k, FX_QUEUE));
  fx_check(f, queued == accepted - 1, "queue holds %lld ids for %d accepted tasks", queued, accepted - 1);

  /* Hold the out-of-memory state for longer than the heartbeat TTL: the
   * worker's heartbeats and claims are refused, the broker takes it for
   * dead. Nothing may be lost or dead-lettered meanwhile. */
  rtq_test_cmd_ok(f->c, "CONFIG", "SET", "maxmemory", "1mb", NULL);
  uint64_t t_hold = rtq_test_now_ms();
  RTQ_TEST_WAIT_FOR(fx_log_count(w, "OOM") > 0, 5000);
  while (rtq_test_now_ms() < t_hold + F12_HOLD_MS) fx_sleep_ms(20);
  fx_check(f, fx_alive(w) && fx_alive(broker), "the worker and the broker survive OOM replies");
  int worker_refusals = fx_log_count(w, "OOM");
  assert_int_equal(fx_llen(f, rtq_keys2_dead(&f->k, FX_QUEUE)), 0);

  /* An operator makes room; everything accepted completes, once. */
  uint64_t t_room = rtq_test_now_ms();
  rtq_test_cmd_ok(f->c, "CONFIG", "SET", "maxmemory", "0", NULL);
  RTQ_TEST_WAIT_FOR(fx_events_terminal(ev) == accepted, 60000);
  uint64_t drain_ms = rtq_test_now_ms() - t_room;
  int completed = 0;
  fx_statuses(f, 0, n, st);
  for (int i = 0; i < n; i++) completed += st[i] == RTQ_STATUS_COMPLETED;
  fx_check(f, completed == accepted, "%d of %d accepted tasks completed", completed, accepted);
  assert_int_equal(fx_stat(f, "default", "completed"), accepted);
  assert_int_equal(fx_stat_terminal(f, "default"), accepted);
  assert_int_equal(fx_llen(f, rtq_keys2_dead(&f->k, FX_QUEUE)), 0);
  fx_tally t = fx_events_tally(ev);
  fx_check(f, t.ended_twice == 0, "each task ended once");
  fx_figure(f,
            "maxmemory 4mb, noeviction, a 1 KiB argument per task: %d creates accepted, then %d refused with "
            "RTQ_EOOM (\"%s\"); 0 half-written; memory held full %.1f s (maxmemory 1mb): %d refused writes in "
            "the worker's log, %d task(s) redelivered by the broker; after CONFIG SET maxmemory 0 all %d "
            "accepted tasks completed in %.1f s, each once, 0 dropped, 0 dead-lettered",
            accepted, refused, oom_msg, (double)F12_HOLD_MS / 1000.0, worker_refusals, t.redelivered, accepted,
            (double)drain_ms / 1000.0);
  free(rc);
  free(st);
  assert_int_equal(fx_stop(w, 10000), 0);
  assert_int_equal(fx_stop(broker, 10000), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_fault_redis_kill9_and_restart, fx_teardown),
      cmocka_unit_test_teardown(test_fault_redis_sigstop_past_command_timeout, fx_teardown),
      cmocka_unit_test_teardown(test_fault_redis_out_of_memory, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
