/*
 * bench.h - rtq-bench's internal model, shared by the bench sources only.
 *
 * A run is a sequence of phases. Each phase gets a namespace of its own
 * (so phases never see each other's tasks) and, on the private server, an
 * empty database (so memory deltas hold only that phase's data):
 *
 *   enqueue_batch  N tasks through rtq_create_tasks in chunks
 *   enqueue_single N tasks, one awaited rtq_create_task each    --+
 *   drain          one rtq-worker drains those N tasks          <-+ same backlog
 *   latency        1 ms apart to an idle rtq-worker
 *   scaling        batch-enqueue N, drain with k workers, for each k
 *
 * Each phase writes its figures into a JSON object; the human table is
 * rendered from that JSON (report.c), so `--table FILE` can print a table
 * from saved results, and `--median` can combine several runs.
 *
 * Measuring windows. Redis-side costs are deltas of INFO between two
 * snapshots. The bench's own commands in a window (the INFO that opens it
 * and the completion polls) are counted and taken out of the command
 * figures; their CPU is left in and is below 1% (see PERFORMANCE.md).
 */
#ifndef RTQ_BENCH_H
#define RTQ_BENCH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "conn.h"
#include "keys2.h"
#include "rtq/client.h"

#define RTQ__BENCH_MAX_WORKERS 16
#define RTQ__BENCH_MAX_SCALING 8
#define RTQ__BENCH_MAX_WRAP 16
#define RTQ__BENCH_MAX_REDIS_SET 8
#define RTQ__BENCH_QUEUE "default"
/* --limit-other's queue, and the backlog put there. */
#define RTQ__BENCH_LIMITED_QUEUE "limited"
#define RTQ__BENCH_LIMITED_BACKLOG 2000

/* ---- options (options.c) ---- */

enum { RTQ__BENCH_MODE_RUN, RTQ__BENCH_MODE_MEDIAN, RTQ__BENCH_MODE_TABLE, RTQ__BENCH_MODE_DAT };

/* Which phases run: a bit each. */
enum {
  RTQ__PH_BATCH = 1 << 0,
  RTQ__PH_SINGLE = 1 << 1,
  RTQ__PH_DRAIN = 1 << 2,
  RTQ__PH_LATENCY = 1 << 3,
  RTQ__PH_SCALING = 1 << 4,
  RTQ__PH_ALL = (1 << 5) - 1   /* the default set ("all"): every phase above */
};

typedef struct rtq__bench_opts {
  int mode;
  size_t n;                   /* tasks per throughput phase: 20000 */
  size_t chunk;               /* rtq_create_tasks chunk: 1000 */
  size_t latency_n;           /* 1000 */
  int latency_gap_us;         /* 1000 */
  int concurrency;            /* slots per worker process: 50 */
  int scaling[RTQ__BENCH_MAX_SCALING]; /* worker processes per scaling step */
  int nscaling;
  unsigned phases;            /* RTQ__PH_* */
  int phase_timeout_s;        /* bound of every wait in a phase: 120 */
  int protocol;               /* 2 (--protocol; else RTQ_PROTOCOL, else 2):
                               * the clients' and the workers' wire protocol */
  double limit_other;         /* --limit-other R (protocol 2): > 0 puts a
                               * backlog on RTQ__BENCH_LIMITED_QUEUE, limited to
                               * R tasks/s, which every worker serves too */
  bool other_queue;           /* --other-queue: the workers serve that queue
                               * too, left empty and unlimited (the baseline
                               * of --limit-other) */
  const char *redis_url;      /* NULL: start a private redis-server */
  const char *redis_url_file; /* --redis-url-file, passed on to the workers */
  char url_buf[512];          /* the URL redis_url points to, copied from argv or read */
  const char *redis_server;   /* "redis-server" */
  const char *redis_set[RTQ__BENCH_MAX_REDIS_SET]; /* "name=value", private server only */
  int nredis_set;
  const char *worker_bin;     /* default: the in-tree rtq-worker */
  const char *wrap[RTQ__BENCH_MAX_WRAP]; /* prefix argv for the worker (valgrind, perf) */
  int nwrap;
  bool script_profile;        /* SLOWLOG every script call during the drain */
  bool json;                  /* JSON on stdout instead of the table */
  bool quiet;                 /* no progress lines on stderr */
  bool keep;                  /* keep the work directory */
  bool smoke;
  const char **files;         /* --median / --table / --scaling-dat inputs */
  int nfiles;
} rtq__bench_opts;

/* Parses argv into o. Returns 0, 1 after printing help, or -1 after
 * printing an error. */
int rtq__bench_opts_parse(rtq__bench_opts *o, int argc, char **argv);

/* ---- the Redis server and the admin connection (server.c) ---- */

typedef struct rtq__bench_redis {
  bool own;                   /* we started it (and may flush it) */
  pid_t pid;                  /* own server, else 0 */
  int port;
  char url[300];
  char dir[256];              /* work directory (logs, the server's dir) */
  rtq_conn *admin;            /* the bench's own connection */
  uint64_t own_cmds;          /* commands sent on admin so far */
  json_t *own_by_cmd;         /* {"hmget": count, ...} of those */
} rtq__bench_redis;

/* Makes the work directory, starts a private redis-server on a free
 * loopback port (or checks that o->redis_url is a loopback server), and
 * connects. Returns 0 or -1 after printing why. */
int rtq__bench_redis_start(rtq__bench_redis *r, const rtq__bench_opts *o);
/* Stops the private server (by its pid) and removes the work directory
 * unless keep. Safe on a partly started r. */
void rtq__bench_redis_stop(rtq__bench_redis *r, bool keep);
/* Runs one command on the admin connection (counted). *reply may be NULL
 * to discard. Returns 0 or an RTQ_E* code after printing the error. */
int rtq__bench_cmd(rtq__bench_redis *r, redisReply **reply, int argc, const char **argv);
/* Empties the private server (FLUSHALL SYNC); nothing on an external one. */
int rtq__bench_flush(rtq__bench_redis *r);
/* On an external server, deletes every key of namespace ns (SCAN + UNLINK,
 * at most 60 s); nothing on the private one, which is flushed instead. */
void rtq__bench_drop_ns(rtq__bench_redis *r, const char *ns);

/* One INFO snapshot: the figures the phases take deltas of. */
typedef struct rtq__bench_info {
  double cpu_s;               /* used_cpu_user + used_cpu_sys */
  uint64_t commands;          /* total_commands_processed */
  uint64_t used_memory;
  uint64_t syscr, syscw;      /* read/write syscalls of the private server */
  uint64_t own_cmds;          /* our commands before this INFO */
  json_t *own_by_cmd;         /* copy of rtq__bench_redis.own_by_cmd; owned */
  json_t *cmdstats;           /* {"evalsha": [calls, usec], ...}; owned */
} rtq__bench_info;

int rtq__bench_info_take(rtq__bench_redis *r, rtq__bench_info *out);
void rtq__bench_info_destroy(rtq__bench_info *i);
/* Sets, in obj, the per-task figures between a and b: redis_cpu_us_per_task,
 * commands_per_task (without the bench's own), redis_syscalls_per_task
 * (private server: reads + writes, which count round trips) and, with
 * with_cmdstats, "commandstats": {cmd: {calls_per_task, usec_per_task}}. */
void rtq__bench_info_delta(json_t *obj, const rtq__bench_info *a, const rtq__bench_info *b,
                           size_t n, bool with_cmdstats);
/* A string field of INFO server (redis_version...) into buf. */
int rtq__bench_info_field(rtq__bench_redis *r, const char *section, const char *field, char *buf,
                          size_t cap);

/* ---- worker processes (procs.c) ---- */

typedef struct rtq__bench_proc {
  pid_t pid;
  uint64_t started_ns;        /* monotonic, at spawn */
  long hwm_kb;                /* VmHWM read just before the stop */
  uint64_t ctxsw;             /* context switches of all its threads, then */
  double cpu_s;               /* user + sys, from wait4 */
  int status;                 /* wait status */
} rtq__bench_proc;

/* Spawns the worker (o->wrap + worker binary + flags for ns and url), its
 * output going to <dir>/worker-<tag>.log. Returns 0 or -1. */
int rtq__bench_worker_spawn(rtq__bench_proc *p, const rtq__bench_opts *o,
                            const rtq__bench_redis *r, const char *ns, const char *tag);
/* Reads VmHWM and the context switches, sends SIGTERM, waits up to
 * timeout_ms, then SIGKILL; fills cpu_s. Only ever signals p->pid. */
void rtq__bench_worker_stop(rtq__bench_proc *p, int timeout_ms);
/* True while the process has not exited (reaps it if it has). */
bool rtq__bench_proc_alive(rtq__bench_proc *p);

/* ---- phases ---- */

typedef struct rtq__bench {
  rtq__bench_opts *o;
  rtq__bench_redis redis;
  json_t *out;                /* the whole result */
  unsigned seq;               /* namespace counter */
} rtq__bench;

/* A fresh namespace for a phase ("rtqb-<pid>-<seq>-<what>") into ns. */
void rtq__bench_ns(rtq__bench *b, const char *what, char *ns, size_t cap);
/* A client on the bench's server for namespace ns. NULL after printing why. */
rtq_client *rtq__bench_client(rtq__bench *b, const char *ns);
/* The workload's task i: {"i": i, "data": 64 x's}. Caller frees. */
rtq_args *rtq__bench_task_args(size_t i);

/* enqueue.c: ids (n * RTQ_TASK_ID_SIZE, may be NULL) receive the task ids. */
int rtq__bench_enqueue_single(rtq__bench *b, const char *ns, size_t n, char *ids, json_t *res);
int rtq__bench_enqueue_batch(rtq__bench *b, const char *ns, size_t n, char *ids, json_t *res);

/* limited.c: --limit-other's queue in ns (its limit and backlog), before
 * the workers start. 0, or -1 after printing why. */
int rtq__bench_limited_setup(rtq__bench *b, const char *ns, json_t *res);

/* drain.c */
int rtq__bench_phase_enqueue_batch(rtq__bench *b);
int rtq__bench_phase_single_and_drain(rtq__bench *b);
int rtq__bench_phase_scaling(rtq__bench *b);
/* latency.c */
int rtq__bench_phase_latency(rtq__bench *b);

/* ---- report.c ---- */

void rtq__bench_print_table(const json_t *res, FILE *f);
/* Element-wise median of several result objects; new reference. */
json_t *rtq__bench_median(json_t **runs, size_t n);
/* "workers tasks_per_s redis_bound_tasks_per_s" lines for gnuplot. */
void rtq__bench_print_scaling_dat(const json_t *res, FILE *f);

/* ---- util.c ---- */

uint64_t rtq__bench_now_ns(void);
void rtq__bench_sleep_us(uint64_t us);
/* Progress line on stderr unless quiet. */
void rtq__bench_say(const rtq__bench *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* q-quantile (0..1) of v[0..n) (sorted in place), nearest rank. 0 when n is 0. */
double rtq__bench_quantile(double *v, size_t n, double q);
/* Puts {"p50","p90","p99","max"} of v into a new object; sorts v. */
json_t *rtq__bench_quantiles_json(double *v, size_t n);
/* The number field key of obj, or NAN. */
double rtq__bench_num(const json_t *obj, const char *key);

#endif
