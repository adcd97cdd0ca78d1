/*
 * main.c - the rtq-worker binary: flags and environment to options, then
 * rtq_worker_run(). SIGTERM/SIGINT stop it gracefully (a second one skips
 * the grace); it exits 0 after a clean shutdown, 1 when Redis stayed
 * unreachable while it shut down, 2 on bad flags, and 3 when it stopped
 * itself for a restart (too many abandoned handler threads).
 *
 * Precedence: defaults < RTQ_* environment < flags.
 */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "health.h"
#include "log.h"
#include "rtq/version.h"
#include "rtq/worker.h"

static const char usage[] =
    "usage: rtq-worker [options]\n"
    "\n"
    "Runs rtq tasks. Durations take a suffix ms, s, m or h; a bare number is seconds.\n"
    "\n"
    "  --redis URL, --redis-url URL\n"
    "                            redis://[user:pass@]host[:port][/db], unix:///path,\n"
    "                            redis+cluster://host:port[,host:port...] or\n"
    "                            redis-sentinel://host[:port][,...]/MASTER (OPERATIONS.md 2.5)\n"
    "                            (RTQ_REDIS_URL; default redis://127.0.0.1:6379/0)\n"
    "  --redis-url-file FILE     read that URL from FILE, so no password is in argv\n"
    "                            (RTQ_REDIS_URL_FILE)\n"
    "  --namespace NS            key prefix (RTQ_NAMESPACE; default rtq)\n"
    "  --cluster                 deprecated, ignored with a warning: a redis+cluster://\n"
    "                            URL selects Redis Cluster\n"
    "  --queue NAME[:WEIGHT]     serve a queue; repeat for several (default: default:1)\n"
    "  --strict-priority         queues in the order given instead of by weight\n"
    "  --concurrency N           slots (RTQ_MAX_CONCURRENT_TASKS; default 50)\n"
    "  --max-concurrent-tasks N, --task-result-ttl S, --enable-task-history BOOL,\n"
    "  --max-task-history N      the settings' own names, same as the flags here\n"
    "  --isolation thread|process  run handlers in pool threads (default) or forked children\n"
    "  --rlimit-as MB            address-space limit of each child (process isolation)\n"
    "  --rlimit-cpu S            CPU-time limit of each child (process isolation)\n"
    "  --heartbeat-interval DUR  default 5s\n"
    "  --heartbeat-ttl DUR       default 30s\n"
    "  --shutdown-grace DUR      running tasks' time to finish on SIGTERM (default 25s)\n"
    "  --kill-grace DUR          a cancelled or timed-out handler's time to stop (default 5s)\n"
    "  --default-timeout S       timeout of tasks created without one (RTQ_DEFAULT_TIMEOUT; 300)\n"
    "  --result-ttl S            how long results are kept (RTQ_TASK_RESULT_TTL; 86400)\n"
    "  --no-history              do not keep finished tasks in the history (RTQ_ENABLE_TASK_HISTORY)\n"
    "  --max-history N           history cap, reported to the broker (RTQ_MAX_TASK_HISTORY)\n"
    "  --log-level LEVEL         DEBUG, INFO, WARNING, ERROR (RTQ_LOG_LEVEL; INFO)\n"
    "  --demo-handlers           register rtq.echo, rtq.sleep, rtq.fail, rtq.crash, rtq.noop,\n"
    "                            rtq.progress\n"
    "  --plugin PATH             load handlers from a shared object exporting\n"
    "                            int rtq_plugin_register(rtq_worker *); repeatable\n"
    "  --exec NAME=COMMAND       serve NAME (or a pattern like 'billing.*') with a pool of\n"
    "                            handler processes running COMMAND (docs/EXEC.md); repeatable\n"
    "  --exec-pool N             processes per --exec command (default: concurrency, max 64)\n"
    "  --exec-oneshot NAME=COMMAND  one process per task: args JSON on stdin, result JSON\n"
    "                            on stdout, exit 0 = completed; repeatable\n"
    "  --block-timeout DUR       BLMOVE wait with one queue (default 2s)\n"
    "  --poll-interval DUR       with several queues: empty-queue skip and blocking wait (100ms)\n"
    "  --command-timeout DUR     drop a connection whose reply is this late (default 5s)\n"
    "  --connect-timeout DUR     default 2s\n"
    "  --progress-interval DUR   at most one progress write per task per interval (100ms)\n"
    "  --claim-batch N           most tasks taken per round trip (default: concurrency)\n"
    "  --unknown-task fail|requeue\n"
    "                            a task whose name no handler here serves: fail it\n"
    "                            UNKNOWN_TASK (default), or hand it back for another\n"
    "                            worker (5 s later, at most 5 times, then UNKNOWN_TASK)\n"
    "  --max-payload BYTES       larger envelopes are dead-lettered (default 1048576)\n"
    "  --thread-stack KB         stack of each handler thread (default 256)\n"
    "  --max-abandoned-threads N thread isolation: once more than N handler threads that ignored\n"
    "                            their stop are still running, claim nothing more, let the other\n"
    "                            tasks finish and exit 3 for a restart (default: concurrency)\n"
    "  --wait-replicas N         after each finish call, WAIT for N replicas (RTQ_WAIT_REPLICAS;\n"
    "                            default 0: none); fewer are logged and counted\n"
    "  --wait-timeout MS         that WAIT's timeout in ms (RTQ_WAIT_TIMEOUT; default 1000)\n"
    "  --protocol N              wire protocol: 2, the only one (RTQ_PROTOCOL; 1 is\n"
    "                            refused); a namespace holding protocol 1 data is refused\n"
    "  --signing-key-file FILE   sign each outcome with this worker key file's\n"
    "                            first key (kid:hex lines, mode 0600; docs/SECURITY.md)\n"
    "  --task-keys FILE          the producers' keys; a task without a valid\n"
    "                            signature is not run (fails BAD_SIGNATURE, dead-lettered)\n"
    "  --health-file PATH        touched after each heartbeat Redis accepted\n"
    "                            (RTQ_HEALTH_FILE; default /tmp/rtq-worker.health)\n"
    "  --health [--max-age DUR]  exit 0 when that file is fresh (default 15s), else 1\n"
    "  --print-config            print the settings these flags and RTQ_* give, then exit\n"
    "  --help, --version\n"
    "\n"
    "Each setting's flag also takes its name with underscores (--max_concurrent_tasks).\n";

enum {
  OPT_REDIS = 256, OPT_URL_FILE, OPT_NS, OPT_CLUSTER, OPT_QUEUE, OPT_STRICT, OPT_CONC, OPT_ISO, OPT_RAS, OPT_RCPU,
  OPT_HBI, OPT_HBT, OPT_SGRACE, OPT_KGRACE, OPT_DTIMEOUT, OPT_RTTL, OPT_NOHIST, OPT_HIST, OPT_MAXHIST,
  OPT_LOG, OPT_DEMO, OPT_PLUGIN, OPT_BLOCK, OPT_POLL, OPT_CMDTO, OPT_CONNTO, OPT_PROG, OPT_BATCH, OPT_UNKNOWN,
  OPT_PAYLOAD, OPT_STACK, OPT_ABANDONED, OPT_PRINT, OPT_EXEC, OPT_EXEC_POOL, OPT_EXEC_ONESHOT, OPT_HELP,
  OPT_VERSION, OPT_WAIT_REPLICAS, OPT_WAIT_TIMEOUT, OPT_PROTOCOL, OPT_SIGN_KEY, OPT_TASK_KEYS
};

static const struct option longopts[] = {
    {"redis", required_argument, NULL, OPT_REDIS},
    {"namespace", required_argument, NULL, OPT_NS},
    {"cluster", no_argument, NULL, OPT_CLUSTER},
    {"queue", required_argument, NULL, OPT_QUEUE},
    {"strict-priority", no_argument, NULL, OPT_STRICT},
    {"concurrency", required_argument, NULL, OPT_CONC},
    /* The settings' own names (config.h) work as flags too. */
    {"max-concurrent-tasks", required_argument, NULL, OPT_CONC},
    {"task-result-ttl", required_argument, NULL, OPT_RTTL},
    {"enable-task-history", required_argument, NULL, OPT_HIST},
    {"max-task-history", required_argument, NULL, OPT_MAXHIST},
    {"isolation", required_argument, NULL, OPT_ISO},
    {"rlimit-as", required_argument, NULL, OPT_RAS},
    {"rlimit-cpu", required_argument, NULL, OPT_RCPU},
    {"heartbeat-interval", required_argument, NULL, OPT_HBI},
    {"heartbeat-ttl", required_argument, NULL, OPT_HBT},
    {"shutdown-grace", required_argument, NULL, OPT_SGRACE},
    {"kill-grace", required_argument, NULL, OPT_KGRACE},
    {"default-timeout", required_argument, NULL, OPT_DTIMEOUT},
    {"result-ttl", required_argument, NULL, OPT_RTTL},
    {"no-history", no_argument, NULL, OPT_NOHIST},
    {"max-history", required_argument, NULL, OPT_MAXHIST},
    {"log-level", required_argument, NULL, OPT_LOG},
    {"demo-handlers", no_argument, NULL, OPT_DEMO},
    {"plugin", required_argument, NULL, OPT_PLUGIN},
    {"block-timeout", required_argument, NULL, OPT_BLOCK},
    {"poll-interval", required_argument, NULL, OPT_POLL},
    {"command-timeout", required_argument, NULL, OPT_CMDTO},
    {"connect-timeout", required_argument, NULL, OPT_CONNTO},
    {"progress-interval", required_argument, NULL, OPT_PROG},
    {"claim-batch", required_argument, NULL, OPT_BATCH},
    {"unknown-task", required_argument, NULL, OPT_UNKNOWN},
    {"max-payload", required_argument, NULL, OPT_PAYLOAD},
    {"thread-stack", required_argument, NULL, OPT_STACK},
    {"max-abandoned-threads", required_argument, NULL, OPT_ABANDONED},
    /* Each setting under its own name with underscores, as in config.h
     * and the README's table (test_settings reads that table). */
    {"redis-url", required_argument, NULL, OPT_REDIS},
    {"redis_url", required_argument, NULL, OPT_REDIS},
    {"redis-url-file", required_argument, NULL, OPT_URL_FILE},
    {"redis_url_file", required_argument, NULL, OPT_URL_FILE},
    {"max_concurrent_tasks", required_argument, NULL, OPT_CONC},
    {"default_timeout", required_argument, NULL, OPT_DTIMEOUT},
    {"task_result_ttl", required_argument, NULL, OPT_RTTL},
    {"enable_task_history", required_argument, NULL, OPT_HIST},
    {"log_level", required_argument, NULL, OPT_LOG},
    {"max_task_history", required_argument, NULL, OPT_MAXHIST},
    {"wait-replicas", required_argument, NULL, OPT_WAIT_REPLICAS},
    {"wait_replicas", required_argument, NULL, OPT_WAIT_REPLICAS},
    {"wait-timeout", required_argument, NULL, OPT_WAIT_TIMEOUT},
    {"wait_timeout", required_argument, NULL, OPT_WAIT_TIMEOUT},
    {"protocol", required_argument, NULL, OPT_PROTOCOL},
    {"signing-key-file", required_argument, NULL, OPT_SIGN_KEY},
    {"task-keys", required_argument, NULL, OPT_TASK_KEYS},
    {"print-config", no_argument, NULL, OPT_PRINT},
    {"exec", required_argument, NULL, OPT_EXEC},
    {"exec-pool", required_argument, NULL, OPT_EXEC_POOL},
    {"exec-oneshot", required_argument, NULL, OPT_EXEC_ONESHOT},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0}};

/* Everything main() collects before it builds the worker. */
typedef struct cli {
  rtq_config cfg;
  rtq_worker_options o;
  rtq_worker_queue queues[RTQ_WORKER_MAX_QUEUES];
  char qnames[RTQ_WORKER_MAX_QUEUES][129];
  size_t nqueues;
  const char *plugins[64];
  int nplugins;
  const char *execs[64];
  bool oneshot[64];
  int nexecs, exec_pool;
  bool demo;
  bool print_config;
} cli;

/* The settings of config.h that rtq-worker uses (--print-config). */
static const char *const worker_settings[] = {
    "max_concurrent_tasks", "default_timeout", "task_result_ttl", "enable_task_history",
    "log_level",            "max_task_history", "redis_url",      "redis_url_file",
    "namespace",            "wait_replicas",    "wait_timeout",   "protocol",       NULL};

static int die_usage(const char *fmt, const char *arg) {
  fprintf(stderr, "rtq-worker: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n(see rtq-worker --help)\n");
  return 2;
}

/* A duration flag (the one spelling of config.h: "250ms", "2s", "1.5",
 * "1m"; bare = seconds) into ms, 1 ms .. 24 h. */
static int parse_duration(const char *s, int *out) {
  long ms;
  if (rtq_parse_duration_ms(s, 1, 86400000L, &ms) != 0) return -1;
  *out = (int)ms;
  return 0;
}

static int parse_int(const char *s, long long lo, long long hi, long long *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (end == s || *end != '\0' || errno != 0 || v < lo || v > hi) return -1;
  *out = v;
  return 0;
}

static int add_queue(cli *c, const char *spec) {
  if (c->nqueues == RTQ_WORKER_MAX_QUEUES) return die_usage("too many --queue flags: %s", spec);
  char *name = c->qnames[c->nqueues];
  const char *colon = strrchr(spec, ':');
  long long weight = 1;
  size_t nlen = strlen(spec);
  if (colon != NULL && parse_int(colon + 1, 1, 1000, &weight) == 0) nlen = (size_t)(colon - spec);
  else if (colon != NULL && colon[1] >= '0' && colon[1] <= '9')
    return die_usage("invalid queue weight in %s: expected NAME:1..1000", spec);
  if (nlen == 0 || nlen > 128) return die_usage("invalid queue name: %s", spec);
  memcpy(name, spec, nlen);
  name[nlen] = '\0';
  c->queues[c->nqueues].name = name;
  c->queues[c->nqueues].weight = (int)weight;
  c->nqueues++;
  return 0;
}

static int set_cfg(cli *c, const char *name, const char *value) {
  char err[256];
  if (rtq_config_set(&c->cfg, name, value, err, sizeof err) != 0) return die_usage("%s", err);
  return 0;
}

static int parse_flags(cli *c, int argc, char **argv) {
  int opt, rc = 0;
  long long n;
  while (rc == 0 && (opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    int *dur = NULL;
    switch (opt) {
      case OPT_REDIS: rc = set_cfg(c, "redis_url", optarg); break;
      case OPT_URL_FILE: rc = set_cfg(c, "redis_url_file", optarg); break;
      case OPT_NS: rc = set_cfg(c, "namespace", optarg); break;
      case OPT_CLUSTER: /* deprecated: kept so that existing command lines still start */
        fprintf(stderr, "rtq-worker: warning: --cluster is deprecated and ignored: a redis+cluster:// URL "
                        "selects Redis Cluster\n");
        break;
      case OPT_QUEUE: rc = add_queue(c, optarg); break;
      case OPT_STRICT: c->o.strict_priority = true; break;
      case OPT_CONC: rc = set_cfg(c, "max_concurrent_tasks", optarg); break;
      case OPT_ISO:
        if (strcmp(optarg, "thread") == 0) c->o.isolation = RTQ_ISOLATION_THREAD;
        else if (strcmp(optarg, "process") == 0) c->o.isolation = RTQ_ISOLATION_PROCESS;
        else rc = die_usage("invalid --isolation %s: expected thread or process", optarg);
        break;
      case OPT_RAS:
        if (parse_int(optarg, 1, 1 << 30, &n) != 0) rc = die_usage("invalid --rlimit-as %s (MB)", optarg);
        c->o.rlimit_as_mb = (int)n;
        break;
      case OPT_RCPU:
        if (parse_int(optarg, 1, 31536000, &n) != 0) rc = die_usage("invalid --rlimit-cpu %s (s)", optarg);
        c->o.rlimit_cpu_s = (int)n;
        break;
      case OPT_HBI: dur = &c->o.heartbeat_interval_ms; break;
      case OPT_HBT: dur = &c->o.heartbeat_ttl_ms; break;
      case OPT_SGRACE: dur = &c->o.shutdown_grace_ms; break;
      case OPT_KGRACE: dur = &c->o.kill_grace_ms; break;
      case OPT_BLOCK: dur = &c->o.block_timeout_ms; break;
      case OPT_POLL: dur = &c->o.poll_ms; break;
      case OPT_CMDTO: dur = &c->o.command_timeout_ms; break;
      case OPT_CONNTO: dur = &c->o.connect_timeout_ms; break;
      case OPT_PROG: dur = &c->o.progress_interval_ms; break;
      case OPT_DTIMEOUT: rc = set_cfg(c, "default_timeout", optarg); break;
      case OPT_RTTL: rc = set_cfg(c, "task_result_ttl", optarg); break;
      case OPT_NOHIST: rc = set_cfg(c, "enable_task_history", "false"); break;
      case OPT_HIST: rc = set_cfg(c, "enable_task_history", optarg); break;
      case OPT_MAXHIST: rc = set_cfg(c, "max_task_history", optarg); break;
      case OPT_LOG: rc = set_cfg(c, "log_level", optarg); break;
      case OPT_WAIT_REPLICAS: rc = set_cfg(c, "wait_replicas", optarg); break;
      case OPT_WAIT_TIMEOUT: rc = set_cfg(c, "wait_timeout", optarg); break;
      case OPT_PROTOCOL: rc = set_cfg(c, "protocol", optarg); break;
      case OPT_SIGN_KEY: c->o.signing_key_file = optarg; break;
      case OPT_TASK_KEYS: c->o.task_keys_file = optarg; break;
      case OPT_DEMO: c->demo = true; break;
      case OPT_PLUGIN:
        if (c->nplugins == 64) rc = die_usage("too many plugins (%s)", optarg);
        else c->plugins[c->nplugins++] = optarg;
        break;
      case OPT_EXEC:
      case OPT_EXEC_ONESHOT:
        if (c->nexecs == 64) rc = die_usage("too many --exec flags (%s)", optarg);
        else if (strchr(optarg, '=') == NULL || optarg[0] == '=') rc = die_usage("invalid --exec %s: expected NAME=COMMAND", optarg);
        else {
          c->oneshot[c->nexecs] = opt == OPT_EXEC_ONESHOT;
          c->execs[c->nexecs++] = optarg;
        }
        break;
      case OPT_EXEC_POOL:
        if (parse_int(optarg, 1, 64, &n) != 0) rc = die_usage("invalid --exec-pool %s (1..64)", optarg);
        c->exec_pool = (int)n;
        break;
      case OPT_BATCH:
        if (parse_int(optarg, 1, 10000, &n) != 0) rc = die_usage("invalid --claim-batch %s", optarg);
        c->o.claim_batch = (int)n;
        break;
      case OPT_UNKNOWN:
        if (strcmp(optarg, "fail") == 0) c->o.unknown_task_requeue = false;
        else if (strcmp(optarg, "requeue") == 0) c->o.unknown_task_requeue = true;
        else rc = die_usage("invalid --unknown-task %s (fail or requeue)", optarg);
        break;
      case OPT_PAYLOAD:
        if (parse_int(optarg, 64, 1LL << 40, &n) != 0) rc = die_usage("invalid --max-payload %s", optarg);
        c->o.max_payload = (size_t)n;
        break;
      case OPT_STACK:
        if (parse_int(optarg, 64, 1024 * 1024, &n) != 0) rc = die_usage("invalid --thread-stack %s (KB)", optarg);
        c->o.thread_stack_kb = (size_t)n;
        break;
      case OPT_ABANDONED:
        if (parse_int(optarg, 1, 10000, &n) != 0) rc = die_usage("invalid --max-abandoned-threads %s (1..10000)", optarg);
        c->o.max_abandoned_threads = (int)n;
        break;
      case OPT_PRINT: c->print_config = true; break;
      case OPT_HELP: fputs(usage, stdout); exit(0);
      case OPT_VERSION: printf("rtq-worker %s\n", RTQ_VERSION_STRING); exit(0);
      default: return 2;
    }
    if (rc == 0 && dur != NULL && parse_duration(optarg, dur) != 0)
      rc = die_usage("invalid duration %s: expected e.g. 250ms, 2s, 1.5 (seconds), 1m", optarg);
  }
  if (rc == 0 && optind < argc) rc = die_usage("unexpected argument %s", argv[optind]);
  return rc;
}

int main(int argc, char **argv) {
  /* SIGTERM/SIGINT wait, pending, until the event loop watches them
   * (rtq__ev_run unblocks them): a stop requested while the worker starts
   * (connecting, loading plugins) is then honoured with a clean exit. Pool
   * threads inherit the block, which they keep. */
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  sigprocmask(SIG_BLOCK, &stop, NULL);

  /* Memory: a fixed mmap threshold returns large buffers (a hostile 10 MB
   * envelope) to the kernel when freed instead of keeping them in the heap,
   * and two arenas keep fifty handler threads from each growing their own. */
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  mallopt(M_TRIM_THRESHOLD, 256 * 1024);
  mallopt(M_ARENA_MAX, 2);

  cli c;
  memset(&c, 0, sizeof c);
  char err[512];
  rtq_config_defaults(&c.cfg);
  rtq_worker_options_init(&c.o);
  if (rtq_config_from_env(&c.cfg, err, sizeof err) != 0) {
    fprintf(stderr, "rtq-worker: %s\n", err);
    return 2;
  }
  rtq_health_args health; /* --health, --health-file, --max-age: common/health.h */
  int rc = rtq_health_cli(&health, "rtq-worker", "heartbeat", RTQ_HEALTH_WORKER_FILE, &argc, argv);
  if (rc >= 0) return rc;
  rc = parse_flags(&c, argc, argv);
  rtq_config_hide_secrets(argc, argv); /* c.cfg holds copies */
  /* The URL may hold the password: handlers, and the programs they start,
   * inherit the environment, so it leaves it once read. */
  unsetenv("RTQ_REDIS_URL");
  unsetenv("RTQ_REDIS_URL_FILE");
  if (rc != 0) return rc;
  if (c.print_config) {
    rtq_config_print(&c.cfg, worker_settings, stdout);
    return 0;
  }
  rtq_log_set_level(c.cfg.log_level);
  if ((rc = rtq_health_start(&health, "rtq-worker", &c.o.health_file)) != 0) return rc;

  c.o.redis_url = c.cfg.redis_url;
  c.o.ns = c.cfg.ns;
  c.o.concurrency = c.cfg.max_concurrent_tasks;
  c.o.default_timeout_s = c.cfg.default_timeout;
  c.o.result_ttl_s = c.cfg.task_result_ttl;
  c.o.history = c.cfg.enable_task_history;
  c.o.max_history = c.cfg.max_task_history;
  c.o.wait_replicas = c.cfg.wait_replicas;
  c.o.wait_timeout_ms = c.cfg.wait_timeout;
  c.o.protocol = c.cfg.protocol;
  c.o.queues = c.nqueues ? c.queues : NULL;
  c.o.nqueues = c.nqueues;
  c.o.handle_signals = true;

  rtq_worker *w = NULL;
  if ((rc = rtq_worker_new(&c.o, &w, err, sizeof err)) != 0) {
    fprintf(stderr, "rtq-worker: %s\n", err);
    return 2;
  }
  if (c.demo && rtq_worker_register_demo_handlers(w) != 0) {
    fprintf(stderr, "rtq-worker: %s\n", rtq_worker_errstr(w));
    rtq_worker_free(w);
    return 2;
  }
  for (int i = 0; i < c.nplugins; i++) {
    if (rtq_worker_load_plugin(w, c.plugins[i]) != 0) {
      fprintf(stderr, "rtq-worker: %s\n", rtq_worker_errstr(w));
      rtq_worker_free(w);
      return 2;
    }
  }
  for (int i = 0; i < c.nexecs; i++) {
    char name[256];
    const char *eq = strchr(c.execs[i], '=');
    snprintf(name, sizeof name, "%.*s", (int)(eq - c.execs[i]), c.execs[i]);
    int erc = c.oneshot[i] ? rtq_worker_register_exec_oneshot(w, name, eq + 1)
                           : rtq_worker_register_exec(w, name, eq + 1, c.exec_pool);
    if (erc != 0) {
      fprintf(stderr, "rtq-worker: --exec %s: %s\n", c.execs[i], rtq_worker_errstr(w));
      rtq_worker_free(w);
      return 2;
    }
  }
  rtq_log(RTQ_LOG_INFO, "rtq-worker starting", "worker", rtq_worker_id(w), "version", RTQ_VERSION_STRING,
          NULL);
  rc = rtq_worker_run(w);
  if (rc != 0) fprintf(stderr, "rtq-worker: %s\n", rtq_worker_errstr(w));
  rtq_worker_free(w);
  /* 3: it stopped itself and wants a restart (docs/WORKER.md). */
  return rc == 0 ? 0 : rc == RTQ_ESTATE ? 3 : 1;
}
