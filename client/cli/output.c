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
#include "utf8.h"

/*
 * Task-supplied text is written by handlers, producers or anyone with
 * write access to Redis: before it reaches a terminal, every control
 * character (C0, DEL and the C1 range U+0080..U+009F, which include ESC
 * and CSI) becomes a space, so no escape sequence can clear the screen,
 * move the cursor or set the window title; bytes that are not UTF-8
 * become U+FFFD. With multiline, '\n' is kept (tracebacks).
 */
size_t cli_clean(char *dst, size_t cap, const char *src, bool multiline) {
  size_t j = 0, n = src != NULL ? strlen(src) : 0;
  if (cap == 0) return 0;
  for (size_t i = 0; i < n;) {
    const unsigned char *u = (const unsigned char *)src + i;
    size_t len = rtq__utf8_seq_len(u, n - i);
    const char *from = src + i;
    size_t take = len;
    if (len == 0) {
      from = "\xef\xbf\xbd";
      take = 3;
    } else if ((len == 1 && (u[0] < 0x20 || u[0] == 0x7f) && !(multiline && u[0] == '\n')) ||
               (len == 2 && u[0] == 0xc2 && u[1] < 0xa0)) {
      from = " ";
      take = 1;
    }
    if (j + take + 1 > cap) break;
    memcpy(dst + j, from, take);
    j += take;
    i += len > 0 ? len : 1;
  }
  dst[j] = '\0';
  return j;
}

char *cli_clean_dup(const char *src, bool multiline) {
  size_t n = src != NULL ? strlen(src) : 0;
  char *out = malloc(n * 3 + 1);
  if (out != NULL) cli_clean(out, n * 3 + 1, src, multiline);
  return out;
}

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

int cli_rate_eta(double p0, uint64_t t0_ms, double p1, uint64_t t1_ms, double *rate,
                 double *eta_s) {
  if (t1_ms <= t0_ms || p1 <= p0) return 0;
  *rate = (p1 - p0) * 1000.0 / (double)(t1_ms - t0_ms);
  *eta_s = p1 >= 100 ? 0 : (100 - p1) / *rate;
  return 1;
}

const char *cli_rate(double rate, char buf[16]) {
  if (rate >= 100)
    snprintf(buf, 16, "%.0f%%/s", rate > 99999 ? 99999 : rate);
  else if (rate >= 1)
    snprintf(buf, 16, "%.1f%%/s", rate);
  else
    snprintf(buf, 16, "%.2f%%/s", rate);
  return buf;
}

const char *cli_eta(double s, char buf[32]) {
  /* Past 99 hours an estimate says only "a long time". */
  long long n = s > 99 * 3600.0 ? 99 * 3600 : (long long)(s + 0.5);
  if (n >= 3600)
    snprintf(buf, 32, "eta %lldh%02lldm", n / 3600, n % 3600 / 60);
  else if (n >= 60)
    snprintf(buf, 32, "eta %lldm%02llds", n / 60, n % 60);
  else
    snprintf(buf, 32, "eta %llds", n);
  return buf;
}

int cli_status_rate(cli *ctx, const rtq_task *t, double *rate, double *eta_s) {
  uint64_t now = 0;
  if (ctx == NULL || t->status != RTQ_STATUS_RUNNING || t->started_at == 0 || t->progress <= 0) return 0;
  if (rtq_client_time_ms(ctx->client, &now) != 0) return 0;
  return cli_rate_eta(0, t->started_at, t->progress, now, rate, eta_s);
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
  json_t *v = json_loads(text, JSON_ALLOW_NUL, NULL);
  free(text);
  return v;
}

static void field(const char *name, const char *value) {
  if (value == NULL || value[0] == '\0') return;
  char *clean = cli_clean_dup(value, false);
  printf("%-17s %s\n", name, clean != NULL ? clean : "?");
  free(clean);
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
static void block_field(const char *name, const char *raw) {
  if (raw == NULL || raw[0] == '\0') return;
  char *text = cli_clean_dup(raw, true);
  if (text == NULL) return;
  printf("%s:\n", name);
  const char *p = text;
  while (*p) {
    const char *nl = strchr(p, '\n');
    int n = nl != NULL ? (int)(nl - p) : (int)strlen(p);
    printf("    %.*s\n", n, p);
    p += n + (nl != NULL);
  }
  free(text);
}

static void print_human(cli *ctx, const rtq_task *t) {
  char buf[96];
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
  double rate, eta;
  if (cli_status_rate(ctx, t, &rate, &eta)) {
    char r[16], e[32];
    snprintf(buf, sizeof buf, "%s, %s (since started_at)", cli_rate(rate, r), cli_eta(eta, e));
    field("rate:", buf);
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

int cli_print_task(cli *ctx, const rtq_task *t, bool with_rate) {
  if (ctx->json) {
    json_t *o = cli_task_json(t);
    double rate, eta;
    if (o != NULL && with_rate) {
      int known = cli_status_rate(ctx, t, &rate, &eta);
      json_object_set_new(o, "rate", known ? json_real(rate) : json_null());
      json_object_set_new(o, "eta_s", known ? json_real(eta) : json_null());
    }
    return cli_print_json(o);
  }
  print_human(with_rate ? ctx : NULL, t);
  return CLI_OK;
}
