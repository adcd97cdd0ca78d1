/*
 * main.c - rtq-example-producer: a web application's task endpoints as
 * subcommands (see producer.h), written against rtq/client.h only.
 *
 *   rtq-example-producer [--redis URL] [--namespace NS] COMMAND ...
 *
 * Output is JSON, as an HTTP API would answer, except `start`, which prints
 * the bare id so that a shell can capture it: id=$(... start export).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "producer.h"

static const example_kind kinds[] = {
    {"file", "examples.process_file", "{\"file_path\": \"/bin/sh\"}"},
    {"email", "examples.send_emails",
     "{\"recipients\": [\"ann@example.com\", \"bob@example.com\", \"carol@example.com\","
     " \"dave@bounce.example\"], \"fail\": [\"dave@bounce.example\"]}"},
    {"export", "examples.export_data", "{\"format\": \"csv\", \"records\": 1000}"},
};

const example_kind *example_kind_find(const char *name) {
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
    if (strcmp(kinds[i].kind, name) == 0) return &kinds[i];
  return NULL;
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: rtq-example-producer [--redis URL | --redis-url-file FILE] [--namespace NS]\n"
          "                            COMMAND ...\n"
          "\n"
          "  start file|email|export [ARGS_JSON] [--queue Q] [--timeout S]\n"
          "                          enqueue an example task and print its id at once\n"
          "  status ID               the task as JSON (status, progress, result, error)\n"
          "  list [--status S]       recent tasks as a JSON array\n"
          "  cancel ID               cancel a pending or running task\n"
          "  result ID [--timeout S] wait until the task ends, print its result\n"
          "  demo [--file PATH] [--timeout S]\n"
          "                          the three examples, one task cancelled and one timed\n"
          "                          out; exits 0 when each ended as expected\n"
          "\n"
          "Handlers: rtq-worker --plugin .../examples.so --demo-handlers.\n"
          "Environment: RTQ_REDIS_URL, RTQ_REDIS_URL_FILE, RTQ_NAMESPACE. Exit codes: 0 ok, 1 the task ended\n"
          "other than completed (demo: not as expected), 2 usage, 3 not found, 4 redis,\n"
          "5 timed out.\n");
}

int producer_fail(const producer *p, int rc, const char *what) {
  fprintf(stderr, "rtq-example-producer: %s: %s\n", what,
          p->client != NULL ? rtq_client_errstr(p->client) : rtq_client_errstr(NULL));
  switch (rc) {
    case RTQ_ENOTFOUND: return PRODUCER_NOTFOUND;
    case RTQ_ETIMEDOUT: return PRODUCER_TIMEOUT;
    case RTQ_ESTATE: return PRODUCER_ENDED;
    case RTQ_EINVAL:
    case RTQ_EJSON:
    case RTQ_ERANGE:
    case RTQ_ETOOBIG:
    case RTQ_EDEPTH: return PRODUCER_USAGE;
    default: return PRODUCER_REDIS;
  }
}

static int parse_seconds(const char *s, int64_t *ms) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || v < 0 || v > 365.0 * 86400) {
    fprintf(stderr, "rtq-example-producer: --timeout wants seconds, got \"%s\"\n", s);
    return PRODUCER_USAGE;
  }
  *ms = (int64_t)(v * 1000.0 + 0.5);
  return PRODUCER_OK;
}

/* Overwrites the password of a URL in argv ("redis://user:PASS@host") with
 * '*', so ps and /proc/<pid>/cmdline no longer show it; the caller keeps a
 * copy. A URL holding a password is better given in a file. */
static void hide_password(char *arg) {
  char *auth = strstr(arg, "://");
  if (auth == NULL) return;
  auth += 3;
  char *at = strrchr(auth, '@');
  char *colon = at != NULL ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
  for (char *c = colon != NULL ? colon + 1 : at; c != NULL && c < at; c++) *c = '*';
}

/* Takes the options out of argv (anywhere, "--opt value" or "--opt=value";
 * "--" ends them) and leaves the other words in pos. */
static int parse(producer *p, int argc, char **argv, const char **pos, int *npos) {
  static const char *const names[] = {"redis", "namespace", "queue", "status", "file", "timeout",
                                      "redis-url-file"};
  const char *timeout = NULL;
  const char **slots[] = {&p->redis_url, &p->ns, &p->queue, &p->status, &p->file, &timeout,
                          &p->redis_url_file};
  bool opts_done = false;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (opts_done || a[0] != '-' || a[1] == '\0') {
      if (*npos >= 4) {
        fprintf(stderr, "rtq-example-producer: too many arguments (see --help)\n");
        return PRODUCER_USAGE;
      }
      pos[(*npos)++] = a;
      continue;
    }
    if (strcmp(a, "--") == 0) {
      opts_done = true;
      continue;
    }
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      exit(PRODUCER_OK);
    }
    size_t k = 0, nlen = strcspn(a + 2, "=");
    for (; k < sizeof names / sizeof names[0]; k++)
      if (a[1] == '-' && strlen(names[k]) == nlen && strncmp(a + 2, names[k], nlen) == 0)
        break;
    if (k == sizeof names / sizeof names[0]) {
      fprintf(stderr, "rtq-example-producer: unknown option %s (see --help)\n", a);
      return PRODUCER_USAGE;
    }
    char *value;
    if (a[2 + nlen] == '=') {
      value = argv[i] + 3 + nlen;
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      fprintf(stderr, "rtq-example-producer: %s needs a value\n", a);
      return PRODUCER_USAGE;
    }
    *slots[k] = value;
    if (slots[k] == &p->redis_url) {
      static char url[1024];
      snprintf(url, sizeof url, "%s", value);
      p->redis_url = url;
      hide_password(value);
    }
  }
  return timeout != NULL ? parse_seconds(timeout, &p->timeout_ms) : PRODUCER_OK;
}

static int connect_client(producer *p) {
  rtq_client_options o;
  memset(&o, 0, sizeof o);
  o.redis_url = p->redis_url;
  o.redis_url_file = p->redis_url_file;
  o.ns = p->ns;
  int rc = rtq_client_new(&o, &p->client);
  return rc == 0 ? PRODUCER_OK : producer_fail(p, rc, "connect");
}

/* POST /tasks/KIND: enqueue and answer at once with the id. */
static int cmd_start(producer *p, const char *kind_name, const char *json) {
  const example_kind *k = example_kind_find(kind_name);
  if (k == NULL) {
    fprintf(stderr, "rtq-example-producer: unknown example \"%s\" (file, email or export)\n", kind_name);
    return PRODUCER_USAGE;
  }
  rtq_args *args = NULL;
  char err[256];
  if (rtq_args_from_json(json != NULL ? json : k->default_args, &args, err, sizeof err) != 0 ||
      rtq_args_type(args) != RTQ_TYPE_MAP) {
    fprintf(stderr, "rtq-example-producer: the arguments must be a JSON object: %s\n",
            args == NULL ? err : "not an object");
    rtq_args_free(args);
    return PRODUCER_USAGE;
  }
  rtq_task_options o;
  memset(&o, 0, sizeof o);
  o.queue = p->queue;
  if (p->timeout_ms > 0) o.timeout_ms = (uint64_t)p->timeout_ms;
  char id[RTQ_TASK_ID_SIZE];
  int rc = rtq_create_task(p->client, k->handler, args, &o, id, NULL);
  rtq_args_free(args);
  if (rc != 0) return producer_fail(p, rc, "start");
  printf("%s\n", id);
  return PRODUCER_OK;
}

/* GET /tasks/ID */
static int cmd_status(producer *p, const char *id) {
  rtq_task *t = NULL;
  int rc = rtq_get_task(p->client, id, &t);
  if (rc != 0) return producer_fail(p, rc, "status");
  char *json = NULL;
  rc = rtq_task_to_json(t, &json);
  if (rc == 0) printf("%s\n", json);
  free(json);
  rtq_task_free(t);
  return rc == 0 ? PRODUCER_OK : producer_fail(p, rc, "status");
}

/* GET /tasks?status=S: a JSON array, one task per line. */
static int cmd_list(producer *p) {
  rtq_task_filter f;
  memset(&f, 0, sizeof f);
  if (p->status != NULL) {
    rtq_status s;
    if (rtq_status_parse(p->status, &s) != 0) {
      fprintf(stderr, "rtq-example-producer: unknown status \"%s\"\n", p->status);
      return PRODUCER_USAGE;
    }
    f.statuses = RTQ_STATUS_BIT(s);
  }
  f.queue = p->queue;
  rtq_task_list *l = NULL;
  int rc = rtq_list_tasks(p->client, &f, &l);
  if (rc != 0) return producer_fail(p, rc, "list");
  printf("[");
  for (size_t i = 0; i < l->count && rc == 0; i++) {
    char *json = NULL;
    rc = rtq_task_to_json(l->tasks[i], &json);
    if (rc == 0) printf("%s\n%s", i == 0 ? "" : ",", json);
    free(json);
  }
  printf("%s]\n", l->count > 0 ? "\n" : "");
  rtq_task_list_free(l);
  return rc == 0 ? PRODUCER_OK : producer_fail(p, rc, "list");
}

/* DELETE /tasks/ID */
static int cmd_cancel(producer *p, const char *id) {
  int requested = 0;
  int rc = rtq_cancel_task(p->client, id, &requested);
  if (rc != 0) return producer_fail(p, rc, "cancel");
  /* A running task stops cooperatively: its status changes when the
   * handler has noticed. */
  printf("{\"id\":\"%s\",\"status\":\"%s\"}\n", id, requested ? "cancel_requested" : "cancelled");
  return PRODUCER_OK;
}

/* GET /tasks/ID/result?wait: blocks until the task ends. */
static int cmd_result(producer *p, const char *id) {
  rtq_task *t = NULL;
  int rc = rtq_wait_for_task(p->client, id, p->timeout_ms, &t);
  if (rc != 0) return producer_fail(p, rc, "result");
  int exit_code = PRODUCER_OK;
  if (t->status == RTQ_STATUS_COMPLETED) {
    char *json = NULL;
    rc = rtq_task_result_json(t, &json);
    if (rc == 0) printf("%s\n", json);
    free(json);
    if (rc != 0) exit_code = producer_fail(p, rc, "result");
  } else {
    fprintf(stderr, "rtq-example-producer: task %s ended %s: %s: %s\n", id,
            rtq_status_name(t->status), t->error_code ? t->error_code : "-",
            t->error_message ? t->error_message : "");
    exit_code = PRODUCER_ENDED;
  }
  rtq_task_free(t);
  return exit_code;
}

static int need(int npos, int want, const char *cmd) {
  if (npos == want) return PRODUCER_OK;
  fprintf(stderr, "rtq-example-producer: %s takes %d argument%s (see --help)\n", cmd, want - 1,
          want == 2 ? "" : "s");
  return PRODUCER_USAGE;
}

int main(int argc, char **argv) {
  producer p;
  memset(&p, 0, sizeof p);
  p.timeout_ms = -1;
  const char *pos[4];
  int npos = 0;
  int rc = parse(&p, argc, argv, pos, &npos);
  if (rc != PRODUCER_OK) return rc;
  if (npos == 0) {
    usage(stderr);
    return PRODUCER_USAGE;
  }
  const char *cmd = pos[0];
  if (strcmp(cmd, "start") == 0) {
    if (npos != 2 && npos != 3) {
      fprintf(stderr, "rtq-example-producer: start takes KIND and optionally ARGS_JSON\n");
      rc = PRODUCER_USAGE;
    }
  } else if (strcmp(cmd, "status") == 0 || strcmp(cmd, "cancel") == 0 ||
             strcmp(cmd, "result") == 0) {
    rc = need(npos, 2, cmd);
  } else if (strcmp(cmd, "list") == 0 || strcmp(cmd, "demo") == 0) {
    rc = need(npos, 1, cmd);
  } else {
    fprintf(stderr, "rtq-example-producer: unknown command \"%s\" (see --help)\n", cmd);
    rc = PRODUCER_USAGE;
  }
  if (rc == PRODUCER_OK) rc = connect_client(&p);
  if (rc == PRODUCER_OK) {
    if (strcmp(cmd, "start") == 0) rc = cmd_start(&p, pos[1], npos == 3 ? pos[2] : NULL);
    else if (strcmp(cmd, "status") == 0) rc = cmd_status(&p, pos[1]);
    else if (strcmp(cmd, "list") == 0) rc = cmd_list(&p);
    else if (strcmp(cmd, "cancel") == 0) rc = cmd_cancel(&p, pos[1]);
    else if (strcmp(cmd, "result") == 0) rc = cmd_result(&p, pos[1]);
    else rc = producer_demo(&p);
  }
  rtq_client_free(p.client);
  return rc;
}
