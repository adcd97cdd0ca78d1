/*
 * options.c - the broker's settings: defaults, RTQ_* environment variables
 * and command-line flags (in that order of precedence, lowest first).
 *
 * Durations are read by rtq_parse_duration_ms (config.h), as in every rtq
 * binary: a number with an optional unit "ms", "s", "m" or "h", a bare
 * number being seconds ("1.5", "250ms", "2m"), in flags and environment
 * variables alike. The shared task-manager settings keep the units
 * config.h gives them (cleanup_interval and task_result_ttl in whole
 * seconds).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "defaults.h"
#include "envelope.h"
#include "rtq/common.h"

void rtq_broker_options_defaults(rtq_broker_options *o) {
  memset(o, 0, sizeof *o);
  rtq_config_defaults(&o->config);
  o->heartbeat_ttl_ms = RTQ_HEARTBEAT_TTL_MS;
  o->sweep_interval_ms = RTQ_SWEEP_INTERVAL_MS;
  o->lease_ttl_ms = RTQ_LEASE_TTL_MS;
  o->timeout_grace_ms = RTQ_TIMEOUT_GRACE_MS;
  o->max_deliveries = RTQ_MAX_DELIVERIES;
  o->command_timeout_ms = RTQ_BROKER_COMMAND_TIMEOUT_MS;
  o->connect_timeout_ms = RTQ_CONNECT_TIMEOUT_MS;
  o->max_payload = RTQ_ENVELOPE_MAX_SIZE_DEFAULT;
}

/* A broker-only integer setting: its flag, env var, range and unit. */
typedef struct int_setting {
  const char *flag;
  const char *env;
  size_t offset;
  long min, max;
  int is_duration; /* a duration, kept in ms (see the top of the file) */
} int_setting;

#define OFF(field) offsetof(rtq_broker_options, field)

static const int_setting int_settings[] = {
    {"heartbeat-ttl", "RTQ_HEARTBEAT_TTL", OFF(heartbeat_ttl_ms), 100, 86400000, 1},
    {"sweep-interval", "RTQ_SWEEP_INTERVAL", OFF(sweep_interval_ms), 10, 3600000, 1},
    {"lease-ttl", "RTQ_LEASE_TTL", OFF(lease_ttl_ms), 300, 3600000, 1},
    {"timeout-grace", "RTQ_TIMEOUT_GRACE", OFF(timeout_grace_ms), 0, 86400000, 1},
    {"max-deliveries", "RTQ_MAX_DELIVERIES", OFF(max_deliveries), 1, 1000000, 0},
    {"command-timeout", "RTQ_COMMAND_TIMEOUT", OFF(command_timeout_ms), 50, 600000, 1},
    {"max-payload", "RTQ_MAX_PAYLOAD", OFF(max_payload), 1024, 1073741824, 0},
};

#define NUM_INT_SETTINGS (sizeof int_settings / sizeof int_settings[0])

/* Flags that are the shared settings of config.h under the same name. */
static const char *const config_flags[] = {
    "redis",            "redis_url",        "redis-url",           "redis_url",
    "redis-url-file",   "redis_url_file",   "redis_url_file",      "redis_url_file",
    "namespace",        "namespace",        "cleanup-interval",    "cleanup_interval",
    "max-task-history", "max_task_history", "task-result-ttl",     "task_result_ttl",
    "log-level",        "log_level",        "enable-task-history", "enable_task_history",
    "wait-replicas",    "wait_replicas",    "wait-timeout",        "wait_timeout",
    "protocol",         "protocol",
};

static void errf(char *errbuf, size_t errcap, const char *fmt, const char *a, const char *b)
    __attribute__((format(printf, 3, 0)));

static void errf(char *errbuf, size_t errcap, const char *fmt, const char *a, const char *b) {
  if (errbuf != NULL && errcap > 0) snprintf(errbuf, errcap, fmt, a, b);
}

/* Parses an integer, or a duration into ms (rtq_parse_duration_ms). */
static int parse_value(const char *s, int is_duration, long min, long max, long *out) {
  if (is_duration) return rtq_parse_duration_ms(s, min, max, out);
  if (s == NULL || *s == '\0' || *s == '-' || *s == '+' || *s == ' ') return RTQ_EINVAL;
  errno = 0;
  char *end = NULL;
  long long v = strtoll(s, &end, 10);
  if (errno != 0 || *end != '\0' || v < min || v > max) return RTQ_EINVAL;
  *out = (long)v;
  return 0;
}

static int set_int(rtq_broker_options *o, const int_setting *st, const char *value, char *errbuf,
                   size_t errcap) {
  long v = 0;
  if (parse_value(value, st->is_duration, st->min, st->max, &v) != 0) {
    char range[128];
    if (!st->is_duration)
      snprintf(range, sizeof range, "an integer %ld..%ld", st->min, st->max);
    else
      snprintf(range, sizeof range, "a duration %ld..%ld ms (e.g. 1.5 = 1.5 s, 250ms, 2m)",
               st->min, st->max);
    errf(errbuf, errcap, "invalid %s: expected %s", st->flag, range);
    return RTQ_EINVAL;
  }
  *(int *)((char *)o + st->offset) = (int)v;
  return 0;
}

int rtq_broker_options_from_env(rtq_broker_options *o, char *errbuf, size_t errcap) {
  int rc = rtq_config_from_env(&o->config, errbuf, errcap);
  if (rc != 0) return rc;
  for (size_t i = 0; i < NUM_INT_SETTINGS; i++) {
    const char *v = getenv(int_settings[i].env);
    if (v == NULL) continue;
    char inner[200];
    if (set_int(o, &int_settings[i], v, inner, sizeof inner) != 0) {
      errf(errbuf, errcap, "%s: %s", int_settings[i].env, inner);
      return RTQ_EINVAL;
    }
  }
  return 0;
}

static const int_setting *find_int(const char *name) {
  for (size_t i = 0; i < NUM_INT_SETTINGS; i++)
    if (strcmp(int_settings[i].flag, name) == 0) return &int_settings[i];
  return NULL;
}

static const char *find_config(const char *name) {
  for (size_t i = 0; i < sizeof config_flags / sizeof config_flags[0]; i += 2)
    if (strcmp(config_flags[i], name) == 0) return config_flags[i + 1];
  return NULL;
}

/* Flags without a value. Returns 1 when name is one (and applies it). */
static int apply_switch(rtq_broker_options *o, const char *name, rtq_broker_action *action) {
  if (strcmp(name, "once") == 0) o->once = true;
  else if (strcmp(name, "no-history") == 0) o->config.enable_task_history = false;
  else if (strcmp(name, "ignore-lease") == 0) o->ignore_lease = true;
  else if (strcmp(name, "print-config") == 0) *action = RTQ_BROKER_PRINT_CONFIG;
  else if (strcmp(name, "help") == 0) *action = RTQ_BROKER_HELP;
  else if (strcmp(name, "version") == 0) *action = RTQ_BROKER_VERSION;
  else return 0;
  return 1;
}

static int apply_value(rtq_broker_options *o, const char *name, const char *value, char *errbuf,
                       size_t errcap) {
  const int_setting *st = find_int(name);
  if (st != NULL) return set_int(o, st, value, errbuf, errcap);
  const char *cfg = find_config(name);
  if (cfg != NULL) return rtq_config_set(&o->config, cfg, value, errbuf, errcap) == 0 ? 0 : RTQ_EINVAL;
  if (strcmp(name, "signing-key-file") == 0) {
    o->signing_key_file = value;
    return 0;
  }
  if (strcmp(name, "id") == 0) {
    if (rtq_validate_name(value) != 0) {
      errf(errbuf, errcap, "invalid %s: expected %s", "--id", "[A-Za-z0-9._:-]{1,128}");
      return RTQ_EINVAL;
    }
    snprintf(o->id, sizeof o->id, "%s", value);
    return 0;
  }
  errf(errbuf, errcap, "unknown flag --%s%s (see --help)", name, "");
  return RTQ_EINVAL;
}

int rtq_broker_options_parse(rtq_broker_options *o, int argc, char **argv,
                             rtq_broker_action *action, char *errbuf, size_t errcap) {
  *action = RTQ_BROKER_RUN;
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    if (strcmp(arg, "-h") == 0) arg = "--help";
    if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
      errf(errbuf, errcap, "unexpected argument \"%.64s\"%s (see --help)", arg, "");
      return RTQ_EINVAL;
    }
    char name[64];
    const char *eq = strchr(arg + 2, '=');
    size_t n = eq != NULL ? (size_t)(eq - (arg + 2)) : strlen(arg + 2);
    if (n >= sizeof name) {
      errf(errbuf, errcap, "unknown flag %.64s%s (see --help)", arg, "");
      return RTQ_EINVAL;
    }
    memcpy(name, arg + 2, n);
    name[n] = '\0';
    /* The settings' own names (max_task_history) work as flags too. */
    for (char *p = name; *p != '\0'; p++)
      if (*p == '_') *p = '-';
    if (eq == NULL && apply_switch(o, name, action)) continue;
    rtq_broker_action ignored;
    if (eq != NULL && apply_switch(&(rtq_broker_options){0}, name, &ignored)) {
      errf(errbuf, errcap, "flag --%s takes no value%s", name, "");
      return RTQ_EINVAL;
    }
    const char *value = eq != NULL ? eq + 1 : NULL;
    if (value == NULL) {
      if (find_int(name) == NULL && find_config(name) == NULL && strcmp(name, "id") != 0 &&
          strcmp(name, "signing-key-file") != 0) {
        errf(errbuf, errcap, "unknown flag --%s%s (see --help)", name, "");
        return RTQ_EINVAL;
      }
      if (i + 1 >= argc) {
        errf(errbuf, errcap, "flag --%s needs a value%s", name, "");
        return RTQ_EINVAL;
      }
      value = argv[++i];
    }
    if (apply_value(o, name, value, errbuf, errcap) != 0) return RTQ_EINVAL;
  }
  return 0;
}

const char *rtq_broker_usage(void) {
  return "usage: rtq-broker [flags]\n"
         "\n"
         "The rtq coordinator: redelivers the tasks of dead workers, backs up\n"
         "timeouts, promotes delayed tasks and retries, republishes cancel\n"
         "requests, and keeps the history and indexes bounded. Run one or more;\n"
         "a leader lease lets exactly one act at a time.\n"
         "\n"
         "Durations take a unit, ms, s, m or h; a bare number is seconds, as in\n"
         "every rtq binary: 1.5, 250ms, 30s, 1m.\n"
         "\n"
         "  --redis URL, --redis-url URL\n"
         "                           redis://[user:pass@]host[:port][/db], unix:///path,\n"
         "                           redis+cluster://host:port[,host:port...] or\n"
         "                           redis-sentinel://host[:port][,...]/MASTER (OPERATIONS.md 2.5)\n"
         "                           (RTQ_REDIS_URL; default redis://127.0.0.1:6379/0)\n"
         "  --redis-url-file FILE    read that URL from FILE, so no password is in argv\n"
         "                           (RTQ_REDIS_URL_FILE)\n"
         "  --namespace NS           key prefix (RTQ_NAMESPACE; default rtq)\n"
         "  --protocol N             wire protocol: 2, the only one (RTQ_PROTOCOL; 1 is\n"
         "                           refused)\n"
         "  --heartbeat-ttl D        a worker silent this long is dead (RTQ_HEARTBEAT_TTL;\n"
         "                           default 30s)\n"
         "  --sweep-interval D       time between sweeps (RTQ_SWEEP_INTERVAL; default 1s)\n"
         "  --lease-ttl D            leader lease, renewed every third (RTQ_LEASE_TTL;\n"
         "                           default 10s)\n"
         "  --timeout-grace D        wait past a deadline before the backstop acts\n"
         "                           (RTQ_TIMEOUT_GRACE; default 5s)\n"
         "  --max-deliveries N       deliveries before a lost task fails WORKER_LOST\n"
         "                           (RTQ_MAX_DELIVERIES; default 3)\n"
         "  --cleanup-interval S     seconds between index cleanup rounds\n"
         "                           (RTQ_CLEANUP_INTERVAL; default 3600)\n"
         "  --max-task-history N     history cap (RTQ_MAX_TASK_HISTORY; default 10000)\n"
         "  --task-result-ttl S      result TTL in seconds for tasks the broker ends\n"
         "                           (RTQ_TASK_RESULT_TTL; default 86400)\n"
         "  --no-history, --enable-task-history BOOL\n"
         "                           whether terminal tasks the broker ends enter the\n"
         "                           history (RTQ_ENABLE_TASK_HISTORY; default true)\n"
         "  --log-level L            DEBUG, INFO, WARNING, ERROR (RTQ_LOG_LEVEL; default INFO)\n"
         "  --command-timeout D      per-command Redis timeout (RTQ_COMMAND_TIMEOUT;\n"
         "                           default 2s)\n"
         "  --wait-replicas N        after a sweep that ended or redelivered tasks, WAIT for\n"
         "                           N replicas (RTQ_WAIT_REPLICAS; default 0: none)\n"
         "  --wait-timeout MS        that WAIT's timeout in ms, below --command-timeout\n"
         "                           (RTQ_WAIT_TIMEOUT; default 1000)\n"
         "  --max-payload BYTES      larger envelopes are dead-lettered, as by the\n"
         "                           workers (RTQ_MAX_PAYLOAD; default 1048576)\n"
         "  --id ID                  broker id (default host-pid-random)\n"
         "  --signing-key-file FILE  sign the tasks schedules create with this\n"
         "                           producer key file's first key (docs/SECURITY.md)\n"
         "  --once                   run one sweep, then exit (cron, tests)\n"
         "  --ignore-lease           act without the lease (diagnostics; every step is\n"
         "                           gated in Redis, so this is safe, only wasteful)\n"
         "  --health-file PATH       touched after each sweep and lease step Redis answered\n"
         "                           (RTQ_HEALTH_FILE; default /tmp/rtq-broker.health)\n"
         "  --health [--max-age D]   exit 0 when that file is fresh (default 15s), else 1\n"
         "  --metrics-listen HOST:PORT\n"
         "                           also serve Prometheus GET /metrics there (port 0: a\n"
         "                           free one, logged; not with --once)\n"
         "  --print-config           print the settings these flags and RTQ_* give, then exit\n"
         "  --help, --version\n"
         "\n"
         "Every flag also takes its name with underscores (--max_task_history).\n";
}
