/*
 * cmd_schedule.c - periodic tasks:
 *
 *   rtq schedule add ID CRON NAME [ARGS_JSON] [--queue Q] [--timeout S] [--tz ZONE]
 *   rtq schedule list
 *   rtq schedule remove ID
 *   rtq schedule pause ID | resume ID
 *
 * The subcommand is the first positional word, so global options may stand
 * anywhere. The broker leader runs the schedules (client.h, "periodic
 * tasks"); these commands only edit them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

enum { O_QUEUE, O_TIMEOUT, O_TZ, O_N };

static json_t *schedule_json(const rtq_schedule *s) {
  json_t *args = json_loads(s->args_json != NULL ? s->args_json : "{}", JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
  return json_pack("{s:s, s:s, s:s, s:s, s:o, s:I, s:s, s:b, s:I, s:I, s:I}", "id", s->id, "cron", s->cron, "name",
                   s->name, "queue", s->queue, "args", args != NULL ? args : json_object(), "timeout_ms",
                   (json_int_t)s->timeout_ms, "tz", s->tz, "paused", s->paused, "created_at",
                   (json_int_t)s->created_at, "last_run_at", (json_int_t)s->last_run_ms, "next_run_at",
                   (json_int_t)s->next_run_ms);
}

static int schedule_list(cli *ctx) {
  rtq_schedule *l = NULL;
  size_t n = 0;
  int err = rtq_schedule_list(ctx->client, &l, &n);
  if (err != 0) return cli_fail(ctx, err, "schedule list");
  int rc = CLI_OK;
  if (ctx->json) {
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < n; i++) json_array_append_new(arr, schedule_json(&l[i]));
    rc = cli_print_json(json_pack("{s:o}", "schedules", arr));
  } else {
    char id[33], cron[33], name[33], queue[21], tz[21], next[32], last[32];
    printf("%-32s  %-24s  %-24s  %-16s  %-16s  %-24s  %s\n", "ID", "CRON", "NAME", "QUEUE", "TZ", "NEXT RUN",
           "LAST RUN");
    for (size_t i = 0; i < n; i++) {
      const rtq_schedule *s = &l[i];
      cli_clean(id, sizeof id, s->id, false);
      cli_clean(cron, sizeof cron, s->cron, false);
      cli_clean(name, sizeof name, s->name, false);
      cli_clean(queue, sizeof queue, s->queue, false);
      cli_clean(tz, sizeof tz, s->tz[0] ? s->tz : "(local)", false);
      printf("%-32s  %-24s  %-24s  %-16s  %-16s  %-24s  %s\n", id, cron, name, queue, tz,
             s->paused ? "paused" : s->next_run_ms ? cli_time(s->next_run_ms, next) : "-",
             s->last_run_ms ? cli_time(s->last_run_ms, last) : "never");
    }
    if (n == 0) printf("(no schedules)\n");
  }
  rtq_schedules_free(l, n);
  return rc;
}

static int schedule_add(cli *ctx, const char **pos, int npos, cli_opt *opts) {
  if (npos < 4) {
    cli_errorf("schedule add needs ID CRON NAME [ARGS_JSON] (e.g. rtq schedule add nightly '0 3 * * *' report.build)");
    return CLI_USAGE;
  }
  rtq_schedule_options o = {.queue = opts[O_QUEUE].value, .tz = opts[O_TZ].value};
  int rc = CLI_OK;
  if (opts[O_TIMEOUT].value != NULL)
    rc = cli_duration("timeout", opts[O_TIMEOUT].value, 1, RTQ_TASK_MAX_TIMEOUT_MS, &o.timeout_ms);
  rtq_args *args = NULL;
  if (rc == CLI_OK && npos == 5) {
    char why[256];
    if (rtq_args_from_json(pos[4], &args, why, sizeof why) != 0) {
      cli_errorf("invalid ARGS_JSON: %s", why);
      rc = CLI_USAGE;
    }
  }
  if (rc == CLI_OK) rc = cli_connect(ctx);
  if (rc == CLI_OK) {
    int err = rtq_schedule_add(ctx->client, pos[1], pos[2], pos[3], args, &o);
    if (err != 0) rc = cli_fail(ctx, err, "schedule add");
  }
  rtq_args_free(args);
  if (rc != CLI_OK) return rc;
  if (ctx->json) return cli_print_json(json_pack("{s:s, s:b}", "id", pos[1], "added", 1));
  printf("schedule %s added\n", pos[1]);
  return CLI_OK;
}

/* remove, pause and resume: one id, no options. */
static int schedule_one(cli *ctx, const char *verb, const char **pos, int npos) {
  if (npos != 2) {
    cli_errorf("schedule %s needs one ID", verb);
    return CLI_USAGE;
  }
  int rc = cli_connect(ctx);
  if (rc != CLI_OK) return rc;
  int err = strcmp(verb, "remove") == 0 ? rtq_schedule_remove(ctx->client, pos[1])
                                        : rtq_schedule_set_paused(ctx->client, pos[1], strcmp(verb, "pause") == 0);
  if (err != 0) {
    char what[32];
    snprintf(what, sizeof what, "schedule %s", verb);
    return cli_fail(ctx, err, what);
  }
  if (ctx->json) return cli_print_json(json_pack("{s:s, s:s}", "id", pos[1], "done", verb));
  printf("schedule %s: %s\n", pos[1], strcmp(verb, "remove") == 0 ? "removed"
                                      : strcmp(verb, "pause") == 0  ? "paused"
                                                                     : "resumed");
  return CLI_OK;
}

int cmd_schedule(cli *ctx, int argc, char **argv) {
  cli_opt opts[O_N] = {{"queue", OPT_VALUE, NULL}, {"timeout", OPT_VALUE, NULL}, {"tz", OPT_VALUE, NULL}};
  const char *pos[5];
  int npos;
  int rc = cli_parse(ctx, argc, argv, opts, O_N, pos, 5, &npos);
  if (rc != CLI_OK) return rc;
  const char *verb = npos > 0 ? pos[0] : "";
  bool is_add = strcmp(verb, "add") == 0;
  if (!is_add && (opts[O_QUEUE].value || opts[O_TIMEOUT].value || opts[O_TZ].value)) {
    cli_errorf("--queue, --timeout and --tz go with schedule add only");
    return CLI_USAGE;
  }
  if (is_add) return schedule_add(ctx, pos, npos, opts);
  if (strcmp(verb, "list") == 0) {
    if (npos != 1) {
      cli_errorf("schedule list takes no arguments");
      return CLI_USAGE;
    }
    rc = cli_connect(ctx);
    return rc == CLI_OK ? schedule_list(ctx) : rc;
  }
  if (strcmp(verb, "remove") == 0 || strcmp(verb, "pause") == 0 || strcmp(verb, "resume") == 0)
    return schedule_one(ctx, verb, pos, npos);
  cli_errorf("schedule needs add, list, remove, pause or resume");
  return CLI_USAGE;
}
