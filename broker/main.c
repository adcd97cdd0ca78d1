/*
 * rtq-broker - see docs/BROKER.md and `rtq-broker --help`.
 *
 * Exit status: 0 after SIGTERM/SIGINT (or a --once sweep that succeeded or
 * stood by for another leader), 1 when the broker could not run or a
 * --once sweep failed, 2 for bad flags or environment.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "broker.h"
#include "health.h"
#include "log.h"
#include "overview.h"
#include "rtq/client.h"
#include "rtq/common.h"
#include "rtq/version.h"

static void log_start(const rtq_broker *b) {
  const rtq_broker_options *o = rtq_broker_options_of(b);
  char hb[16], sw[16], le[16], gr[16], md[16], cl[16], mh[16], tt[16];
  snprintf(hb, sizeof hb, "%d", o->heartbeat_ttl_ms);
  snprintf(sw, sizeof sw, "%d", o->sweep_interval_ms);
  snprintf(le, sizeof le, "%d", o->lease_ttl_ms);
  snprintf(gr, sizeof gr, "%d", o->timeout_grace_ms);
  snprintf(md, sizeof md, "%d", o->max_deliveries);
  snprintf(cl, sizeof cl, "%d", o->config.cleanup_interval);
  snprintf(mh, sizeof mh, "%d", o->config.max_task_history);
  snprintf(tt, sizeof tt, "%d", o->config.task_result_ttl);
  rtq_log(RTQ_LOG_INFO, "broker starting", "broker", rtq_broker_id(b), "version",
          RTQ_VERSION_STRING, "namespace", o->config.ns, "heartbeat_ttl_ms", hb,
          "sweep_interval_ms", sw, "lease_ttl_ms", le, "timeout_grace_ms", gr, "max_deliveries",
          md, "cleanup_interval_s", cl, "max_task_history", mh, "task_result_ttl_s", tt,
          "history", o->config.enable_task_history ? "on" : "off", "protocol",
          "2", "mode",
          o->once ? "once" : "daemon", NULL);
}

/* Takes --metrics-listen ADDR (or =ADDR) out of argv: the /metrics server
 * is rtq-web's (web/metrics_server.c), not a broker option. */
static const char *take_metrics_listen(int *argc, char **argv) {
  const char *addr = NULL;
  int k = 1;
  for (int i = 1; i < *argc; i++) {
    if (strcmp(argv[i], "--metrics-listen") == 0 && i + 1 < *argc) addr = argv[++i];
    else if (strncmp(argv[i], "--metrics-listen=", 17) == 0) addr = argv[i] + 17;
    else argv[k++] = argv[i];
  }
  argv[k] = NULL;
  *argc = k;
  return addr;
}

/* A librtq client of the broker's Redis, for /metrics and the throughput
 * history (two pooled connections: a scrape's thread and the loop's). */
static int open_client(const rtq_broker_options *o, rtq_client **c) {
  rtq_client_options co = {.redis_url = o->config.redis_url, .ns = o->config.ns, .pool_size = 2,
                           .protocol = o->config.protocol, .connect_timeout_ms = o->connect_timeout_ms,
                           .command_timeout_ms = o->command_timeout_ms};
  if (rtq_client_new(&co, c) == 0) return 0;
  rtq_log(RTQ_LOG_ERROR, "cannot open a client of redis", "error", rtq_client_errstr(NULL), NULL);
  return -1;
}

/* Serves /metrics on addr through the client c. */
static int start_metrics(rtq_client *c, const char *addr, web_metrics_server **s) {
  char why[512];
  if (web_metrics_server_start(c, addr, s, why, sizeof why) != 0) {
    rtq_log(RTQ_LOG_ERROR, "cannot serve /metrics", "error", why, NULL);
    return -1;
  }
  rtq_log(RTQ_LOG_INFO, "serving metrics", "url", web_metrics_server_url(*s), NULL);
  return 0;
}

/* The leader copies P:stats's outcome totals into this minute's
 * P:throughput:<minute> every THROUGHPUT_EVERY_MS, as rtq-web does, so the
 * per-minute history exists without a dashboard running (librtq's
 * rtq_throughput_record: a few commands a call, nothing per task; the
 * first snapshot of a minute stays, whoever writes it). */
#define THROUGHPUT_EVERY_MS 10000

typedef struct throughput_job {
  const rtq_broker_options *o;
  rtq_client *c;     /* the /metrics client, or one of its own opened here */
  bool own;
  bool failing;      /* logged once per run of failures */
} throughput_job;

static void record_throughput(void *arg) {
  throughput_job *j = arg;
  int rc = 0;
  const char *why = "";
  if (j->c == NULL) {
    /* Opened at the first tick, not at start-up: a Redis that is down
     * then must not stop the broker, which waits for it. */
    rtq_client_options co = {.redis_url = j->o->config.redis_url, .ns = j->o->config.ns,
                             .pool_size = 1, .protocol = j->o->config.protocol,
                             .connect_timeout_ms = j->o->connect_timeout_ms,
                             .command_timeout_ms = j->o->command_timeout_ms};
    rc = rtq_client_new(&co, &j->c);
    j->own = rc == 0;
    why = rtq_client_errstr(NULL);
  }
  if (j->c != NULL) {
    rc = rtq_throughput_record(j->c, NULL);
    why = rtq_client_errstr(j->c);
  }
  if (rc != 0 && !j->failing)
    rtq_log(RTQ_LOG_WARNING, "cannot record the throughput history", "error", why, NULL);
  j->failing = rc != 0;
}

int main(int argc, char **argv) {
  /* A write to a connection Redis closed must be an error, not a death. */
  signal(SIGPIPE, SIG_IGN);
  /* SIGTERM/SIGINT wait, pending, until the event loop watches them
   * (rtq_broker_run unblocks them): a stop requested while the broker
   * starts is honoured with a clean exit rather than lost or fatal. */
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  sigprocmask(SIG_BLOCK, &stop, NULL);

  rtq_broker_options o;
  rtq_broker_action action;
  char err[512];
  rtq_broker_options_defaults(&o);
  rtq_health_args health; /* --health, --health-file, --max-age: common/health.h */
  int hrc = rtq_health_cli(&health, "rtq-broker", "sweep or lease step", RTQ_HEALTH_BROKER_FILE,
                           &argc, argv);
  if (hrc >= 0) return hrc;
  const char *metrics_addr = take_metrics_listen(&argc, argv);
  int bad = rtq_broker_options_from_env(&o, err, sizeof err) != 0 ||
            rtq_broker_options_parse(&o, argc, argv, &action, err, sizeof err) != 0;
  rtq_config_hide_secrets(argc, argv); /* o holds copies */
  if (bad) {
    fprintf(stderr, "rtq-broker: %s\n", err);
    return 2;
  }
  if (action == RTQ_BROKER_HELP) {
    fputs(rtq_broker_usage(), stdout);
    return 0;
  }
  if (action == RTQ_BROKER_PRINT_CONFIG) {
    static const char *const used[] = {"task_result_ttl",  "enable_task_history", "log_level",
                                       "cleanup_interval", "max_task_history",    "redis_url",
                                       "redis_url_file",   "namespace",           "wait_replicas",
                                       "wait_timeout",     "protocol",            NULL};
    rtq_config_print(&o.config, used, stdout);
    return 0;
  }
  if (action == RTQ_BROKER_VERSION) {
    printf("rtq-broker %s\n", RTQ_VERSION_STRING);
    return 0;
  }
  rtq_log_set_level(o.config.log_level);
  if ((hrc = rtq_health_start(&health, "rtq-broker", &o.health_file)) != 0) return hrc;

  rtq_broker *b = NULL;
  int rc = rtq_broker_new(&o, &b, err, sizeof err);
  if (rc != 0) {
    rtq_log(RTQ_LOG_ERROR, "cannot start", "error", err[0] ? err : rtq_strerror(rc), NULL);
    return 1;
  }
  log_start(b);
  rtq_client *mc = NULL;
  web_metrics_server *ms = NULL;
  if (metrics_addr != NULL && !o.once &&
      (open_client(&o, &mc) != 0 || start_metrics(mc, metrics_addr, &ms) != 0))
    rc = -1;
  throughput_job job = {.o = &o, .c = mc};
  rtq_broker_tick tick = {.every_ms = THROUGHPUT_EVERY_MS, .fn = record_throughput, .arg = &job};
  /* One sweep is short and bounded: a signal simply ends it. */
  if (o.once) sigprocmask(SIG_UNBLOCK, &stop, NULL);
  if (rc == 0) rc = o.once ? rtq_broker_sweep(b) : rtq_broker_run_with(b, &tick);
  web_metrics_server_stop(ms);
  if (job.own) rtq_client_free(job.c);
  rtq_client_free(mc);
  rtq_broker_free(b);
  return rc == 0 ? 0 : 1;
}
