/*
 * cmd_list.c - `rtq list`: tasks newest first, as a table or a JSON array.
 * A page that is not the last says on stderr how to get the next one
 * (`--after ID`), so a backlog of any size can be paged through.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

/* "pending,running" -> a status bit set. */
static int parse_statuses(const char *s, unsigned *bits) {
  *bits = 0;
  const char *p = s;
  for (;;) {
    const char *comma = strchr(p, ',');
    size_t n = comma != NULL ? (size_t)(comma - p) : strlen(p);
    char word[16];
    rtq_status st;
    if (n == 0 || n >= sizeof word) goto bad;
    memcpy(word, p, n);
    word[n] = '\0';
    if (rtq_status_parse(word, &st) != 0) goto bad;
    *bits |= RTQ_STATUS_BIT(st);
    if (comma == NULL) return CLI_OK;
    p = comma + 1;
  }
bad:
  cli_errorf("invalid --status \"%.64s\": expected a comma-separated list of pending, running, "
             "completed, failed, cancelled, timeout", s);
  return CLI_USAGE;
}

/* Column widths grow with the data, up to a cap; longer cells are cut. */
#define NCOLS 6
#define CELL (RTQ_TASK_ID_SIZE + 8)
static const char *const headers[NCOLS] = {"ID", "NAME", "QUEUE", "STATUS", "PROGRESS", "CREATED"};
static const int caps[NCOLS] = {40, 32, 24, 9, 8, 24};

static void cells(const rtq_task *t, char out[NCOLS][CELL]) {
  char buf[32];
  cli_clean(out[0], CELL, t->id, false);
  cli_clean(out[1], CELL, t->name, false);
  cli_clean(out[2], CELL, t->queue, false);
  snprintf(out[3], CELL, "%s", rtq_status_name(t->status));
  snprintf(out[4], CELL, "%s", cli_percent(t->progress, buf));
  snprintf(out[5], CELL, "%s", cli_time(t->created_at, buf));
}

static void print_row(char row[NCOLS][CELL], const int *w) {
  for (int c = 0; c < NCOLS; c++) {
    int n = (int)strlen(row[c]);
    if (n > w[c]) {
      row[c][w[c] - 1] = '~';
      row[c][w[c]] = '\0';
    }
    if (c + 1 < NCOLS)
      printf("%-*s  ", w[c], row[c]);
    else
      printf("%s\n", row[c]);
  }
}

static void print_table(const rtq_task_list *l) {
  int w[NCOLS];
  char row[NCOLS][CELL];
  for (int c = 0; c < NCOLS; c++) w[c] = (int)strlen(headers[c]);
  for (size_t i = 0; i < l->count; i++) {
    cells(l->tasks[i], row);
    for (int c = 0; c < NCOLS; c++) {
      int n = (int)strlen(row[c]);
      if (n > w[c]) w[c] = n > caps[c] ? caps[c] : n;
    }
  }
  for (int c = 0; c < NCOLS; c++) snprintf(row[c], CELL, "%s", headers[c]);
  print_row(row, w);
  for (size_t i = 0; i < l->count; i++) {
    cells(l->tasks[i], row);
    print_row(row, w);
  }
}

/* --after: a task id, or a page's cursor "<id>/<where>",
 * whose id is checked here and the rest by the library. */
static int after_ok(const char *after) {
  const char *slash = strrchr(after, '/');
  if (slash == NULL) return cli_name("task id", after);
  char id[RTQ_TASK_ID_SIZE];
  size_t n = (size_t)(slash - after);
  if (n == 0 || n >= sizeof id) return cli_name("task id", after);
  memcpy(id, after, n);
  id[n] = '\0';
  return cli_name("task id", id);
}

int cmd_list(cli *ctx, int argc, char **argv) {
  enum { O_STATUS, O_QUEUE, O_NAME, O_LIMIT, O_OFFSET, O_AFTER, O_N };
  cli_opt opts[O_N] = {{"status", OPT_VALUE, NULL}, {"queue", OPT_VALUE, NULL},
                       {"name", OPT_VALUE, NULL},   {"limit", OPT_VALUE, NULL},
                       {"offset", OPT_VALUE, NULL}, {"after", OPT_VALUE, NULL}};
  const char *pos[1];
  int npos;
  int rc = cli_parse(ctx, argc, argv, opts, O_N, pos, 0, &npos);
  rtq_task_filter f;
  memset(&f, 0, sizeof f);
  long long n;
  if (rc == CLI_OK && opts[O_STATUS].value != NULL)
    rc = parse_statuses(opts[O_STATUS].value, &f.statuses);
  if (rc == CLI_OK && (f.queue = opts[O_QUEUE].value) != NULL) rc = cli_name("queue name", f.queue);
  if (rc == CLI_OK && (f.name = opts[O_NAME].value) != NULL) rc = cli_name("task name", f.name);
  if (rc == CLI_OK && opts[O_LIMIT].value != NULL &&
      (rc = cli_integer("limit", opts[O_LIMIT].value, 1, RTQ_LIST_MAX_EXAMINED, &n)) == CLI_OK)
    f.limit = (size_t)n;
  if (rc == CLI_OK && opts[O_OFFSET].value != NULL &&
      (rc = cli_integer("offset", opts[O_OFFSET].value, 0, RTQ_LIST_MAX_EXAMINED, &n)) == CLI_OK)
    f.offset = (size_t)n;
  if (rc == CLI_OK && (f.after = opts[O_AFTER].value) != NULL) rc = after_ok(f.after);
  if (rc == CLI_OK) rc = cli_connect(ctx);
  if (rc != CLI_OK) return rc;

  rtq_task_list *l = NULL;
  int err = rtq_list_tasks(ctx->client, &f, &l);
  if (err != 0) return cli_fail(ctx, err, "list");
  if (l->truncated)
    cli_warnf("note: stopped after examining %zu index entries; older tasks may match too",
               l->examined);
  if (l->running_hidden)
    cli_warnf("note: running tasks are not listed: this Redis user may not read the workers' lists");
  cli_warn_skipped(l->skipped);
  if (l->next_after[0] != '\0') cli_warnf("next page: --after %s", l->next_after);
  if (ctx->json) {
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < l->count; i++) {
      json_t *t = cli_task_json(l->tasks[i]);
      if (t == NULL || json_array_append_new(arr, t) != 0) {
        json_decref(arr);
        arr = NULL;
      }
    }
    rc = cli_print_json(arr);
  } else {
    print_table(l);
  }
  rtq_task_list_free(l);
  return rc;
}
