/*
 * cmd_tasks.c - operations on many tasks at once:
 *
 *   rtq tasks delete --status S[,S..] [--queue Q] [--older-than DUR]
 *
 * Deletes ended tasks and their index entries in bounded steps
 * (client.h, rtq_tasks_delete): of one queue, or of every queue.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

enum { O_STATUS, O_QUEUE, O_OLDER, O_N };

/* The longest --older-than: 10 years. */
#define MAX_AGE_MS 315360000000ull

/* Parses "completed,failed" into a set of ended statuses. */
static int parse_statuses(const char *s, bool want[RTQ_STATUS_COUNT]) {
  char buf[128];
  if (strlen(s) >= sizeof buf) {
    cli_errorf("invalid --status: too long");
    return CLI_USAGE;
  }
  snprintf(buf, sizeof buf, "%s", s);
  int n = 0;
  char *save = NULL;
  for (char *w = strtok_r(buf, ",", &save); w != NULL; w = strtok_r(NULL, ",", &save)) {
    rtq_status st;
    if (rtq_status_parse(w, &st) != 0 || !rtq_status_is_terminal(st)) {
      cli_errorf("invalid --status \"%.64s\": expected ended statuses: completed, failed, cancelled, timeout "
                 "(pending tasks: rtq queue purge)", w);
      return CLI_USAGE;
    }
    want[st] = true;
    n++;
  }
  if (n == 0) {
    cli_errorf("tasks delete needs --status S (completed, failed, cancelled, timeout)");
    return CLI_USAGE;
  }
  return CLI_OK;
}

static int tasks_delete(cli *ctx, cli_opt *o) {
  bool want[RTQ_STATUS_COUNT] = {false};
  uint64_t older = 0;
  if (o[O_STATUS].value == NULL) {
    cli_errorf("tasks delete needs --status S (completed, failed, cancelled, timeout)");
    return CLI_USAGE;
  }
  int rc = parse_statuses(o[O_STATUS].value, want);
  if (rc == CLI_OK && o[O_QUEUE].value != NULL) rc = cli_name("queue", o[O_QUEUE].value);
  if (rc == CLI_OK && o[O_OLDER].value != NULL) rc = cli_duration("older-than", o[O_OLDER].value, 0, MAX_AGE_MS, &older);
  if (rc == CLI_OK) rc = cli_connect(ctx);
  if (rc != CLI_OK) return rc;
  rtq_delete_counts total = {0};
  json_t *statuses = json_array();
  int err = 0;
  for (int s = 0; s < RTQ_STATUS_COUNT && err == 0; s++) {
    if (!want[s]) continue;
    rtq_delete_counts n;
    err = rtq_tasks_delete(ctx->client, (rtq_status)s, o[O_QUEUE].value, older, 0, &n);
    total.deleted += n.deleted;
    total.dropped += n.dropped;
    total.calls += n.calls;
    if (n.queues > total.queues) total.queues = n.queues;
    json_array_append_new(statuses, json_string(rtq_status_name((rtq_status)s)));
  }
  if (err != 0 && total.calls == 0) {
    json_decref(statuses);
    return cli_fail(ctx, err, "tasks delete");
  }
  if (ctx->json) {
    rc = cli_print_json(json_pack("{s:o, s:s?, s:I, s:I, s:I, s:I, s:b}", "status", statuses, "queue",
                                  o[O_QUEUE].value, "deleted", (json_int_t)total.deleted, "dropped",
                                  (json_int_t)total.dropped, "queues", (json_int_t)total.queues, "calls",
                                  (json_int_t)total.calls, "complete", err == 0));
  } else {
    json_decref(statuses);
    printf("%llu ended tasks deleted", (unsigned long long)total.deleted);
    if (total.dropped) printf(", %llu index entries of tasks already gone taken out", (unsigned long long)total.dropped);
    printf(" (%llu queue%s)\n", (unsigned long long)total.queues, total.queues == 1 ? "" : "s");
  }
  if (err != 0) return cli_fail(ctx, err, "tasks delete");
  return rc;
}

int cmd_tasks(cli *ctx, int argc, char **argv) {
  cli_opt opts[O_N] = {{"status", OPT_VALUE, NULL}, {"queue", OPT_VALUE, NULL}, {"older-than", OPT_VALUE, NULL}};
  const char *pos[2];
  int npos;
  int rc = cli_parse(ctx, argc, argv, opts, O_N, pos, 2, &npos);
  if (rc != CLI_OK) return rc;
  if (npos != 1 || strcmp(pos[0], "delete") != 0) {
    cli_errorf("tasks needs delete (rtq tasks delete --status S [--queue Q] [--older-than DUR])");
    return CLI_USAGE;
  }
  return tasks_delete(ctx, opts);
}
