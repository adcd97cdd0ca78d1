/*
 * cmd_task.c - the commands about one task: enqueue, status, cancel, wait,
 * retry.
 *
 * Input is checked completely before connecting, so a bad argument exits 2
 * without touching Redis whether or not Redis is up.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* ARGS_JSON may be "@path" (or "-" for stdin): an argument is capped at
 * 128 KiB by the kernel, a payload may be larger. */
#define MAX_JSON_FILE (16u * 1024u * 1024u)

/* Reads the JSON text of "@path" or "-"; *owned is what to free. */
static int read_json_arg(const char *arg, const char **text, char **owned) {
  *owned = NULL;
  if (arg[0] != '@' && strcmp(arg, "-") != 0) {
    *text = arg;
    return CLI_OK;
  }
  FILE *f = arg[0] == '@' ? fopen(arg + 1, "rb") : stdin;
  if (f == NULL) {
    cli_errorf("cannot read args file \"%.200s\": %s", arg + 1, strerror(errno));
    return CLI_USAGE;
  }
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  while (buf != NULL && len <= MAX_JSON_FILE) {
    if (len + 1 >= cap) {
      char *nb = realloc(buf, cap * 2);
      if (nb == NULL) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = nb;
      cap *= 2;
    }
    size_t n = fread(buf + len, 1, cap - len - 1, f);
    len += n;
    if (n == 0) break;
  }
  int err = ferror(f);
  if (f != stdin) fclose(f);
  if (buf == NULL || len > MAX_JSON_FILE || err) {
    free(buf);
    cli_errorf("args file \"%.200s\" is unreadable or over the %u byte limit", arg,
               MAX_JSON_FILE);
    return CLI_USAGE;
  }
  buf[len] = '\0';
  *text = *owned = buf;
  return CLI_OK;
}

/* Parses ARGS_JSON into a map. */
static int parse_args_json(const char *arg, rtq_args **out) {
  const char *text;
  char *owned, why[256] = "";
  int rc = read_json_arg(arg, &text, &owned);
  if (rc != CLI_OK) return rc;
  rc = rtq_args_from_json(text, out, why, sizeof why);
  free(owned);
  if (rc != 0) {
    cli_error_code(rtq_err_name(RTQ_EJSON), "invalid JSON args: %s", why[0] ? why : rtq_strerror(rc));
    return CLI_USAGE;
  }
  if (rtq_args_type(*out) != RTQ_TYPE_MAP) {
    rtq_args_free(*out);
    *out = NULL;
    cli_errorf("invalid JSON args: expected a JSON object of keyword arguments");
    return CLI_USAGE;
  }
  return CLI_OK;
}

/* enqueue --wait --json: the task, and whether this call created it. */
static int print_created(const rtq_task *t, int created) {
  json_t *o = cli_task_json(t);
  if (o != NULL) json_object_set_new(o, "created", json_boolean(created));
  return cli_print_json(o);
}

/* After a wait timed out: whether any live worker serves the task's
 * queue. 1 yes (or we cannot tell), 0 no; queue gets the name. */
static int queue_served(cli *ctx, const char *hint, const char *id, char queue[RTQ_TASK_ID_SIZE]) {
  rtq_task *t = NULL;
  rtq_alive_workers *l = NULL;
  int served = 1;
  if (rtq_get_task_in(ctx->client, hint, id, &t) == 0 && rtq_list_workers(ctx->client, &l) == 0) {
    snprintf(queue, RTQ_TASK_ID_SIZE, "%s", t->queue);
    served = 0;
    for (size_t i = 0; !served && i < l->count; i++) served = rtq_worker_serves(&l->workers[i], queue);
  }
  rtq_task_free(t);
  rtq_alive_workers_free(l);
  return served;
}

/* Waits for id (of queue, NULL: found from the id) and prints the task;
 * the exit code says how it ended. Ctrl-C while it waits says which task
 * goes on (cli_on_interrupt). created: -1, or enqueue's answer, added to
 * the JSON task. */
static int wait_and_print(cli *ctx, const char *queue_hint, const char *id, int64_t timeout_ms,
                          int created) {
  rtq_task *t = NULL;
  cli_on_interrupt(ctx, id);
  int rc = rtq_wait_for_task_in(ctx->client, queue_hint, id, timeout_ms, &t);
  if (rc == RTQ_ETIMEDOUT) {
    /* The likeliest reason a task does not move: nobody takes its queue. */
    char detail[512], queue[RTQ_TASK_ID_SIZE] = "";
    snprintf(detail, sizeof detail, "%s", rtq_client_errstr(ctx->client));
    if (!queue_served(ctx, queue_hint, id, queue)) {
      cli_error_code(rtq_err_name(rc), "wait: %s; no live worker serves queue %s", detail, queue);
      return CLI_TIMEOUT;
    }
    cli_error_code(rtq_err_name(rc), "wait: %s", detail);
    return CLI_TIMEOUT;
  }
  if (rc != 0) return cli_fail(ctx, rc, "wait");
  int out = ctx->json && created >= 0 ? print_created(t, created) : cli_print_task(ctx, t, false);
  if (out == CLI_OK) out = cli_task_exit(t);
  rtq_task_free(t);
  return out;
}

/* --wait: "" waits without limit, else seconds. */
static int wait_option(const char *v, int64_t *timeout_ms) {
  uint64_t ms;
  *timeout_ms = -1;
  if (v == NULL || v[0] == '\0') return CLI_OK;
  int rc = cli_duration("wait", v, 0, CLI_MAX_DURATION_MS, &ms);
  if (rc == CLI_OK) *timeout_ms = (int64_t)ms;
  return rc;
}

/* --result-ttl: a duration in whole seconds, 1 s to 365 days (Redis
 * keeps the TTL in seconds). */
static int result_ttl(const char *v, rtq_task_options *o) {
  uint64_t ms;
  int rc = cli_duration("result-ttl", v, 1000, CLI_MAX_DURATION_MS, &ms);
  if (rc == CLI_OK && ms % 1000 != 0) {
    cli_errorf("invalid --result-ttl \"%.64s\": expected whole seconds", v);
    rc = CLI_USAGE;
  }
  o->result_ttl_s = ms / 1000;
  return rc;
}

enum { E_QUEUE, E_TIMEOUT, E_DELAY, E_RETRIES, E_ID, E_WAIT, E_TTL, E_NOPTS };

/* Turns the options into o. */
static int enqueue_options(cli_opt *opts, rtq_task_options *o, int64_t *wait_ms) {
  int rc = CLI_OK;
  long long n;
  if (opts[E_QUEUE].value != NULL) rc = cli_name("queue name", opts[E_QUEUE].value);
  o->queue = opts[E_QUEUE].value;
  if (rc == CLI_OK && opts[E_ID].value != NULL) rc = cli_name("task id", opts[E_ID].value);
  o->id = opts[E_ID].value;
  if (rc == CLI_OK && opts[E_TIMEOUT].value != NULL)
    rc = cli_duration("timeout", opts[E_TIMEOUT].value, 0, CLI_MAX_DURATION_MS, &o->timeout_ms);
  if (rc == CLI_OK && opts[E_DELAY].value != NULL)
    rc = cli_duration("delay", opts[E_DELAY].value, 0, CLI_MAX_DURATION_MS, &o->delay_ms);
  if (rc == CLI_OK && opts[E_TTL].value != NULL) rc = result_ttl(opts[E_TTL].value, o);
  if (rc == CLI_OK && opts[E_RETRIES].value != NULL &&
      (rc = cli_integer("retries", opts[E_RETRIES].value, 0, 1000000, &n)) == CLI_OK)
    o->max_retries = (uint32_t)n;
  if (rc == CLI_OK && opts[E_WAIT].value != NULL) rc = wait_option(opts[E_WAIT].value, wait_ms);
  return rc;
}

int cmd_enqueue(cli *ctx, int argc, char **argv) {
  cli_opt opts[E_NOPTS] = {{"queue", OPT_VALUE, NULL},   {"timeout", OPT_VALUE, NULL},
                           {"delay", OPT_VALUE, NULL},   {"retries", OPT_VALUE, NULL},
                           {"id", OPT_VALUE, NULL},      {"wait", OPT_OPTIONAL, NULL},
                           {"result-ttl", OPT_VALUE, NULL}};
  const char *pos[2];
  int npos;
  int rc = cli_parse(ctx, argc, argv, opts, E_NOPTS, pos, 2, &npos);
  if (rc != CLI_OK) return rc;
  if (npos < 1) {
    cli_errorf("enqueue needs a task NAME");
    return CLI_USAGE;
  }
  rtq_task_options o;
  memset(&o, 0, sizeof o);
  int64_t wait_ms = -1;
  rtq_args *args = NULL;
  rc = cli_name("task name", pos[0]);
  if (rc == CLI_OK) rc = enqueue_options(opts, &o, &wait_ms);
  if (rc == CLI_OK && npos == 2) rc = parse_args_json(pos[1], &args);
  if (rc == CLI_OK) rc = cli_connect(ctx);
  char id[RTQ_TASK_ID_SIZE];
  int created = 0;
  bool replicated = true;
  if (rc == CLI_OK) {
    int err = rtq_create_task(ctx->client, pos[0], args, &o, id, &created);
    if (err == RTQ_EREPLICAS) {
      /* Enqueued all the same: say so, and how durable it is. */
      replicated = false;
      cli_warnf("warning: task %s: %s", id, rtq_client_errstr(ctx->client));
    } else if (err != 0) {
      rc = cli_fail(ctx, err, "cannot enqueue");
    }
  }
  rtq_args_free(args);
  if (rc != CLI_OK) return rc;
  /* An existing --id is not an error (ids are idempotency keys), but the
   * person must know that the args and options given did not apply. */
  if (!created && !ctx->json)
    cli_warnf("note: task %s exists already; nothing new was created", id);
  if (opts[E_WAIT].value != NULL) return wait_and_print(ctx, o.queue, id, wait_ms, created);
  int done = replicated ? CLI_OK : CLI_REPLICAS;
  if (!ctx->json) {
    printf("%s\n", id);
    return done;
  }
  json_t *out = json_pack("{s:s, s:b}", "id", id, "created", created);
  if (out != NULL && cli_wait_replicas(ctx) > 0) json_object_set_new(out, "replicated", json_boolean(replicated));
  rc = cli_print_json(out);
  return rc != CLI_OK ? rc : done;
}

/* Parses "COMMAND ID" with the options given, the first of which is
 * --queue (the task's queue: under protocol 2 it spares looking the queue
 * up, and picks one task of an id used on several queues). */
static int one_id(cli *ctx, int argc, char **argv, cli_opt *opts, size_t n, const char *cmd,
                  const char **id) {
  const char *pos[1];
  int npos;
  int rc = cli_parse(ctx, argc, argv, opts, n, pos, 1, &npos);
  if (rc != CLI_OK) return rc;
  if (npos != 1) {
    cli_errorf("%s needs a task ID", cmd);
    return CLI_USAGE;
  }
  *id = pos[0];
  rc = cli_name("task id", *id);
  if (rc == CLI_OK && opts[0].value != NULL) rc = cli_name("queue name", opts[0].value);
  return rc;
}

int cmd_status(cli *ctx, int argc, char **argv) {
  cli_opt opts[] = {{"queue", OPT_VALUE, NULL}};
  const char *id;
  int rc = one_id(ctx, argc, argv, opts, 1, "status", &id);
  if (rc == CLI_OK) rc = cli_connect(ctx);
  if (rc != CLI_OK) return rc;
  rtq_task *t = NULL;
  int err = rtq_get_task_in(ctx->client, opts[0].value, id, &t);
  if (err != 0) return cli_fail(ctx, err, "status");
  rc = cli_print_task(ctx, t, true);
  rtq_task_free(t);
  return rc;
}

int cmd_cancel(cli *ctx, int argc, char **argv) {
  cli_opt opts[] = {{"queue", OPT_VALUE, NULL}};
  const char *id;
  int rc = one_id(ctx, argc, argv, opts, 1, "cancel", &id);
  if (rc == CLI_OK) rc = cli_connect(ctx);
  if (rc != CLI_OK) return rc;
  int requested = 0;
  int err = rtq_cancel_task_in(ctx->client, opts[0].value, id, &requested);
  if (err != 0) return cli_fail(ctx, err, "cancel");
  if (ctx->json)
    return cli_print_json(
        json_pack("{s:s, s:s}", "id", id, "outcome", requested ? "requested" : "cancelled"));
  if (requested)
    printf("cancel requested: %s is running; its worker will stop it\n", id);
  else
    printf("cancelled: %s\n", id);
  return CLI_OK;
}

int cmd_wait(cli *ctx, int argc, char **argv) {
  cli_opt opts[] = {{"queue", OPT_VALUE, NULL}, {"timeout", OPT_VALUE, NULL}};
  const char *id;
  int64_t timeout_ms = -1;
  int rc = one_id(ctx, argc, argv, opts, 2, "wait", &id);
  if (rc == CLI_OK && opts[1].value != NULL) {
    uint64_t ms;
    rc = cli_duration("timeout", opts[1].value, 0, CLI_MAX_DURATION_MS, &ms);
    timeout_ms = (int64_t)ms;
  }
  if (rc == CLI_OK) rc = cli_connect(ctx);
  if (rc != CLI_OK) return rc;
  return wait_and_print(ctx, opts[0].value, id, timeout_ms, -1);
}

int cmd_retry(cli *ctx, int argc, char **argv) {
  cli_opt opts[] = {{"queue", OPT_VALUE, NULL}};
  const char *id;
  int rc = one_id(ctx, argc, argv, opts, 1, "retry", &id);
  if (rc == CLI_OK) rc = cli_connect(ctx);
  if (rc != CLI_OK) return rc;
  int err = rtq_retry_task_in(ctx->client, opts[0].value, id);
  if (err != 0) return cli_fail(ctx, err, "retry");
  if (ctx->json) return cli_print_json(json_pack("{s:s, s:s}", "id", id, "status", "pending"));
  printf("retried: %s is pending again\n", id);
  return CLI_OK;
}
