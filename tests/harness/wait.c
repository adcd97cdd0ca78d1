/* wait.c - polling with deadlines, and the atexit cleanup hook. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

uint64_t rtq_test_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void rtq__test_sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* Starts fast, so a condition that is nearly true costs ~1 ms, and backs
 * off to 20 ms, so a long wait does not spin on Redis. */
void rtq__test_poll_pause(int i) {
  int ms = i < 5 ? 1 << i : 20;
  rtq__test_sleep_ms(ms > 20 ? 20 : ms);
}

bool rtq_test_wait_until(bool (*pred)(void *arg), void *arg, int timeout_ms) {
  uint64_t deadline = rtq_test_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
  for (int i = 0;; i++) {
    if (pred(arg)) return true;
    if (rtq_test_now_ms() >= deadline) return pred(arg);
    rtq__test_poll_pause(i);
  }
}

static pid_t owner;

/* Only the process that started the servers stops them: a test that forks
 * a helper which then calls exit() must not tear down its parent's world. */
static void cleanup(void) {
  if (getpid() != owner) return;
  rtq__test_redis_stop_all();
  rtq__test_process_kill_all();
}

void rtq__test_cleanup_register(void) {
  if (owner != 0) return;
  owner = getpid();
  /* hiredis 0.14 writes with write(2): a write to a server that just died
   * would kill the test with SIGPIPE instead of failing the command.
   * Spawned children get the default disposition back (process.c). */
  signal(SIGPIPE, SIG_IGN);
  atexit(cleanup);
}
