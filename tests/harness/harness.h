/*
 * harness.h - what integration and fault tests share: a private
 * redis-server per test process, child processes that die with the test,
 * waiting with deadlines, and assertion helpers for Redis commands.
 *
 * Lifetime rules (the reason this file exists):
 *   - Every redis-server and every spawned process gets
 *     prctl(PR_SET_PDEATHSIG, SIGKILL), so a crashed or killed test never
 *     leaves one running. Start them from the main thread: the kernel sends
 *     the signal when the *thread* that forked exits.
 *   - An atexit handler stops whatever is still running and removes the
 *     servers' temp dirs, so a failed cmocka test (which returns normally
 *     from main) cleans up too.
 *   - Nothing here sleeps for a fixed time and hopes: every wait polls a
 *     condition up to a deadline and reports the deadline when it fails.
 *
 * Output is quiet: the harness prints only when something fails (then the
 * tail of the server's log), and ctest shows it only for a failed test.
 *
 * Functions marked (asserts) fail the current cmocka test on error, so they
 * may only be called from the thread that runs the test.
 */
#ifndef RTQ_TEST_HARNESS_H
#define RTQ_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <hiredis/hiredis.h>

#include "argv.h"
#include "conn.h"

/* ---------------------------------------------------------------------
 * Private redis-server
 * ------------------------------------------------------------------- */

/* Value type; zero fields take the defaults shown. */
typedef struct rtq_test_redis_options {
  bool unix_only;                    /* listen on a unix socket only (port 0) */
  bool appendonly;                   /* appendonly yes (fsync always) */
  const char *maxmemory;             /* e.g. "2mb"; NULL: no limit */
  const char *maxmemory_policy;      /* NULL: noeviction */
  const char *const *extra_config;   /* NULL-terminated redis.conf lines; NULL: none */
  int start_timeout_ms;              /* 10000: deadline for PING to answer */
  bool sentinel;                     /* run as a sentinel: $RTQ_REDIS_SENTINEL, else
                                      * redis-sentinel (Debian's package), else
                                      * redis-server --sentinel; extra_config holds
                                      * its "sentinel ..." lines */
} rtq_test_redis_options;

typedef struct rtq_test_redis rtq_test_redis;

/*
 * Starts redis-server ($RTQ_REDIS_SERVER, else PATH, else
 * /usr/bin/redis-server) in a fresh mkdtemp dir, bound to 127.0.0.1 on a
 * free port (retrying when another process takes the port first), with
 * persistence off unless opts->appendonly, and waits until PING answers.
 * opts may be NULL. Returns the server (the caller frees it with
 * rtq_test_redis_stop; atexit does it otherwise), or NULL after printing why.
 */
rtq_test_redis *rtq_test_redis_start(const rtq_test_redis_options *opts);
/* SIGTERM (SIGKILL after 5 s), reap, remove the temp dir, free. NULL is a no-op. */
void rtq_test_redis_stop(rtq_test_redis *r);
/* SIGKILL the server and reap it; the dir stays for a restart. 0 or -1. */
int rtq_test_redis_kill9(rtq_test_redis *r);
/* Stops the server if it runs, then starts it again on the same port, dir
 * and config (an AOF is replayed) and waits for PING. 0 or -1. */
int rtq_test_redis_restart(rtq_test_redis *r);
/* SIGSTOP / SIGCONT, returning once the kernel reports the new state. 0 or -1. */
int rtq_test_redis_sigstop(rtq_test_redis *r);
int rtq_test_redis_sigcont(rtq_test_redis *r);

/* "redis://127.0.0.1:<port>/0", or the unix URL for a unix_only server.
 * Borrowed for the server's life. */
const char *rtq_test_redis_url_of(const rtq_test_redis *r);
/* "unix://<dir>/redis.sock" (every server has the socket too). Borrowed. */
const char *rtq_test_redis_unix_url(const rtq_test_redis *r);
/* TCP port (0 when unix_only); server pid (-1 while not running); temp dir. */
int rtq_test_redis_port(const rtq_test_redis *r);
pid_t rtq_test_redis_pid(const rtq_test_redis *r);
const char *rtq_test_redis_dir(const rtq_test_redis *r);

/* The process's shared default server, started on first use with default
 * options and stopped at exit. (asserts) */
rtq_test_redis *rtq_test_redis_default(void);
/* URL of the default server (starting it if needed). (asserts) */
const char *rtq_test_redis_url(void);
/* FLUSHALL and SCRIPT FLUSH on the default server. (asserts) */
void rtq_test_redis_flush(void);

/* ---------------------------------------------------------------------
 * Redis Cluster and Sentinel (cluster.c)
 * ------------------------------------------------------------------- */

typedef struct rtq_test_cluster rtq_test_cluster;

/*
 * Starts n (1..8) cluster-enabled redis-servers, gives node i < masters the
 * i-th of `masters` equal slot ranges (CLUSTER ADDSLOTSRANGE; the other
 * nodes are primaries without slots), joins them (CLUSTER MEET) and
 * waits until every node reports cluster_state:ok and knows all n nodes,
 * with a 30 s deadline. cluster-node-timeout is 1000 ms. Returns NULL
 * after printing why. Stopped with rtq_test_cluster_stop (or at exit).
 */
rtq_test_cluster *rtq_test_cluster_start(int n, int masters);
void rtq_test_cluster_stop(rtq_test_cluster *c);
/* Makes node `replica` (one without slots) a replica of node `of` and
 * waits until it is in sync and a write on `of` reaches it (WAIT 1; 30 s
 * deadline). 0 or -1 after printing why. */
int rtq_test_cluster_replicate(rtq_test_cluster *c, int replica, int of);
/* Node i (0..n-1); borrowed. */
rtq_test_redis *rtq_test_cluster_node(const rtq_test_cluster *c, int i);
/* The node that owns slot at start (ranges as above). */
int rtq_test_cluster_owner_at_start(const rtq_test_cluster *c, int slot);
/* "redis+cluster://127.0.0.1:<port of node i>" in buf. Returns buf. */
const char *rtq_test_cluster_url(const rtq_test_cluster *c, int i, char *buf, size_t cap);
/* A cluster node's node id (CLUSTER MYID); buf has room for 41 bytes. (asserts) */
const char *rtq_test_cluster_node_id(const rtq_test_cluster *c, int i, char *buf);

typedef struct rtq_test_sentinels rtq_test_sentinels;

/*
 * Starts a primary, one replica of it and three sentinels monitoring it as
 * master name "rtqm" (quorum 2, down-after-milliseconds 1000,
 * failover-timeout 3000) and waits until the replica is in sync and every
 * sentinel knows the replica and the two other sentinels (30 s deadline).
 * NULL after printing why.
 */
rtq_test_sentinels *rtq_test_sentinels_start(void);
void rtq_test_sentinels_stop(rtq_test_sentinels *s);
/* "redis-sentinel://127.0.0.1:<s1>,127.0.0.1:<s2>,127.0.0.1:<s3>/rtqm". Borrowed. */
const char *rtq_test_sentinels_url(const rtq_test_sentinels *s);
/* The data nodes: 0 the first primary, 1 its replica. Borrowed. */
rtq_test_redis *rtq_test_sentinels_node(const rtq_test_sentinels *s, int i);
/* The port the sentinels now name as the primary of "rtqm" (first
 * sentinel that answers), 0 when none answers. */
int rtq_test_sentinels_primary_port(const rtq_test_sentinels *s);

/* ---------------------------------------------------------------------
 * Connections and command assertions
 * ------------------------------------------------------------------- */

/* Log capture: rtq_log writes to a memfd (append mode) from now on; the
 * returned fd goes to rtq_test_log_capture_end. (asserts) */
int rtq_test_log_capture_start(void);
/* Stops capturing (rtq_log writes to stderr again), closes fd and returns
 * what was logged, NUL-terminated; the caller frees it. (asserts) */
char *rtq_test_log_capture_end(int fd);

/* A connected rtq_conn for url with test-friendly timeouts (connect 2 s,
 * command 5 s, backoff 10..200 ms). Caller frees with rtq_conn_free. (asserts) */
rtq_conn *rtq_test_conn_new(const char *url);
/* Same, to the default server. (asserts) */
rtq_conn *rtq_test_conn(void);

/*
 * Runs an argv command and returns its reply, error replies included; the
 * caller frees it with freeReplyObject. Fails the test when no reply
 * arrives (connection error). (asserts)
 */
redisReply *rtq_test_command_argv(rtq_conn *c, const rtq_argv *a);
/* Same with the arguments as C strings, ended by NULL:
 *   rtq_test_command(c, "HGET", key, "status", NULL)
 * Each string is one argument; nothing is parsed or formatted. (asserts) */
redisReply *rtq_test_command(rtq_conn *c, const char *arg0, ...) __attribute__((sentinel));
/* The integer reply of a command; fails the test for any other type. (asserts) */
long long rtq_test_cmd_int(rtq_conn *c, const char *arg0, ...) __attribute__((sentinel));
/* A string or status reply as a malloc'd copy (caller frees), NULL for a nil
 * reply; fails the test for an error or another type. (asserts) */
char *rtq_test_cmd_str(rtq_conn *c, const char *arg0, ...) __attribute__((sentinel));
/* Fails the test unless the reply is the status "OK". (asserts) */
void rtq_test_cmd_ok(rtq_conn *c, const char *arg0, ...) __attribute__((sentinel));

/* ---------------------------------------------------------------------
 * Child processes
 * ------------------------------------------------------------------- */

/* Value type. */
typedef struct rtq_test_spawn_options {
  const char *path;              /* binary; a name without '/' is looked up in PATH */
  const char *const *argv;       /* NULL-terminated, argv[0] included; NULL: {path} */
  const char *const *env;        /* "NAME=value" added to (or replacing in) the
                                  * test's environment, "NAME" removes it;
                                  * NULL-terminated; may be NULL */
  const char *output_path;       /* stdout and stderr appended here; NULL: inherited */
} rtq_test_spawn_options;

/* Forks and execs; the child gets PR_SET_PDEATHSIG SIGKILL and stdin from
 * /dev/null. Returns the pid, or -1 after printing why (exec failures show
 * as exit status 127). The pid is killed and reaped at exit if still alive. */
pid_t rtq_test_spawn_ex(const rtq_test_spawn_options *o);
/* rtq_test_spawn_ex with output inherited. */
pid_t rtq_test_spawn(const char *path, const char *const argv[], const char *const env[]);
/*
 * Waits for pid to exit, up to timeout_ms. Returns 0 with *status (may be
 * NULL) set to the waitpid status, RTQ_ETIMEDOUT while it still runs, or
 * RTQ_EINVAL when pid is not our child (or was reaped already).
 */
int rtq_test_wait_exit(pid_t pid, int timeout_ms, int *status);
/* kill(pid, sig) for pid > 1 only, so a bad value can never signal a
 * process group or everything. Returns 0, RTQ_EINVAL or RTQ_EIO. */
int rtq_test_kill(pid_t pid, int sig);
/*
 * SIGCONT to pid only when it is stopped (job control, state 'T'). Never
 * send SIGCONT blindly with or after a SIGTERM: a sanitizer build's
 * LeakSanitizer stops the exiting process's threads with ptrace, and a
 * SIGCONT that lands then discards the SIGSTOP of PTRACE_ATTACH, so its
 * tracer waits for a stop that never comes and the process never exits.
 * Returns 0, RTQ_EINVAL or RTQ_EIO.
 */
int rtq_test_resume_if_stopped(pid_t pid);
/* Resumes pid if it is stopped, sends sig, waits up to timeout_ms, then
 * SIGKILLs; always reaps. Returns 0 when pid exited in time (status as
 * above), RTQ_ETIMEDOUT when it had to be killed, RTQ_EINVAL when it is
 * not our child. */
int rtq_test_terminate(pid_t pid, int sig, int timeout_ms, int *status);
/* True once pid blocks or catches SIGTERM (/proc/<pid>/status): an rtq
 * binary's main() has begun. Before that the kernel's default for the
 * signal applies to any program. */
bool rtq_test_sigterm_handled(pid_t pid);
/* VmRSS of pid in KiB (/proc/<pid>/status), -1 when unreadable. */
long rtq_test_rss_kb(pid_t pid);
/* Writes "$RTQ_BIN_DIR/<rel>" (the build dir; ctest sets it) into buf.
 * Returns buf, or NULL when RTQ_BIN_DIR is unset or buf is too small. */
const char *rtq_test_bin_path(const char *rel, char *buf, size_t cap);

/* ---------------------------------------------------------------------
 * Waiting with a deadline
 * ------------------------------------------------------------------- */

/* CLOCK_MONOTONIC in ms. */
uint64_t rtq_test_now_ms(void);
/* Polls pred(arg) (1 ms, backing off to 20 ms) until it returns true or
 * timeout_ms passes. Returns whether it became true; pred runs at least
 * once, and once more at the deadline. */
bool rtq_test_wait_until(bool (*pred)(void *arg), void *arg, int timeout_ms);

/*
 * Evaluates expr until it is true; fails the test with the expression text
 * when timeout_ms passes first:
 *   RTQ_TEST_WAIT_FOR(rtq_test_cmd_int(c, "LLEN", q, NULL) == 0, 5000);
 */
#define RTQ_TEST_WAIT_FOR(expr, timeout_ms)                                     \
  do {                                                                           \
    uint64_t rtq__deadline = rtq_test_now_ms() + (uint64_t)(timeout_ms);         \
    for (int rtq__i = 0;; rtq__i++) {                                            \
      if (expr) break;                                                           \
      if (rtq_test_now_ms() >= rtq__deadline) {                                  \
        rtq__test_wait_failed(#expr, (int)(timeout_ms), __FILE__, __LINE__);     \
        break;                                                                   \
      }                                                                          \
      rtq__test_poll_pause(rtq__i);                                              \
    }                                                                            \
  } while (0)

/* For RTQ_TEST_WAIT_FOR only: the pause before poll number i, and the
 * failure report (fails the cmocka test). */
void rtq__test_poll_pause(int i);
void rtq__test_wait_failed(const char *expr, int timeout_ms, const char *file, int line);

#endif
