/*
 * test_client_fixture2.h - the fixture of the protocol 2 client tests,
 * fresh for each test: the harness's default redis-server flushed, the v2
 * key schema of namespace "rtq" (K), a client given protocol 2 explicitly
 * (CL), and a raw connection for assertions (C).
 */
#ifndef RTQ_TEST_CLIENT_FIXTURE2_H
#define RTQ_TEST_CLIENT_FIXTURE2_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"
#include "keys2.h"
#include "rtq/client.h"

/* The wait seam (client/wait.c): teardown clears it after each test. */
extern void (*rtq__wait_subscribed_hook)(const char *id);

static rtq_client *CL;
static rtq_conn *C;
static rtq_keys2 K;

static int setup(void **state) {
  (void)state;
  rtq_test_redis_flush();
  rtq_keys2_init(&K, "rtq");
  rtq_client_options o;
  memset(&o, 0, sizeof o);
  o.redis_url = rtq_test_redis_url();
  o.protocol = 2;
  if (rtq_client_new(&o, &CL) != 0) fail_msg("client: %s", rtq_client_errstr(NULL));
  C = rtq_test_conn();
  return 0;
}

static int teardown(void **state) {
  (void)state;
  rtq__wait_subscribed_hook = NULL;
  rtq_client_free(CL);
  rtq_conn_free(C);
  return 0;
}

#endif
