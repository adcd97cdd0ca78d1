/*
 * output.c - printing tasks for people and as JSON.
 *
 * Human output is aligned "field: value" lines; JSON output is one compact
 * object per line, built by rtq_task_to_json so the library and the tool
 * agree on the shape.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

const char *cli_time(uint64_t ms, char buf[32]) {
  if (ms == 0) return "-";
  return rtq_format_time(ms, buf, 32);
}

const char *cli_percent(double p, char buf[16]) {
  if (p == (double)(long long)p)
    snprintf(buf, 16, "%d%%", (int)p);
  else
    snprintf(buf, 16, "%.1f%%", p);
  return buf;
}

int cli_task_exit(const rtq_task *t) {
  return t->status == RTQ_STATUS_COMPLETED ? CLI_OK : CLI_ENDED;
}

int cli_print_json(json_t *v) {
  if (v == NULL) {
    cli_error_code(rtq_err_name(RTQ_ENOMEM), "out of memory");
    return CLI_REDIS;
  }
  char *s = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
  json_decref(v);
  if (s == NULL) {
    cli_error_code(rtq_err_name(RTQ_ENOMEM), "out of memory");
    return CLI_REDIS;
  }
  puts(s);
  free(s);
  return CLI_OK;
}

json_t *cli_task_json(const rtq_task *t) {
  char *text = NULL;
  if (rtq_task_to_json(t, &text) != 0) return NULL;
  json_t *v = json_loads(text, 0, NULL);
  free(text);
  return v;
}

static void field(const char *name, const char *value) {
  if (value == NULL || value[0] == '\0') return;
  printf("%-17s %s\n", name, value);
}

static void time_field(const char *name, uint64_t ms) {
  char buf[32];
  if (ms != 0) field(name, cli_time(ms, buf));
}

/* A msgpack field printed as JSON; a marker when it does not decode. */
static void json_field(const char *name, int (*get)(const rtq_task *, char **), const rtq_task *t) {
  char *json = NULL;
  if (get(t, &json) != 0) {
    field(name, "<undecodable msgpack>");
    return;
  }
  if (strcmp(json, "null") != 0) field(name, json);
  free(json);
}

/* A multi-line text (a traceback), indented under its label. */
static void block_field(const char *name, const char *text) {
  if (text == NULL || text[0] == '\0') return;
  printf("%s:\n", name);
  const char *p = text;
  while (*p) {
    const char *nl = strchr(p, '\n');
    int n = nl != NULL ? (int)(nl - p) : (int)strlen(p);
    printf("    %.*s\n", n, p);
    p += n + (nl != NULL);
  }
}

static void print_human(const rtq_task *t) {
  char buf[64];
  field("id:", t->id);
  field("name:", t->name);
  field("queue:", t->queue);
  field("status:", rtq_status_name(t->status));
  if (t->progress > 0 || t->progress_message != NULL) {
    char line[512];
    snprintf(line, sizeof line, "%s%s%s", cli_percent(t->progress, buf),
             t->progress_message != NULL ? "  " : "",
             t->progress_message != NULL ? t->progress_message : "");
    field("progress:", line);
  }
  time_field("created_at:", t->created_at);
  time_field("run_at:", t->run_at);
  time_field("started_at:", t->started_at);
  time_field("completed_at:", t->completed_at);
  time_field("retry_at:", t->retry_at);
  time_field("deadline:", t->deadline);
  time_field("cancel_requested:", t->cancel_requested);
  snprintf(buf, sizeof buf, "%u (max retries %u)", t->attempts, t->max_retries);
  field("attempts:", buf);
  field("worker:", t->worker);
  if (t->timeout_ms != 0) {
    snprintf(buf, sizeof buf, "%.3f s", (double)t->timeout_ms / 1000.0);
    field("timeout:", buf);
  }
  json_field("args:", rtq_task_args_json, t);
  json_field("result:", rtq_task_result_json, t);
  if (t->error_code != NULL || t->error_message != NULL) {
    char line[1024];
    snprintf(line, sizeof line, "%s%s%s", t->error_code ? t->error_code : "",
             t->error_code && t->error_message ? ": " : "",
             t->error_message ? t->error_message : "");
    field("error:", line);
    json_field("error.details:", rtq_task_error_details_json, t);
    block_field("error.traceback", t->error_traceback);
  }
}

int cli_print_task(const cli *ctx, const rtq_task *t) {
  if (ctx->json) return cli_print_json(cli_task_json(t));
  print_human(t);
  return CLI_OK;
}
