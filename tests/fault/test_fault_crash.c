/*
 * test_fault_crash.c - handlers that crash, and tasks cancelled en masse
 * (issue 8, tests 4 and 11):
 *
 *   4.  segfaulting and aborting handlers under process isolation end
 *       failed WORKER_CRASH naming the signal; the worker and the tasks
 *       around them carry on
 *   11. 100 running tasks cancelled at once: cooperative handlers end
 *       cancelled within 5 s; handlers that ignore the request, under
 *       process isolation, are killed after the kill grace; and a worker
 *       that dies holding cancelled tasks does not get them run again by
 *       recovery
 */
#include <dirent.h>

#include "fault.h"

/* ---- 4. crashing handlers ------------------------------------------------ */

#define F4_TASKS 30

/* Every third task crashes, segfault and abort in turn; the rest sleep
 * 200..500 ms around them on the same worker. */
static bool f4_crashes(int i) { return i % 3 == 0; }
static const char *f4_how(int i) { return (i / 3) % 2 == 0 ? "segv" : "abort"; }

static void test_fault_crash_handlers_under_process_isolation(void **state) {
  fx *f = fx_new(state, "fault4", NULL);
  fx_events *ev = fx_events_start(f, F4_TASKS);
  fx_proc *broker = fx_broker(f, "broker", NULL);
  fx_proc *w = fx_worker(f, "worker", "--isolation", "process", "--concurrency", "8", NULL);
  pid_t pid = w->pid;
  for (int i = 0; i < F4_TASKS; i++) {
    if (f4_crashes(i)) {
      rtq_args *a = rtq_args_new();
      rtq_args_set_str(a, "how", f4_how(i));
      char id[RTQ_TASK_ID_SIZE];
      fx_task_id(f, i, id, sizeof id);
      rtq_task_options o = {.id = id};
      assert_int_equal(rtq_create_task(f->cl, "rtq.crash", a, &o, NULL, NULL), 0);
      rtq_args_free(a);
    } else {
      fx_sleep_args sa = {.seconds = 0.2, .spread = 0.3};
      fx_enqueue(f, i, 1, "rtq.sleep", fx_sleep_fill, &sa);
    }
  }
  RTQ_TEST_WAIT_FOR(fx_events_terminal(ev) == F4_TASKS, 20000);

  int segv = 0, abrt = 0, completed = 0;
  for (int i = 0; i < F4_TASKS; i++) {
    char *st = fx_field(f, i, "status");
    if (!f4_crashes(i)) {
      fx_check(f, st != NULL && strcmp(st, "completed") == 0, "task %d next to the crashes: %s", i, st ? st : "-");
      completed++;
      free(st);
      continue;
    }
    char *code = fx_field(f, i, "error_code"), *msg = fx_field(f, i, "error_message"),
         *tb = fx_field(f, i, "error_traceback");
    const char *sig = strcmp(f4_how(i), "segv") == 0 ? "SIGSEGV" : "SIGABRT";
    fx_check(f, st != NULL && strcmp(st, "failed") == 0, "crashed task %d: status %s", i, st ? st : "-");
    fx_check(f, code != NULL && strcmp(code, "WORKER_CRASH") == 0, "crashed task %d: code %s", i, code ? code : "-");
    /* Under UBSan the segfaulting store is caught first and the child
     * exits 1: still WORKER_CRASH, but no signal to name. */
    bool named = !(FX_SANITIZED && strcmp(sig, "SIGSEGV") == 0);
    if (named) {
      fx_check(f, msg != NULL && strstr(msg, sig) != NULL, "crashed task %d: message names %s: %s", i, sig,
               msg ? msg : "-");
      fx_check(f, tb != NULL && strstr(tb, sig) != NULL, "crashed task %d: traceback names %s", i, sig);
    }
    if (strcmp(sig, "SIGSEGV") == 0) segv++;
    else abrt++;
    if (i == 0) fx_figure(f, "a crashed task's error: %s: %s", code, msg);
    free(st);
    free(code);
    free(msg);
    free(tb);
  }
  fx_events_assert_once(ev);
  fx_check(f, fx_alive(w) && w->pid == pid, "the worker survives its handlers' crashes");
  assert_int_equal(fx_stat(f, "default", "failed"), segv + abrt);
  assert_int_equal(fx_stat(f, "default", "completed"), completed);
  fx_figure(f,
            "process isolation: %d handlers segfaulted and %d aborted: each failed WORKER_CRASH naming the signal%s; "
            "the %d tasks around them completed on the same worker (pid unchanged)",
            segv, abrt, FX_SANITIZED ? " (SIGSEGV not named: UBSan exits first)" : "", completed);
  assert_int_equal(fx_stop(w, 10000), 0);
  assert_int_equal(fx_stop(broker, 10000), 0);
}

/* ---- 11. mass cancellation --------------------------------------------------- */

#define F11_TASKS 100
#define F11_KILL_GRACE_MS 1000

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Cancels tasks 0..F11_TASKS-1 (each must be running: requested = 1),
 * recording when each request returned. */
static void f11_cancel_all(fx *f, uint64_t *asked) {
  char id[RTQ_TASK_ID_SIZE];
  for (int i = 0; i < F11_TASKS; i++) {
    fx_task_id(f, i, id, sizeof id);
    int requested = -1;
    int rc = rtq_cancel_task(f->cl, id, &requested);
    if (rc != 0) fx_fail(f, "cancel %s: %s (%s)", id, rtq_err_name(rc), rtq_client_errstr(f->cl));
    fx_check(f, requested == 1, "%s was running when cancelled", id);
    asked[i] = rtq_test_now_ms();
  }
}

/* Child processes of pid still alive (from /proc). */
static int children_of(pid_t pid) {
  DIR *d = opendir("/proc");
  if (d == NULL) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
    char path[300], buf[512];
    snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
    FILE *fp = fopen(path, "r");
    if (fp == NULL) continue;
    size_t len = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[len] = '\0';
    /* "pid (comm) state ppid ...": comm may hold spaces, so parse after ')'. */
    char *rp = strrchr(buf, ')');
    char st;
    int ppid;
    if (rp != NULL && sscanf(rp + 1, " %c %d", &st, &ppid) == 2 && ppid == pid && st != 'Z') n++;
  }
  closedir(d);
  return n;
}

/* Waits for all to end, then checks each ended cancelled once, within
 * [lo, hi] ms of its request; returns the latencies' max and median. */
static void f11_check(fx *f, fx_events *ev, const uint64_t *asked, uint64_t lo, uint64_t hi, uint64_t *max,
                      uint64_t *median) {
  RTQ_TEST_WAIT_FOR(fx_events_terminal(ev) == F11_TASKS, (int)hi + 10000);
  uint64_t lat[F11_TASKS];
  for (int i = 0; i < F11_TASKS; i++) {
    fx_rec r = fx_events_get(ev, i);
    fx_check(f, r.last == RTQ_STATUS_CANCELLED, "task %d ended %s", i,
             r.last >= 0 ? rtq_status_name((rtq_status)r.last) : "-");
    lat[i] = r.terminal_ms > asked[i] ? r.terminal_ms - asked[i] : 0;
    fx_check(f, lat[i] >= lo && lat[i] <= hi, "task %d cancelled after %llu ms, expected %llu..%llu", i,
             (unsigned long long)lat[i], (unsigned long long)lo, (unsigned long long)hi);
  }
  qsort(lat, F11_TASKS, sizeof lat[0], cmp_u64);
  *max = lat[F11_TASKS - 1];
  *median = lat[F11_TASKS / 2];
  assert_int_equal(fx_count_status(f, F11_TASKS, RTQ_STATUS_CANCELLED), F11_TASKS);
  assert_int_equal(fx_stat(f, "default", "cancelled"), F11_TASKS);
  fx_events_assert_once(ev);
}

static void test_fault_crash_mass_cancel_cooperative(void **state) {
  fx *f = fx_new(state, "fault11a", NULL);
  fx_events *ev = fx_events_start(f, F11_TASKS);
  fx_proc *broker = fx_broker(f, "broker", NULL);
  fx_proc *w = fx_worker(f, "worker", "--concurrency", "100", NULL);
  fx_sleep_args sa = {.seconds = 60, .steps = 600};
  fx_enqueue(f, 0, F11_TASKS, "rtq.sleep", fx_sleep_fill, &sa);
  RTQ_TEST_WAIT_FOR(fx_events_claimed(ev) == F11_TASKS, 10000);
  uint64_t asked[F11_TASKS], max, median;
  uint64_t t0 = rtq_test_now_ms();
  f11_cancel_all(f, asked);
  f11_check(f, ev, asked, 0, 5000, &max, &median);
  uint64_t all = rtq_test_now_ms() - t0;
  fx_check(f, fx_alive(w), "the worker keeps running");
  fx_figure(f,
            "%d running tasks cancelled (cooperative handlers, thread isolation): all cancelled within %.2f s "
            "of the first request; per task max %llu ms, median %llu ms (limit 5000 ms)",
            F11_TASKS, (double)all / 1000.0, (unsigned long long)max, (unsigned long long)median);
  assert_int_equal(fx_stop(w, 10000), 0);
  assert_int_equal(fx_stop(broker, 10000), 0);
}

static void test_fault_crash_mass_cancel_ignored_process(void **state) {
  fx *f = fx_new(state, "fault11b", NULL);
  fx_events *ev = fx_events_start(f, F11_TASKS);
  fx_proc *broker = fx_broker(f, "broker", NULL);
  fx_proc *w = fx_worker(f, "worker", "--concurrency", "100", "--isolation", "process", "--kill-grace", "1s", NULL);
  fx_sleep_args sa = {.seconds = 60, .steps = 60, .ignore_cancel = true};
  fx_enqueue(f, 0, F11_TASKS, "rtq.sleep", fx_sleep_fill, &sa);
  RTQ_TEST_WAIT_FOR(fx_events_claimed(ev) == F11_TASKS, 15000);
  RTQ_TEST_WAIT_FOR(children_of(w->pid) == F11_TASKS, 5000);
  uint64_t asked[F11_TASKS], max, median;
  f11_cancel_all(f, asked);
  /* Nothing ends before the kill grace (the handlers ignore the flag). */
  f11_check(f, ev, asked, F11_KILL_GRACE_MS - 100, F11_KILL_GRACE_MS + 5000, &max, &median);
  char *msg = fx_field(f, 0, "error_message");
  fx_check(f, msg != NULL && strstr(msg, "killed") != NULL, "message says the handler was killed: %s",
           msg ? msg : "-");
  RTQ_TEST_WAIT_FOR(children_of(w->pid) == 0, 5000);
  fx_check(f, fx_alive(w), "the worker keeps running");
  fx_figure(f,
            "%d running tasks cancelled, handlers ignoring it, process isolation, kill grace %d ms: all killed "
            "and cancelled, per task max %llu ms, median %llu ms after the request; no child left (\"%s\")",
            F11_TASKS, F11_KILL_GRACE_MS, (unsigned long long)max, (unsigned long long)median, msg);
  free(msg);
  assert_int_equal(fx_stop(w, 10000), 0);
  assert_int_equal(fx_stop(broker, 10000), 0);
}

/*
 * The resurrection case: worker A holds 100 running tasks and is frozen,
 * so the cancel requests reach Redis but not the handlers; then A dies.
 * Recovery finds 100 running tasks with their cancel flag set in A's list.
 * Workers B and C are idle and blocked on the queue the whole time. None
 * of the 100 may run again: each must end cancelled without a second claim.
 */
static void test_fault_crash_recovery_never_resurrects_cancelled(void **state) {
  fx *f = fx_new(state, "fault11c", NULL);
  fx_events *ev = fx_events_start(f, F11_TASKS);
  fx_proc *broker = fx_broker(f, "broker", NULL);
  fx_proc *a = fx_worker(f, "worker-a", "--concurrency", "100", NULL);
  fx_sleep_args sa = {.seconds = 60, .steps = 600};
  fx_enqueue(f, 0, F11_TASKS, "rtq.sleep", fx_sleep_fill, &sa);
  RTQ_TEST_WAIT_FOR(fx_events_claimed(ev) == F11_TASKS, 10000);
  /* Two idle workers, each with a blocking pop waiting on the queue. */
  fx_proc *b = fx_worker(f, "worker-b", "--concurrency", "100", NULL);
  fx_proc *c = fx_worker(f, "worker-c", "--concurrency", "100", NULL);

  assert_int_equal(rtq_test_kill(a->pid, SIGSTOP), 0);
  uint64_t asked[F11_TASKS];
  f11_cancel_all(f, asked);
  uint64_t t_kill = rtq_test_now_ms();
  fx_kill9(a);
  RTQ_TEST_WAIT_FOR(fx_events_terminal(ev) == F11_TASKS, 15000);
  uint64_t took = rtq_test_now_ms() - t_kill;

  fx_tally t = fx_events_tally(ev);
  char names[256] = "";
  size_t used = 0;
  for (int i = 0; i < F11_TASKS && used < 200; i++) {
    fx_rec r = fx_events_get(ev, i);
    if (r.running > 1) used += (size_t)snprintf(names + used, sizeof names - used, " %s-%04d", f->prefix, i);
  }
  fx_figure(f,
            "%d running tasks cancelled while their worker was frozen, then the worker killed -9 with two idle "
            "workers waiting on the queue: %d ended cancelled, %d claimed again by recovery (ran twice), %d "
            "completed; all ended %.1f s after the kill",
            F11_TASKS, t.by_status[RTQ_STATUS_CANCELLED], t.ran_twice, t.by_status[RTQ_STATUS_COMPLETED],
            (double)took / 1000.0);
  fx_check(f, t.ran_twice == 0, "recovery resurrected %d cancelled tasks (claimed again by worker B or C):%s",
           t.ran_twice, names);
  assert_int_equal(fx_count_status(f, F11_TASKS, RTQ_STATUS_CANCELLED), F11_TASKS);
  fx_events_assert_once(ev);
  assert_int_equal(fx_stop(b, 10000), 0);
  assert_int_equal(fx_stop(c, 10000), 0);
  assert_int_equal(fx_stop(broker, 10000), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_fault_crash_handlers_under_process_isolation, fx_teardown),
      cmocka_unit_test_teardown(test_fault_crash_mass_cancel_cooperative, fx_teardown),
      cmocka_unit_test_teardown(test_fault_crash_mass_cancel_ignored_process, fx_teardown),
      cmocka_unit_test_teardown(test_fault_crash_recovery_never_resurrects_cancelled, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
