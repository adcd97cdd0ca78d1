/*
 * cmd_queue.c - queue control:
 *
 *   rtq queue pause Q | queue resume Q
 *   rtq queue limit Q [--rate R[/s|/m|/h]] [--burst N] [--concurrency N] | --clear
 *   rtq queue purge Q
 *
 * pause/resume: client.h, rtq_queue_pause; `rtq stats` shows a paused
 * queue. limit and purge need protocol 2 (rtq_queue_limit_set,
 * rtq_queue_purge); `rtq queue limit Q` alone shows the limits.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

enum { O_RATE, O_BURST, O_CONC, O_CLEAR, O_N };

/* "off" and "0" remove a limit. */
static bool is_off(const char *s) { return strcmp(s, "off") == 0 || strcmp(s, "0") == 0; }

/* A rate: a plain decimal number of tasks per second, or per /s, /m
 * (/min) or /h. Prints and returns CLI_USAGE when it is not one. */
static int parse_rate(const char *s, double *per_s) {
  size_t digits = strspn(s, "0123456789."), dots = 0;
  for (size_t i = 0; i < digits; i++) dots += s[i] == '.';
  const char *unit = s + digits;
  double per = strcmp(unit, "") == 0 || strcmp(unit, "/s") == 0 ? 1
               : strcmp(unit, "/m") == 0 || strcmp(unit, "/min") == 0 ? 60
               : strcmp(unit, "/h") == 0 ? 3600 : 0;
  if (digits == 0 || dots > 1 || digits == dots || per == 0) {
    cli_errorf("invalid --rate \"%.64s\": expected tasks per second, e.g. 100/s, 0.5/s, 600/m or 30/h", s);
    return CLI_USAGE;
  }
  *per_s = strtod(s, NULL) / per;
  if (*per_s < RTQ_LIMIT_MIN_RATE || *per_s > RTQ_LIMIT_MAX_RATE) {
    cli_errorf("invalid --rate \"%.64s\": out of range, %g/s (3.6/h) to %.0f/s (off removes the rate limit)", s,
               RTQ_LIMIT_MIN_RATE, RTQ_LIMIT_MAX_RATE);
    return CLI_USAGE;
  }
  return CLI_OK;
}

/* A burst or concurrency value, 1..RTQ_LIMIT_MAX ("off" when off_ok). */
static int parse_count(const char *opt, const char *s, bool off_ok, uint32_t *out) {
  if (off_ok && is_off(s)) {
    *out = 0;
    return CLI_OK;
  }
  long long v;
  int rc = cli_integer(opt, s, 1, RTQ_LIMIT_MAX, &v);
  if (rc == CLI_OK) *out = (uint32_t)v;
  return rc;
}

/* Reads the limits back and prints them. */
static int show_limits(cli *ctx, const char *queue) {
  rtq_queue_limits l;
  rtq_queue_limit_usage u;
  int err = rtq_queue_limit_get(ctx->client, queue, &l, &u);
  if (err != 0) return cli_fail(ctx, err, "queue limit");
  uint32_t burst = u.burst;
  if (ctx->json) {
    json_t *o = json_pack("{s:s}", "queue", queue);
    json_object_set_new(o, "rate", l.rate > 0 ? json_real(l.rate) : json_null());
    json_object_set_new(o, "burst", l.rate > 0 ? json_integer(burst) : json_null());
    json_object_set_new(o, "concurrency", l.concurrency ? json_integer(l.concurrency) : json_null());
    json_object_set_new(o, "tokens", u.tokens >= 0 ? json_real(u.tokens) : json_null());
    json_object_set_new(o, "running", json_integer((json_int_t)u.running));
    return cli_print_json(o);
  }
  printf("queue %s:\n", queue);
  if (l.rate > 0)
    printf("  rate         %g/s, burst %u%s; %.1f tokens now\n", l.rate, burst, l.burst ? "" : " (the rate rounded up)",
           u.tokens);
  else
    printf("  rate         no limit\n");
  if (l.concurrency)
    printf("  concurrency  %u at once; %llu running under it\n", l.concurrency, (unsigned long long)u.running);
  else
    printf("  concurrency  no limit\n");
  return CLI_OK;
}

static int queue_limit(cli *ctx, const char *queue, cli_opt *o) {
  bool any = o[O_RATE].value || o[O_BURST].value || o[O_CONC].value;
  if (o[O_CLEAR].value != NULL && any) {
    cli_errorf("queue limit: --clear goes alone");
    return CLI_USAGE;
  }
  rtq_queue_limits l = {0};
  unsigned which = 0;
  int rc = CLI_OK;
  if (o[O_BURST].value != NULL && (o[O_RATE].value == NULL || is_off(o[O_RATE].value))) {
    cli_errorf("queue limit: --burst goes with --rate");
    return CLI_USAGE;
  }
  if (o[O_RATE].value != NULL) {
    which |= RTQ_LIMIT_RATE;
    if (!is_off(o[O_RATE].value)) rc = parse_rate(o[O_RATE].value, &l.rate);
    if (rc == CLI_OK && o[O_BURST].value != NULL) rc = parse_count("burst", o[O_BURST].value, false, &l.burst);
  }
  if (rc == CLI_OK && o[O_CONC].value != NULL) {
    which |= RTQ_LIMIT_CONCURRENCY;
    rc = parse_count("concurrency", o[O_CONC].value, true, &l.concurrency);
  }
  if (rc == CLI_OK) rc = cli_connect(ctx);
  if (rc != CLI_OK) return rc;
  int err = 0;
  if (o[O_CLEAR].value != NULL) err = rtq_queue_limit_clear(ctx->client, queue);
  else if (which != 0) err = rtq_queue_limit_set(ctx->client, queue, &l, which);
  if (err != 0) return cli_fail(ctx, err, "queue limit");
  return show_limits(ctx, queue);
}

static int queue_purge(cli *ctx, const char *queue) {
  int rc = cli_connect(ctx);
  if (rc != CLI_OK) return rc;
  rtq_purge_counts n;
  int err = rtq_queue_purge(ctx->client, queue, 0, &n);
  if (err != 0 && n.calls == 0) return cli_fail(ctx, err, "queue purge");
  if (ctx->json) {
    rc = cli_print_json(json_pack("{s:s, s:I, s:I, s:I, s:I, s:b}", "queue", queue, "cancelled",
                                  (json_int_t)n.cancelled, "dropped", (json_int_t)n.dropped, "left",
                                  (json_int_t)n.left, "calls", (json_int_t)n.calls, "complete", err == 0));
  } else {
    printf("queue %s: %llu pending tasks cancelled", queue, (unsigned long long)n.cancelled);
    if (n.dropped) printf(", %llu entries no longer pending taken out", (unsigned long long)n.dropped);
    if (n.left) printf("; %llu enqueued meanwhile are left", (unsigned long long)n.left);
    printf("\n");
  }
  /* Stopped part-way: the counts above, then why. */
  if (err != 0) return cli_fail(ctx, err, "queue purge");
  return rc;
}

int cmd_queue(cli *ctx, int argc, char **argv) {
  cli_opt opts[O_N] = {{"rate", OPT_VALUE, NULL},
                       {"burst", OPT_VALUE, NULL},
                       {"concurrency", OPT_VALUE, NULL},
                       {"clear", OPT_FLAG, NULL}};
  const char *pos[3];
  int npos;
  int rc = cli_parse(ctx, argc, argv, opts, O_N, pos, 3, &npos);
  if (rc != CLI_OK) return rc;
  const char *verb = npos > 0 ? pos[0] : "";
  bool pause = strcmp(verb, "pause") == 0, limit = strcmp(verb, "limit") == 0;
  if (!pause && !limit && strcmp(verb, "resume") != 0 && strcmp(verb, "purge") != 0) {
    cli_errorf("queue needs pause, resume, limit or purge (rtq queue pause Q, rtq queue limit Q --rate 100/s, "
               "rtq queue purge Q)");
    return CLI_USAGE;
  }
  if (npos != 2) {
    cli_errorf("queue %s needs one queue name", verb);
    return CLI_USAGE;
  }
  if (!limit && (opts[O_RATE].value || opts[O_BURST].value || opts[O_CONC].value || opts[O_CLEAR].value)) {
    cli_errorf("--rate, --burst, --concurrency and --clear go with queue limit only");
    return CLI_USAGE;
  }
  if ((rc = cli_name("queue", pos[1])) != CLI_OK) return rc;
  if (limit) return queue_limit(ctx, pos[1], opts);
  if (strcmp(verb, "purge") == 0) return queue_purge(ctx, pos[1]);
  if ((rc = cli_connect(ctx)) != CLI_OK) return rc;
  int err = pause ? rtq_queue_pause(ctx->client, pos[1]) : rtq_queue_resume(ctx->client, pos[1]);
  if (err != 0) return cli_fail(ctx, err, pause ? "queue pause" : "queue resume");
  if (ctx->json) return cli_print_json(json_pack("{s:s, s:b}", "queue", pos[1], "paused", pause));
  printf("queue %s %s\n", pos[1], pause ? "paused: workers claim nothing from it; its backlog stays"
                                        : "resumed");
  return CLI_OK;
}
