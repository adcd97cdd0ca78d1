/*
 * test_worker_logic.c - the worker's pure logic, without a loop or Redis:
 * pop-round planning (weights, strict priority, eligibility, idle rounds),
 * the progress coalescer, the child-pipe framing, and the options'
 * redis_url_file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../worker/frame.h"
#include "../../worker/progress.h"
#include "../../worker/queues.h"
#include "harness.h"
#include "rtq/worker.h"

static void make_queues(rtq__queues *qs, bool strict, int n, ...) {
  rtq_worker_queue list[8];
  va_list ap;
  va_start(ap, n);
  for (int i = 0; i < n; i++) {
    list[i].name = va_arg(ap, const char *);
    list[i].weight = va_arg(ap, int);
  }
  va_end(ap);
  char err[128];
  assert_int_equal(rtq__queues_init(qs, list, (size_t)n, strict, err, sizeof err), 0);
}

static void test_worker_queues_reject_bad_input(void **state) {
  (void)state;
  rtq__queues qs;
  char err[128];
  rtq_worker_queue bad_name[] = {{"has space", 1}};
  rtq_worker_queue bad_weight[] = {{"a", 0}};
  rtq_worker_queue dup[] = {{"a", 1}, {"a", 2}};
  assert_int_equal(rtq__queues_init(&qs, bad_name, 1, false, err, sizeof err), RTQ_EINVAL);
  assert_int_equal(rtq__queues_init(&qs, bad_weight, 1, false, err, sizeof err), RTQ_EINVAL);
  assert_int_equal(rtq__queues_init(&qs, dup, 2, false, err, sizeof err), RTQ_EINVAL);
  assert_non_null(strstr(err, "twice"));
  assert_int_equal(rtq__queues_init(&qs, NULL, 0, false, err, sizeof err), 0);
  assert_int_equal(qs.n, 1);
  assert_string_equal(qs.q[0].name, "default");
  rtq__queues_destroy(&qs);
}

static void test_worker_queues_single_always_blocks(void **state) {
  (void)state;
  rtq__queues qs;
  make_queues(&qs, false, 1, "only", 1);
  int idx[50];
  bool blocking = false;
  assert_int_equal(rtq__queues_plan(&qs, 50, 1000, idx, &blocking), 50);
  assert_true(blocking);
  for (int i = 0; i < 50; i++) assert_int_equal(idx[i], 0);
  rtq__queues_destroy(&qs);
}

static void test_worker_queues_weighted_share(void **state) {
  (void)state;
  rtq__queues qs;
  make_queues(&qs, false, 2, "critical", 3, "default", 1);
  int counts[2] = {0, 0}, idx[1];
  bool blocking;
  for (int i = 0; i < 400; i++) {
    assert_int_equal(rtq__queues_plan(&qs, 1, 1000, idx, &blocking), 1);
    assert_false(blocking);
    counts[idx[0]]++;
    /* never more than 3 critical picks in a row: default is not starved */
  }
  assert_int_equal(counts[0], 300);
  assert_int_equal(counts[1], 100);
  rtq__queues_destroy(&qs);
}

static void test_worker_queues_no_starvation_window(void **state) {
  (void)state;
  rtq__queues qs;
  make_queues(&qs, false, 3, "a", 10, "b", 1, "c", 1);
  int idx[1], last_seen[3] = {-1, -1, -1}, max_gap[3] = {0, 0, 0};
  bool blocking;
  for (int i = 0; i < 1200; i++) {
    rtq__queues_plan(&qs, 1, 1000, idx, &blocking);
    int q = idx[0];
    if (i - last_seen[q] > max_gap[q]) max_gap[q] = i - last_seen[q];
    last_seen[q] = i;
  }
  /* Every queue gets a pick within one cycle of sum(weights) = 12. */
  for (int q = 0; q < 3; q++) assert_true(max_gap[q] <= 12);
  rtq__queues_destroy(&qs);
}

static void test_worker_queues_empty_queue_skipped_then_reprobed(void **state) {
  (void)state;
  rtq__queues qs;
  make_queues(&qs, false, 2, "a", 1, "b", 1);
  int idx[10];
  bool blocking;
  rtq__queues_result(&qs, 0, false, 1000, 100); /* a came back empty */
  assert_int_equal(rtq__queues_plan(&qs, 10, 1050, idx, &blocking), 10);
  assert_false(blocking);
  for (int i = 0; i < 10; i++) assert_int_equal(idx[i], 1); /* its share goes to b */
  rtq__queues_plan(&qs, 10, 1100, idx, &blocking);         /* poll_ms later: eligible again */
  int a = 0;
  for (int i = 0; i < 10; i++) a += idx[i] == 0;
  assert_int_equal(a, 5);
  rtq__queues_destroy(&qs);
}

static void test_worker_queues_all_empty_blocks_small_when_idle(void **state) {
  (void)state;
  rtq__queues qs;
  make_queues(&qs, false, 3, "a", 1, "b", 1, "c", 5);
  int idx[50];
  bool blocking;
  for (int i = 0; i < 3; i++) rtq__queues_result(&qs, i, false, 1000, 100);
  rtq__queues_round_end(&qs, false, -1);
  int n = rtq__queues_plan(&qs, 50, 1010, idx, &blocking);
  assert_true(blocking);
  assert_int_equal(n, 1); /* idle: one BLMOVE */
  assert_int_equal(idx[0], 2); /* the heaviest queue first */
  /* After the blocking round on c, a and b are probed, one move each. */
  rtq__queues_result(&qs, 2, false, 1110, 100);
  rtq__queues_round_end(&qs, false, 2);
  n = rtq__queues_plan(&qs, 50, 1110, idx, &blocking);
  assert_false(blocking);
  assert_int_equal(n, 2);
  assert_true((idx[0] == 0 && idx[1] == 1) || (idx[0] == 1 && idx[1] == 0));
  /* Work found: full-size rounds again. */
  rtq__queues_result(&qs, 0, true, 1120, 100);
  rtq__queues_round_end(&qs, true, -1);
  n = rtq__queues_plan(&qs, 50, 1120, idx, &blocking);
  assert_int_equal(n, 50);
  rtq__queues_destroy(&qs);
}

static void test_worker_queues_strict_priority(void **state) {
  (void)state;
  rtq__queues qs;
  make_queues(&qs, true, 3, "high", 1, "mid", 1, "low", 1);
  int idx[8];
  bool blocking;
  rtq__queues_plan(&qs, 8, 1000, idx, &blocking);
  assert_false(blocking);
  for (int i = 0; i < 8; i++) assert_int_equal(idx[i], 0);
  rtq__queues_result(&qs, 0, false, 1000, 100);
  rtq__queues_plan(&qs, 8, 1010, idx, &blocking);
  for (int i = 0; i < 8; i++) assert_int_equal(idx[i], 1);
  rtq__queues_result(&qs, 1, false, 1010, 100);
  rtq__queues_result(&qs, 2, false, 1010, 100);
  rtq__queues_plan(&qs, 8, 1020, idx, &blocking);
  assert_true(blocking);
  assert_int_equal(idx[0], 0); /* block on the first */
  char buf[64];
  rtq__queues_describe(&qs, buf, sizeof buf);
  assert_string_equal(buf, "high:1,mid:1,low:1");
  rtq__queues_destroy(&qs);
}

static void test_worker_progress_coalesces(void **state) {
  (void)state;
  rtq__prog p;
  rtq__prog_init(&p);
  assert_false(rtq__prog_due(&p, 0, 100));
  assert_int_equal(rtq__prog_set(&p, 1, "one", 3), 0);
  assert_true(rtq__prog_due(&p, 5000, 100)); /* the first is due at once */
  rtq__prog_sent(&p, 5000);
  int writes = 1;
  for (int ms = 5001; ms <= 6000; ms++) {
    for (int k = 0; k < 1000; k++) rtq__prog_set(&p, (double)ms / 100.0, "msg", 3);
    if (rtq__prog_due(&p, (uint64_t)ms, 100)) {
      rtq__prog_sent(&p, (uint64_t)ms);
      writes++;
    }
  }
  assert_int_equal(writes, 11); /* 1 s at 100 ms: the first plus 10 */
  rtq__prog_set(&p, 100, "done", 4);
  assert_true(p.pending); /* the last value waits for finish */
  assert_string_equal(p.msg, "done");
  rtq__prog_destroy(&p);
}

static void test_worker_progress_clamps_and_formats(void **state) {
  (void)state;
  char b[16];
  assert_string_equal(rtq__pct_format(42, b), "42");
  assert_string_equal(rtq__pct_format(42.5, b), "42.5");
  assert_string_equal(rtq__pct_format(0.004, b), "0");
  assert_string_equal(rtq__pct_format(-3, b), "0");
  assert_string_equal(rtq__pct_format(250, b), "100");
  assert_string_equal(rtq__pct_format(0.0 / 0.0, b), "0");
  rtq__prog p;
  rtq__prog_init(&p);
  char big[5000];
  memset(big, 'x', sizeof big);
  assert_int_equal(rtq__prog_set(&p, 1, big, sizeof big), 0);
  assert_int_equal(strlen(p.msg), RTQ__PROGRESS_MSG_MAX);
  assert_int_equal(rtq__prog_set(&p, 1, NULL, 0), 0);
  assert_null(p.msg);
  rtq__prog_destroy(&p);
}

static void test_worker_frame_roundtrip(void **state) {
  (void)state;
  rtq__field f[3] = {{"50", 2}, {"", 0}, {"hello", 5}};
  char *buf;
  size_t len;
  assert_int_equal(rtq__frame_build('P', f, 3, &buf, &len), 0);
  rtq__frame_reader r;
  memset(&r, 0, sizeof r);
  r.max_frame = 1024;
  char type;
  const char *p;
  size_t plen;
  /* Byte by byte: a frame is returned only once complete. */
  for (size_t i = 0; i < len; i++) {
    assert_int_equal(rtq__frame_next(&r, &type, &p, &plen), 0);
    assert_int_equal(rtq__frame_feed(&r, buf + i, 1), 0);
  }
  assert_int_equal(rtq__frame_next(&r, &type, &p, &plen), 1);
  assert_int_equal(type, 'P');
  rtq__field out;
  assert_int_equal(rtq__frame_field(p, plen, 2, &out), 0);
  assert_int_equal(out.len, 5);
  assert_memory_equal(out.p, "hello", 5);
  assert_int_equal(rtq__frame_field(p, plen, 1, &out), 0);
  assert_int_equal(out.len, 0);
  assert_int_equal(rtq__frame_field(p, plen, 3, &out), RTQ_EDECODE);
  free(buf);
  rtq__frame_reader_destroy(&r);
}

static void test_worker_frame_rejects_garbage(void **state) {
  (void)state;
  rtq__frame_reader r;
  memset(&r, 0, sizeof r);
  r.max_frame = 16;
  char type;
  const char *p;
  size_t plen;
  assert_int_equal(rtq__frame_feed(&r, "Zxxxxxx", 7), 0); /* unknown type */
  assert_int_equal(rtq__frame_next(&r, &type, &p, &plen), RTQ_EDECODE);
  rtq__frame_reader_destroy(&r);
  memset(&r, 0, sizeof r);
  r.max_frame = 16;
  assert_int_equal(rtq__frame_feed(&r, "R\x7f\xff\xff\xff", 5), 0); /* over the limit */
  assert_int_equal(rtq__frame_next(&r, &type, &p, &plen), RTQ_EDECODE);
  rtq__frame_reader_destroy(&r);
  /* A field whose declared length runs past the payload. */
  assert_int_equal(rtq__frame_field("\x00\x00\x00\x09" "abc", 7, 0, &(rtq__field){0}), RTQ_EDECODE);
}

static void test_worker_frame_crash_tail(void **state) {
  (void)state;
  rtq__field f[1] = {{"11", 2}};
  char *buf;
  size_t len;
  assert_int_equal(rtq__frame_build('C', f, 1, &buf, &len), 0);
  rtq__frame_reader r;
  memset(&r, 0, sizeof r);
  r.max_frame = 64;
  assert_int_equal(rtq__frame_feed(&r, buf, len), 0);
  assert_int_equal(rtq__frame_feed(&r, "fatal signal SIGSEGV\n", 21), 0);
  char type;
  const char *p;
  size_t plen;
  assert_int_equal(rtq__frame_next(&r, &type, &p, &plen), 1);
  assert_int_equal(type, 'C');
  assert_int_equal(rtq__frame_feed(&r, "#1 handler\n", 11), 0);
  assert_int_equal(rtq__frame_next(&r, &type, &p, &plen), 0);
  assert_string_equal(r.tail, "fatal signal SIGSEGV\n#1 handler\n");
  free(buf);
  rtq__frame_reader_destroy(&r);
}

/* rtq_worker_new reads redis_url_file in place of redis_url: a bad URL in
 * it, or a missing file, is refused with the file named, the content never
 * quoted. */
static void test_worker_options_redis_url_file(void **state) {
  (void)state;
  char path[300], err[512];
  snprintf(path, sizeof path, "%s/worker-url-%d", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
  rtq_worker_options o;
  rtq_worker_options_init(&o);
  o.redis_url_file = path;
  rtq_worker *w = NULL;
  unlink(path);
  assert_int_equal(rtq_worker_new(&o, &w, err, sizeof err), RTQ_EINVAL);
  assert_non_null(strstr(err, path));
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs("redis://u:Wrk/Secret@h\n", f);
  fclose(f);
  assert_int_equal(rtq_worker_new(&o, &w, err, sizeof err), RTQ_EINVAL);
  assert_null(strstr(err, "Secret"));
  f = fopen(path, "w");
  assert_non_null(f);
  fputs("redis://u:WrkSecret@127.0.0.1:1/0\n", f);
  fclose(f);
  assert_int_equal(rtq_worker_new(&o, &w, err, sizeof err), 0);
  rtq_worker_free(w);
  unlink(path);
}

/* The deprecated cluster option: the worker is made as without it, and
 * one warning line says the option is ignored. */
static void test_worker_options_cluster_is_deprecated(void **state) {
  (void)state;
  int fd = rtq_test_log_capture_start();
  rtq_worker_options o;
  rtq_worker_options_init(&o);
  o.redis_url = "redis://127.0.0.1:1/0";
  o.cluster = true;
  rtq_worker *w = NULL;
  char err[256];
  int rc = rtq_worker_new(&o, &w, err, sizeof err);
  char *logged = rtq_test_log_capture_end(fd);
  assert_int_equal(rc, 0);
  rtq_worker_free(w);
  assert_non_null(strstr(logged, "rtq_worker_options.cluster is deprecated and ignored"));
  assert_ptr_equal(strchr(logged, '\n'), logged + strlen(logged) - 1); /* one line */
  free(logged);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_worker_queues_reject_bad_input),
      cmocka_unit_test(test_worker_queues_single_always_blocks),
      cmocka_unit_test(test_worker_queues_weighted_share),
      cmocka_unit_test(test_worker_queues_no_starvation_window),
      cmocka_unit_test(test_worker_queues_empty_queue_skipped_then_reprobed),
      cmocka_unit_test(test_worker_queues_all_empty_blocks_small_when_idle),
      cmocka_unit_test(test_worker_queues_strict_priority),
      cmocka_unit_test(test_worker_progress_coalesces),
      cmocka_unit_test(test_worker_progress_clamps_and_formats),
      cmocka_unit_test(test_worker_options_cluster_is_deprecated),
      cmocka_unit_test(test_worker_frame_roundtrip),
      cmocka_unit_test(test_worker_frame_rejects_garbage),
      cmocka_unit_test(test_worker_frame_crash_tail),
      cmocka_unit_test(test_worker_options_redis_url_file),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
