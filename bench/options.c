/* options.c - rtq-bench's command line. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "config.h"

static const char usage[] =
    "usage: rtq-bench [options]            run the benchmarks\n"
    "       rtq-bench --median FILE...     element-wise median of result files (JSON)\n"
    "       rtq-bench --table FILE         the human table of a result file\n"
    "       rtq-bench --scaling-dat FILE   scaling points of a result file for gnuplot\n"
    "\n"
    "  -n, --tasks N          tasks per throughput phase (20000)\n"
    "  --chunk N              tasks per rtq_create_tasks call (1000)\n"
    "  --latency-tasks N      tasks of the latency phase (1000)\n"
    "  --latency-gap-us US    gap between latency tasks (1000)\n"
    "  --concurrency N        slots per worker process (50)\n"
    "  --scaling LIST         worker processes per scaling step (1,2,4)\n"
    "  --only LIST            phases among batch,single,drain,latency,scaling (all)\n"
    "  --timeout S            bound on every wait in a phase (120)\n"
    "  --protocol N           wire protocol of the clients and workers: 2, the\n"
    "                         only one (default: RTQ_PROTOCOL, else 2)\n"
    "  --limit-other R        the drains' workers also serve a queue\n"
    "                         limited to R tasks/s with a backlog of 2000: shows\n"
    "                         what a limit elsewhere costs an unlimited queue\n"
    "  --other-queue          the drains' workers also serve that queue, left\n"
    "                         empty and unlimited: --limit-other's baseline\n"
    "  --redis URL            a loopback Redis to use instead of a private one;\n"
    "                         it is never flushed, phases use fresh namespaces\n"
    "  --redis-url-file FILE  the same URL read from FILE (no password in argv);\n"
    "                         the workers rtq-bench starts read it there too\n"
    "  --redis-server PATH    the redis-server to start (redis-server)\n"
    "  --redis-set NAME=VAL   CONFIG SET on the private server (repeatable)\n"
    "  --worker PATH          the rtq-worker binary (the one built with rtq-bench)\n"
    "  --worker-wrap CMD      run each worker under CMD, split on spaces\n"
    "                         (e.g. \"valgrind --tool=callgrind\")\n"
    "  --script-profile       time each script call (SLOWLOG) during the drain\n"
    "  --smoke                a small quick run for CI: -n 300, 50 latency tasks,\n"
    "                         scaling 1,2; no timing is judged\n"
    "  --json                 print JSON on stdout instead of the table\n"
    "  --quiet                no progress lines on stderr\n"
    "  --keep                 keep the work directory (logs)\n";

static int parse_size(const char *opt, const char *s, size_t lo, size_t hi, size_t *out) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < lo || v > hi) {
    fprintf(stderr, "rtq-bench: %s wants a number from %zu to %zu, not '%s'\n", opt, lo, hi, s);
    return -1;
  }
  *out = (size_t)v;
  return 0;
}

static int parse_int(const char *opt, const char *s, int lo, int hi, int *out) {
  size_t v;
  if (parse_size(opt, s, (size_t)lo, (size_t)hi, &v) != 0) return -1;
  *out = (int)v;
  return 0;
}

static int parse_scaling(rtq__bench_opts *o, const char *s) {
  char buf[128];
  snprintf(buf, sizeof buf, "%s", s);
  o->nscaling = 0;
  for (char *save, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    if (o->nscaling == RTQ__BENCH_MAX_SCALING) {
      fprintf(stderr, "rtq-bench: --scaling takes at most %d steps\n", RTQ__BENCH_MAX_SCALING);
      return -1;
    }
    if (parse_int("--scaling", tok, 1, RTQ__BENCH_MAX_WORKERS, &o->scaling[o->nscaling]) != 0)
      return -1;
    o->nscaling++;
  }
  return o->nscaling > 0 ? 0 : -1;
}

static int parse_phases(rtq__bench_opts *o, const char *s) {
  static const struct {
    const char *name;
    unsigned bit;
  } names[] = {{"batch", RTQ__PH_BATCH},     {"single", RTQ__PH_SINGLE},
               {"drain", RTQ__PH_DRAIN},     {"latency", RTQ__PH_LATENCY},
               {"scaling", RTQ__PH_SCALING}, {"all", RTQ__PH_ALL}};
  char buf[128];
  snprintf(buf, sizeof buf, "%s", s);
  o->phases = 0;
  for (char *save, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    size_t i;
    for (i = 0; i < sizeof names / sizeof names[0]; i++)
      if (strcmp(tok, names[i].name) == 0) break;
    if (i == sizeof names / sizeof names[0]) {
      fprintf(stderr, "rtq-bench: unknown phase '%s' (batch,single,drain,latency,scaling)\n",
              tok);
      return -1;
    }
    o->phases |= names[i].bit;
  }
  /* The drain drains the backlog the single-enqueue phase leaves. */
  if (o->phases & RTQ__PH_DRAIN) o->phases |= RTQ__PH_SINGLE;
  return o->phases ? 0 : -1;
}

/* Splits s on spaces into o->wrap; the pointers point into a copy that
 * lives for the process. */
static int parse_wrap(rtq__bench_opts *o, const char *s) {
  char *copy = strdup(s);
  if (copy == NULL) return -1;
  o->nwrap = 0;
  for (char *save, *tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
    if (o->nwrap == RTQ__BENCH_MAX_WRAP) {
      fprintf(stderr, "rtq-bench: --worker-wrap takes at most %d words\n", RTQ__BENCH_MAX_WRAP);
      return -1;
    }
    o->wrap[o->nwrap++] = tok;
  }
  return 0;
}

static void defaults(rtq__bench_opts *o) {
  memset(o, 0, sizeof *o);
  o->mode = RTQ__BENCH_MODE_RUN;
  o->n = 20000;
  o->chunk = 1000;
  o->latency_n = 1000;
  o->latency_gap_us = 1000;
  o->concurrency = 50;
  o->scaling[0] = 1;
  o->scaling[1] = 2;
  o->scaling[2] = 4;
  o->nscaling = 3;
  o->phases = RTQ__PH_ALL;
  o->phase_timeout_s = 120;
  o->redis_server = "redis-server";
}

/* --redis-url-file: the URL into a buffer of the options; errors name the
 * file, never what it holds. */
static int read_url_file(rtq__bench_opts *o, const char *path) {
  char why[512];
  rtq_config cfg;
  rtq_config_defaults(&cfg);
  if (rtq_config_set(&cfg, "redis_url_file", path, why, sizeof why) != 0) {
    fprintf(stderr, "rtq-bench: --redis-url-file: %s\n", why);
    return -1;
  }
  memcpy(o->url_buf, cfg.redis_url, sizeof o->url_buf);
  memset(&cfg, 0, sizeof cfg);
  o->redis_url = o->url_buf;
  o->redis_url_file = path;
  return 0;
}

int rtq__bench_opts_parse(rtq__bench_opts *o, int argc, char **argv) {
  defaults(o);
  bool n_given = false, lat_given = false, scaling_given = false;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    int rc = 0, takes = 1;
#define NEEDS_VALUE                                               \
  if (v == NULL) {                                                \
    fprintf(stderr, "rtq-bench: %s needs a value\n", a);          \
    return -1;                                                    \
  }
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      fputs(usage, stdout);
      return 1;
    } else if (strcmp(a, "-n") == 0 || strcmp(a, "--tasks") == 0) {
      NEEDS_VALUE rc = parse_size(a, v, 1, 10000000, &o->n);
      n_given = true;
    } else if (strcmp(a, "--chunk") == 0) {
      NEEDS_VALUE rc = parse_size(a, v, 1, 100000, &o->chunk);
    } else if (strcmp(a, "--latency-tasks") == 0) {
      NEEDS_VALUE rc = parse_size(a, v, 1, 1000000, &o->latency_n);
      lat_given = true;
    } else if (strcmp(a, "--latency-gap-us") == 0) {
      NEEDS_VALUE rc = parse_int(a, v, 0, 1000000, &o->latency_gap_us);
    } else if (strcmp(a, "--concurrency") == 0) {
      NEEDS_VALUE rc = parse_int(a, v, 1, 10000, &o->concurrency);
    } else if (strcmp(a, "--scaling") == 0) {
      NEEDS_VALUE rc = parse_scaling(o, v);
      scaling_given = true;
    } else if (strcmp(a, "--only") == 0) {
      NEEDS_VALUE rc = parse_phases(o, v);
    } else if (strcmp(a, "--protocol") == 0) {
      NEEDS_VALUE {
        /* The shared setting's check, so 1 is refused saying why. */
        rtq_config c;
        char why[256];
        rtq_config_defaults(&c);
        rc = rtq_config_set(&c, "protocol", v, why, sizeof why);
        if (rc != 0) fprintf(stderr, "rtq-bench: --protocol: %s\n", why);
        o->protocol = c.protocol;
      }
    } else if (strcmp(a, "--limit-other") == 0) {
      char *end;
      NEEDS_VALUE o->limit_other = strtod(v, &end);
      if (end == v || *end != '\0' || !(o->limit_other >= RTQ_LIMIT_MIN_RATE && o->limit_other <= RTQ_LIMIT_MAX_RATE)) {
        fprintf(stderr, "rtq-bench: --limit-other wants tasks per second, %g to %g, not '%s'\n", RTQ_LIMIT_MIN_RATE,
                RTQ_LIMIT_MAX_RATE, v);
        return -1;
      }
    } else if (strcmp(a, "--timeout") == 0) {
      NEEDS_VALUE rc = parse_int(a, v, 1, 86400, &o->phase_timeout_s);
    } else if (strcmp(a, "--redis") == 0) {
      /* Used from a copy; the password in argv is overwritten (ps). */
      NEEDS_VALUE snprintf(o->url_buf, sizeof o->url_buf, "%s", v);
      o->redis_url = o->url_buf;
      o->redis_url_file = NULL;
      rtq_config_hide_secret(argv[i + 1]);
    } else if (strcmp(a, "--redis-url-file") == 0) {
      NEEDS_VALUE rc = read_url_file(o, v);
    } else if (strcmp(a, "--redis-server") == 0) {
      NEEDS_VALUE o->redis_server = v;
    } else if (strcmp(a, "--redis-set") == 0) {
      NEEDS_VALUE if (o->nredis_set == RTQ__BENCH_MAX_REDIS_SET || strchr(v, '=') == NULL) {
        fprintf(stderr, "rtq-bench: --redis-set wants NAME=VALUE (at most %d)\n",
                RTQ__BENCH_MAX_REDIS_SET);
        return -1;
      }
      o->redis_set[o->nredis_set++] = v;
    } else if (strcmp(a, "--worker") == 0) {
      NEEDS_VALUE o->worker_bin = v;
    } else if (strcmp(a, "--worker-wrap") == 0) {
      NEEDS_VALUE rc = parse_wrap(o, v);
    } else if (strcmp(a, "--median") == 0 || strcmp(a, "--table") == 0 ||
               strcmp(a, "--scaling-dat") == 0) {
      o->mode = a[2] == 'm' ? RTQ__BENCH_MODE_MEDIAN
                : a[2] == 't' ? RTQ__BENCH_MODE_TABLE
                              : RTQ__BENCH_MODE_DAT;
      o->files = (const char **)&argv[i + 1];
      o->nfiles = argc - i - 1;
      if (o->nfiles < 1 || (o->mode != RTQ__BENCH_MODE_MEDIAN && o->nfiles != 1)) {
        fprintf(stderr, "rtq-bench: %s needs %s\n", a,
                o->mode == RTQ__BENCH_MODE_MEDIAN ? "one or more files" : "one file");
        return -1;
      }
      return 0;
    } else {
      takes = 0;
      if (strcmp(a, "--script-profile") == 0) o->script_profile = true;
      else if (strcmp(a, "--smoke") == 0) o->smoke = true;
      else if (strcmp(a, "--json") == 0) o->json = true;
      else if (strcmp(a, "--quiet") == 0) o->quiet = true;
      else if (strcmp(a, "--keep") == 0) o->keep = true;
      else if (strcmp(a, "--other-queue") == 0) o->other_queue = true;
      else {
        fprintf(stderr, "rtq-bench: unknown option %s (see --help)\n", a);
        return -1;
      }
    }
#undef NEEDS_VALUE
    if (rc != 0) return -1;
    i += takes;
  }
  if (o->protocol == 0) {
    /* Not given: the environment's, as every rtq binary reads it. */
    rtq_config c;
    char why[256];
    rtq_config_defaults(&c);
    const char *env = getenv("RTQ_PROTOCOL");
    if (env != NULL && rtq_config_set(&c, "protocol", env, why, sizeof why) != 0) {
      fprintf(stderr, "rtq-bench: RTQ_PROTOCOL: %s\n", why);
      return -1;
    }
    o->protocol = c.protocol;
  }
  if (o->smoke) {
    if (!n_given) o->n = 300;
    if (!lat_given) o->latency_n = 50;
    if (!scaling_given) {
      o->scaling[0] = 1;
      o->scaling[1] = 2;
      o->nscaling = 2;
    }
    o->phase_timeout_s = o->phase_timeout_s < 60 ? o->phase_timeout_s : 60;
  }
  return 0;
}
