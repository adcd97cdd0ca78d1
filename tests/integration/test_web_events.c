/*
 * test_web_events.c - /api/events against real processes: a worker's
 * progress reaches an SSE client; ?task= keeps one task's events; ?ticks=1
 * sends counts at most once a second instead; clients
 * that hang up are forgotten within seconds; a client that stops reading
 * is dropped once its queue is full while the others go on; all share one
 * Redis subscription, and no stream holds a thread of its own.
 */
#include <dirent.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "keys2.h"
#include "rtq/client.h"
#include "test_web_util.h"

/* The queue whose shard channel the tests publish on; rtq-web subscribes
 * the channel of every queue of {ns}:queues, so setup registers it. */
#define QUEUE "default"

static rtq_key2 events_channel(void) {
  rtq_keys2 k;
  rtq_keys2_init(&k, "rtq");
  return rtq_keys2_chan_events(&k, QUEUE);
}

static void register_queue(void) {
  rtq_keys2 k;
  rtq_keys2_init(&k, "rtq");
  rtq_conn *c = rtq_test_conn();
  rtq_test_cmd_int(c, "SADD", rtq_keys2_queues(&k).s, QUEUE, NULL);
  rtq_conn_free(c);
}

static int setup(void **state) {
  tw_setup(state);
  register_queue();
  return 0;
}

/* Publishes one protocol 2 event message of one task, as a script does:
 * {"at":..,"s":status,"t":[{"id":id<, more>}]} (more: JSON members of the
 * task entry, or ""). */
static void publish(rtq_conn *c, const char *id, const char *status, const char *more) {
  size_t cap = strlen(more) + 256;
  char *msg = malloc(cap);
  snprintf(msg, cap, "{\"at\":1,\"s\":\"%s\",\"t\":[{\"id\":\"%s\"%s%s}]}", status, id, *more ? "," : "", more);
  freeReplyObject(rtq_test_command(c, "SPUBLISH", events_channel().s, msg, NULL));
  free(msg);
}

static json_int_t info_events(int port, const char *field) {
  json_t *info = http_json(port, "/api/info", NULL, 200);
  json_int_t v = json_integer_value(json_object_get(json_object_get(info, "events"), field));
  json_decref(info);
  return v;
}

/* Subscribers of the queue's events channel, as Redis counts them. */
static long long subscribers(void) {
  rtq_conn *c = rtq_test_conn();
  redisReply *r = rtq_test_command(c, "PUBSUB", "SHARDNUMSUB", events_channel().s, NULL);
  long long n = r->type == REDIS_REPLY_ARRAY && r->elements == 2 ? r->element[1]->integer : -1;
  freeReplyObject(r);
  rtq_conn_free(c);
  return n;
}

static void test_web_events_progress(void **state) {
  (void)state;
  web_srv s;
  web_start(&s, NULL);
  RTQ_TEST_WAIT_FOR(subscribers() == 1, 10000);
  sse_conn all, other;
  sse_open(&all, s.port, "/api/events", NULL);
  sse_open(&other, s.port, "/api/events?task=SOME_OTHER_TASK", NULL);
  assert_true(sse_wait_for(&all, ": connected", 0, 5000));
  assert_true(sse_wait_for(&other, ": connected", 0, 5000));
  assert_non_null(strstr(all.buf, "Content-Type: text/event-stream"));
  /* Still one subscription however many streams. */
  assert_int_equal(subscribers(), 1);

  pid_t worker = web_worker_start("rtq");
  char id[RTQ_TASK_ID_SIZE], needle[256];
  tw_create("rtq.sleep", NULL, "{\"seconds\":1.5,\"steps\":5}", 0, id);
  snprintf(needle, sizeof needle, "{\"id\":\"%s\"", id);
  assert_true(sse_wait_for(&all, needle, 0, 10000));
  assert_true(sse_wait_for(&all, "\"progress\":40", 0, 15000));
  assert_true(sse_wait_for(&all, "\"status\":\"completed\"", 0, 15000));
  /* The filtered stream saw none of it. */
  sse_wait_for(&other, needle, 0, 200);
  assert_null(strstr(other.buf, id));
  sse_close(&all);
  sse_close(&other);
  rtq_test_terminate(worker, SIGTERM, 10000, NULL);
  web_stop(&s);
}

static void test_web_events_hangup_forgotten(void **state) {
  (void)state;
  web_srv s;
  web_start(&s, NULL);
  sse_conn c[5];
  for (int i = 0; i < 5; i++) {
    sse_open(&c[i], s.port, "/api/events", NULL);
    assert_true(sse_wait_for(&c[i], ": connected", 0, 5000));
  }
  RTQ_TEST_WAIT_FOR(info_events(s.port, "clients") == 5, 5000);
  for (int i = 0; i < 5; i++) sse_close(&c[i]);
  /* No event is flowing: the server notices the hang-ups by itself. */
  RTQ_TEST_WAIT_FOR(info_events(s.port, "clients") == 0, 5000);
  web_stop(&s);
}

/* A stream that never reads while events keep coming: its queue fills,
 * it is dropped, and a reading stream gets every event meanwhile. */
static void test_web_events_slow_client_dropped(void **state) {
  (void)state;
  web_srv s;
  const char *args[] = {"--sse-buffer", "65536", NULL};
  web_start(&s, args);
  RTQ_TEST_WAIT_FOR(subscribers() == 1, 10000);
  int slow = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int small = 4096;
  setsockopt(slow, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s.port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(slow, (struct sockaddr *)&a, sizeof a), 0);
  char req[256];
  int n = snprintf(req, sizeof req, "GET /api/events HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", s.port);
  http_send_all(slow, req, (size_t)n);
  sse_conn good;
  sse_open(&good, s.port, "/api/events", NULL);
  assert_true(sse_wait_for(&good, ": connected", 0, 5000));
  RTQ_TEST_WAIT_FOR(info_events(s.port, "clients") == 2, 5000);

  /* 100 rounds of 20 events of 2 KiB: each round fits the 64 KiB queue of
   * a stream that reads, and the good stream reads each round before the
   * next is sent; the slow stream's socket buffers and queue overflow. */
  rtq_conn *c = rtq_test_conn();
  char *msg = malloc(2200);
  char pad[2049], needle[64], id[16];
  memset(pad, 'p', 2048);
  pad[2048] = '\0';
  snprintf(msg, 2200, "\"pm\":\"%s\"", pad); /* a progress message: the event carries it */
  for (int i = 0; i < 2000; i++) {
    snprintf(id, sizeof id, "t%d", i);
    publish(c, id, "running", msg);
    if (i % 20 != 19) continue;
    snprintf(needle, sizeof needle, "{\"id\":\"t%d\"", i);
    if (!sse_wait_for(&good, needle, 0, 10000))
      fail_msg("the reading stream missed event %d: dropped %lld", i, (long long)info_events(s.port, "dropped"));
  }
  /* The slow one was dropped, the reading one not, and the server's
   * memory did not grow with the backlog. */
  assert_int_equal(info_events(s.port, "dropped"), 1);
  RTQ_TEST_WAIT_FOR(info_events(s.port, "clients") == 1, 10000);
#ifndef __SANITIZE_ADDRESS__ /* ASan's shadow and quarantine make RSS meaningless */
  long rss = rtq_test_rss_kb(s.pid);
  assert_true(rss > 0 && rss < 64 * 1024);
#endif
  free(msg);
  rtq_conn_free(c);
  close(slow);
  sse_close(&good);
  web_stop(&s);
}

static void test_web_events_token(void **state) {
  (void)state;
  web_srv s;
  const char *args[] = {"--auth-token-file", web_token_file(), NULL};
  web_start(&s, args);
  http_resp r;
  http_get(s.port, "/api/events", &r);
  assert_int_equal(r.status, 401);
  http_resp_free(&r);
  sse_conn c;
  sse_open(&c, s.port, "/api/events", "Authorization: Bearer " WEB_TOKEN "\r\n");
  assert_true(sse_wait_for(&c, ": connected", 0, 5000));
  sse_close(&c);
  assert_int_equal(info_events(s.port, "dropped"), 0);
  web_stop(&s);
}

/* The stream survives a Redis restart: the hub subscribes again and tells
 * the clients to re-read (event: reset). */
static void test_web_events_resubscribe(void **state) {
  (void)state;
  web_srv s;
  web_start(&s, NULL);
  RTQ_TEST_WAIT_FOR(subscribers() == 1, 10000);
  sse_conn c;
  sse_open(&c, s.port, "/api/events", NULL);
  assert_true(sse_wait_for(&c, ": connected", 0, 5000));
  assert_int_equal(rtq_test_redis_restart(rtq_test_redis_default()), 0);
  assert_true(sse_wait_for(&c, "event: reset", 0, 15000));
  register_queue(); /* the restarted server may have lost the registry */
  RTQ_TEST_WAIT_FOR(subscribers() == 1, 10000);
  char id[RTQ_TASK_ID_SIZE];
  tw_create("rtq.echo", QUEUE, "{}", 0, id);
  assert_true(sse_wait_for(&c, id, 0, 10000));
  sse_close(&c);
  web_stop(&s);
}

/* The sum of the counts of every tick in a stream's bytes. */
static int tick_total(const char *buf) {
  int total = 0;
  for (const char *p = strstr(buf, "{\"events\":"); p != NULL; p = strstr(p + 1, "{\"events\":"))
    total += atoi(p + 10);
  return total;
}

/* ?ticks=1: at most one "tick" a second with the count, never the
 * events themselves. */
static void test_web_events_ticks(void **state) {
  (void)state;
  web_srv s;
  web_start(&s, NULL);
  RTQ_TEST_WAIT_FOR(subscribers() == 1, 10000);
  sse_conn c;
  sse_open(&c, s.port, "/api/events?ticks=1", NULL);
  assert_true(sse_wait_for(&c, ": connected", 0, 5000));
  rtq_conn *rc = rtq_test_conn();
  for (int i = 0; i < 50; i++) publish(rc, "x", "running", "");
  rtq_conn_free(rc);
  assert_true(sse_wait_for(&c, "event: tick\ndata: {\"events\":", 0, 5000));
  assert_null(strstr(c.buf, "\"id\":\"x\""));
  /* 50 events, counted across one or two ticks. */
  if (tick_total(c.buf) < 50)
    assert_true(sse_wait_for(&c, "event: tick", (size_t)(strstr(c.buf, "event: tick") - c.buf) + 1, 5000));
  assert_int_equal(tick_total(c.buf), 50);
  http_resp r;
  http_get(s.port, "/api/events?ticks=2", &r);
  assert_int_equal(r.status, 400);
  http_resp_free(&r);
  sse_close(&c);
  web_stop(&s);
}

static int threads_of(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
  DIR *d = opendir(path);
  if (d == NULL) return -1;
  int n = 0;
  for (struct dirent *e; (e = readdir(d)) != NULL;) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

/* Streams hold no thread each: 30 open streams leave rtq-web's thread
 * count as it was. A burst of 300 events, coalesced into shared blocks,
 * reaches every stream whole and in order. */
static void test_web_events_streams_hold_no_thread(void **state) {
  (void)state;
  enum { STREAMS = 30, EVENTS = 300 };
  web_srv s;
  web_start(&s, NULL);
  RTQ_TEST_WAIT_FOR(subscribers() == 1, 10000);
  int before = threads_of(s.pid);
  assert_true(before > 0);
  sse_conn *c = calloc(STREAMS, sizeof *c);
  for (int i = 0; i < STREAMS; i++) {
    sse_open(&c[i], s.port, "/api/events", NULL);
    assert_true(sse_wait_for(&c[i], ": connected", 0, 5000));
  }
  RTQ_TEST_WAIT_FOR(info_events(s.port, "clients") == STREAMS, 5000);
  assert_int_equal(threads_of(s.pid), before);

  rtq_conn *rc = rtq_test_conn();
  char id[16];
  for (int i = 0; i < EVENTS; i++) {
    snprintf(id, sizeof id, "b%03d", i);
    publish(rc, id, "running", "");
  }
  rtq_conn_free(rc);
  for (int i = 0; i < STREAMS; i++) {
    assert_true(sse_wait_for(&c[i], "{\"id\":\"b299\"", 0, 10000));
    int next = 0;
    for (const char *p = strstr(c[i].buf, "data: {\"id\":\"b"); p != NULL;
         p = strstr(p + 1, "data: {\"id\":\"b")) {
      if (atoi(p + 14) != next) fail_msg("stream %d: event b%03d where b%03d was due", i, atoi(p + 14), next);
      next++;
    }
    assert_int_equal(next, EVENTS);
  }
  assert_int_equal(threads_of(s.pid), before);
  for (int i = 0; i < STREAMS; i++) sse_close(&c[i]);
  free(c);
  RTQ_TEST_WAIT_FOR(info_events(s.port, "clients") == 0, 5000);
  assert_int_equal(info_events(s.port, "dropped"), 0);
  web_stop(&s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_web_events_progress, setup, tw_teardown),
      cmocka_unit_test_setup_teardown(test_web_events_hangup_forgotten, setup, tw_teardown),
      cmocka_unit_test_setup_teardown(test_web_events_slow_client_dropped, setup, tw_teardown),
      cmocka_unit_test_setup_teardown(test_web_events_token, setup, tw_teardown),
      cmocka_unit_test_setup_teardown(test_web_events_resubscribe, setup, tw_teardown),
      cmocka_unit_test_setup_teardown(test_web_events_ticks, setup, tw_teardown),
      cmocka_unit_test_setup_teardown(test_web_events_streams_hold_no_thread, setup, tw_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
