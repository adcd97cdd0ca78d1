/*
 * health.h - the liveness file of rtq-worker and rtq-broker, and the
 * `--health` command that reads it (a container HEALTHCHECK, a Kubernetes
 * liveness probe).
 *
 * A running process keeps one file fresh: it creates it at start with
 * mtime 0 ("not yet"), and sets its mtime to now each time Redis accepted
 * its heartbeat (worker) or after each completed sweep or lease step
 * (broker). `rtq-worker --health` / `rtq-broker --health` is a separate,
 * short-lived process in the same container: it looks at the file's age and
 * exits 0 when it is at most --max-age old, 1 otherwise, printing one line.
 * It opens no connection, so a probe costs one stat(2), and it says
 * whether *this* process is alive and reaching Redis, which a probe of
 * Redis itself cannot.
 *
 * Why a file: the running process needs no listener, no port and no extra
 * thread, a frozen process (SIGSTOP, a deadlock in its loop) stops
 * refreshing it, and a process that lost Redis stops refreshing it too.
 *
 * Flags, taken out of argv before the binary's own parser sees them:
 *   --health              check, print one line, exit 0 (fresh) or 1
 *   --health-file PATH    the file (RTQ_HEALTH_FILE; default per binary,
 *                         RTQ_HEALTH_WORKER_FILE / RTQ_HEALTH_BROKER_FILE)
 *   --max-age DUR         with --health: the largest age that passes
 *                         (default RTQ_HEALTH_MAX_AGE_MS)
 */
#ifndef RTQ_HEALTH_H
#define RTQ_HEALTH_H

#include <stdbool.h>
#include <stddef.h>

#define RTQ_HEALTH_WORKER_FILE "/tmp/rtq-worker.health"
#define RTQ_HEALTH_BROKER_FILE "/tmp/rtq-broker.health"
/* Three worker heartbeats (5 s each); the broker refreshes at least every
 * lease_ttl/3 (3.3 s) and after every sweep (1 s). */
#define RTQ_HEALTH_MAX_AGE_MS 15000L
#define RTQ_HEALTH_PATH_MAX 512

/* Value type: the health flags of one command line. */
typedef struct rtq_health_args {
  bool check;                      /* --health */
  char path[RTQ_HEALTH_PATH_MAX];  /* --health-file, else RTQ_HEALTH_FILE, else the default */
  long max_age_ms;                 /* --max-age, else RTQ_HEALTH_MAX_AGE_MS */
  bool path_given;                 /* path came from --health-file or RTQ_HEALTH_FILE */
} rtq_health_args;

/*
 * Fills h from argv and removes the health flags (and their values) from
 * argv, updating *argc, so the binary's parser never sees them. Scanning
 * stops at "--". Both "--flag value" and "--flag=value" work. Returns 0,
 * or RTQ_EINVAL with errbuf naming the flag (a missing or bad value, an
 * empty or too long path, --max-age without --health).
 */
int rtq_health_take_args(rtq_health_args *h, int *argc, char **argv, const char *default_path,
                         char *errbuf, size_t errcap);

/* Creates path (mode 0644) or keeps it, and sets its mtime to 0, so a
 * check fails until the first rtq_health_touch: a restarted process is not
 * taken for healthy on the strength of its predecessor's file. Refuses a
 * symlink. Returns 0, or RTQ_EIO with errbuf naming the path and errno. */
int rtq_health_reset(const char *path, char *errbuf, size_t errcap);

/* Sets path's mtime to now: one utimensat, or, when the file was removed,
 * creates it again. Never follows a symlink. Returns 0 or RTQ_EIO (errno
 * tells why). */
int rtq_health_touch(const char *path);

/*
 * The age of path's mtime. Returns 0 with *age_ms set when the file is at
 * most max_age_ms old (a future mtime counts as age 0); RTQ_ETIMEDOUT with
 * *age_ms set when older; RTQ_STATE when it was reset and never touched;
 * RTQ_ENOTFOUND when it does not exist; RTQ_EIO when stat fails otherwise.
 */
int rtq_health_check(const char *path, long max_age_ms, long *age_ms);

/*
 * The whole `--health` command: runs rtq_health_check and prints one line
 * to stdout, "PROG: healthy: last WHAT 1.2 s ago" or "PROG: unhealthy: ..."
 * with the reason. Returns the exit status: 0 healthy, 1 not.
 */
int rtq_health_command(const char *prog, const char *what, const rtq_health_args *h);

/*
 * What a running process does at start: resets h->path and sets *path_out
 * to it. When that fails for a path the user gave, prints why to stderr and
 * returns 2 (the exit status); for the default path (another user's file in
 * /tmp, say) it logs a WARNING and returns 0 with *path_out NULL: the
 * process runs without a health file.
 */
int rtq_health_start(const rtq_health_args *h, const char *prog, const char **path_out);

/*
 * What a main() does with the health flags, in one call: takes them out of
 * argv; with --health runs the check. Returns -1 when the process should go
 * on (h->path is then the file it keeps fresh), else the exit status: the
 * check's (0 or 1), or 2 after printing a usage error to stderr.
 */
int rtq_health_cli(rtq_health_args *h, const char *prog, const char *what, const char *default_path,
                   int *argc, char **argv);

#endif
