/*
 * test_client_fixture.h - the fixture the client tests share, fresh for
 * each test: the harness's default redis-server flushed, the key schema of
 * namespace "rtq", a client and a raw connection for assertions. Main
 * thread only (it fails the test when the client cannot connect).
 */
#ifndef RTQ_TEST_CLIENT_FIXTURE_H
#define RTQ_TEST_CLIENT_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"
#include "keys.h"
#include "rtq/client.h"

static inline void tc_open(rtq_keys *k, rtq_client **cl, rtq_conn **rc) {
  rtq_test_redis_flush();
  rtq_keys_init(k, "rtq", false);
  rtq_client_options o;
  memset(&o, 0, sizeof o);
  o.redis_url = rtq_test_redis_url();
  if (rtq_client_new(&o, cl) != 0) fail_msg("client: %s", rtq_client_errstr(NULL));
  *rc = rtq_test_conn();
}

/* Frees what tc_open made and clears the pointers. */
static inline void tc_close(rtq_client **cl, rtq_conn **rc) {
  rtq_client_free(*cl);
  rtq_conn_free(*rc);
  *cl = NULL;
  *rc = NULL;
}

#endif
