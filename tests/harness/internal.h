/* internal.h - what the harness's own files share; tests use harness.h. */
#ifndef RTQ_TEST_HARNESS_INTERNAL_H
#define RTQ_TEST_HARNESS_INTERNAL_H

#include <stdbool.h>

#include "harness.h"

/* Fork + exec as rtq_test_spawn_ex describes; track: kill and reap the
 * pid at exit (servers are stopped by their own registry instead). */
pid_t rtq__test_fork_exec(const rtq_test_spawn_options *o, bool track);
/* Registers the harness's atexit handler, once. */
void rtq__test_cleanup_register(void);
/* Called by the atexit handler. */
void rtq__test_redis_stop_all(void);
void rtq__test_process_kill_all(void);
/* The default server, started on first use; NULL if it cannot start
 * (the reason was printed). */
rtq_test_redis *rtq__test_redis_default_or_null(void);
/* A free loopback TCP port now (another process may take it before it
 * is used), -1 on failure. */
int rtq__test_free_port(void);
/* Sleeps ms milliseconds; only for polling loops that have a deadline. */
void rtq__test_sleep_ms(int ms);

#endif
