/*
 * api.c - the JSON endpoints. Shapes follow the CLI's --json output
 * (docs/CLIENT.md section 2.3): a task is rtq_task_to_json's object, the
 * workers are `rtq workers --json`'s array, the stats are `rtq stats
 * --json`'s object with more fields per queue. docs/HTTP.md lists them.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub.h"
#include "overview.h"
#include "rtq/version.h"
#include "web.h"

#define LIST_DEFAULT 50
#define LIST_MAX 1000
#define OFFSET_MAX RTQ_LIST_MAX_EXAMINED

int web_status_of(int rc) {
  switch (rc) {
    case RTQ_EINVAL: return 400;
    case RTQ_ENOTFOUND: return 404;
    case RTQ_ESTATE: return 409;
    case RTQ_EUNVERIFIED: return 409; /* a forged outcome is no state to show */
    case RTQ_ECONN: return 503;
    default: return 500;
  }
}

static void fail(web_ctx *w, web_response *res, int rc, const char *what) {
  const char *detail = rtq_client_errstr(w->client);
  web_error(res, web_status_of(rc), "%s: %s%s%s", what, rtq_strerror(rc), detail[0] ? ": " : "",
            detail);
}

static json_t *time_or_null(uint64_t ms) {
  char buf[40];
  return ms != 0 ? json_string(rtq_format_time(ms, buf, sizeof buf)) : json_null();
}

/* A task as the JSON object of rtq_task_to_json (the library's shape). */
static json_t *task_value(const rtq_task *t) {
  char *text = NULL;
  if (rtq_task_to_json(t, &text) != 0) return NULL;
  json_t *v = json_loads(text, JSON_ALLOW_NUL, NULL); /* "\u0000" in args and results */
  free(text);
  return v;
}

static json_t *counters_value(const rtq_counter *c, size_t n) {
  json_t *o = json_object();
  for (size_t i = 0; o != NULL && i < n; i++)
    json_object_set_new(o, c[i].name, json_integer((json_int_t)c[i].value));
  return o;
}

static json_t *queue_value(const web_overview *o, const char *name, const rtq_queue_stats *q) {
  const rtq_queue_load *l = web_overview_load(o, name);
  uint64_t at = l != NULL ? l->oldest_pending_at : 0, now = o->stats->now;
  return json_pack("{s:s, s:b, s:I, s:I, s:I, s:o, s:I, s:o*}", "name", name, "paused", q != NULL && q->paused,
                   "backlog",
                   (json_int_t)(q != NULL ? q->backlog : 0), "running",
                   (json_int_t)(l != NULL ? l->running : 0), "delayed",
                   (json_int_t)(l != NULL ? l->delayed : 0), "oldest_pending_at", time_or_null(at),
                   "oldest_pending_age_ms", (json_int_t)(at != 0 && now > at ? now - at : 0),
                   "counters", q != NULL ? counters_value(q->counters, q->ncounters) : json_object());
}

/* The length of the queue name a skipped-queue note line starts with
 * ("queue Q: key K holds ..."), 0 when it does not. */
static size_t note_queue(const char *line, size_t len) {
  if (len < 6 || memcmp(line, "queue ", 6) != 0) return 0;
  const char *end = memchr(line + 6, ':', len - 6);
  return end != NULL ? (size_t)(end - line - 6) : 0;
}

/* Whether notes (lines, rtq_stats.skipped) leave queue out. */
static bool noted(const char *notes, const char *queue) {
  size_t qlen = strlen(queue);
  for (const char *p = notes; *p != '\0';) {
    size_t len = strcspn(p, "\n");
    if (note_queue(p, len) == qlen && memcmp(p + 6, queue, qlen) == 0) return true;
    p += len + (p[len] == '\n');
  }
  return false;
}

/* Appends each line of notes to a, but for a queue that a line of
 * already (NULL: none) leaves out: one line per queue left out. */
static void add_notes(json_t *a, const char *notes, const char *already) {
  for (const char *p = notes; a != NULL && *p != '\0';) {
    size_t len = strcspn(p, "\n"), q = note_queue(p, len);
    char queue[RTQ_TASK_ID_SIZE];
    bool dup = false;
    if (already != NULL && q > 0 && q < sizeof queue) {
      memcpy(queue, p + 6, q);
      queue[q] = '\0';
      dup = noted(already, queue);
    }
    if (!dup) json_array_append_new(a, json_stringn(p, len));
    p += len + (p[len] == '\n');
  }
}

static json_t *stats_value(const web_overview *o) {
  json_t *queues = json_array(), *statuses = json_object(), *skipped = json_array();
  const rtq_stats *s = o->stats;
  for (size_t i = 0; queues != NULL && i < s->nqueues; i++)
    json_array_append_new(queues, queue_value(o, s->queues[i].name, &s->queues[i]));
  /* Queues only a running or delayed task names (not yet in P:queues);
   * not one the stats left out for a key of the wrong type. */
  for (size_t i = 0; queues != NULL && i < o->loads->count; i++) {
    const char *name = o->loads->queues[i].name;
    bool known = noted(s->skipped, name);
    for (size_t j = 0; j < s->nqueues && !known; j++) known = strcmp(s->queues[j].name, name) == 0;
    if (!known) json_array_append_new(queues, queue_value(o, name, NULL));
  }
  add_notes(skipped, s->skipped, NULL);
  add_notes(skipped, o->loads->skipped, s->skipped);
  for (int i = 0; statuses != NULL && i < RTQ_STATUS_COUNT; i++)
    json_object_set_new(statuses, rtq_status_name((rtq_status)i),
                        json_integer((json_int_t)s->by_status[i]));
  return json_pack("{s:o, s:o*, s:o*, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:{s:b, s:b}, s:o*}", "now",
                   time_or_null(s->now), "queues", queues, "statuses", statuses, "running",
                   (json_int_t)s->running, "delayed", (json_int_t)s->delayed, "dead",
                   (json_int_t)s->dead, "workers_alive", (json_int_t)s->workers_alive,
                   "busy_slots", (json_int_t)o->busy_slots, "slots", (json_int_t)o->slots,
                   "broker", counters_value(s->broker, s->nbroker), "partial", "running",
                   o->loads->running_partial, "delayed", o->loads->delayed_partial, "skipped", skipped);
}

void web_api_stats(web_ctx *w, web_response *res) {
  web_overview o;
  int rc = web_overview_read(w->client, &o);
  if (rc != 0) {
    fail(w, res, rc, "stats");
    return;
  }
  web_json(res, 200, stats_value(&o));
  web_overview_destroy(&o);
}

static json_t *workers_value(const rtq_alive_workers *l) {
  json_t *arr = json_array();
  for (size_t i = 0; arr != NULL && i < l->count; i++) {
    const rtq_alive_worker *wk = &l->workers[i];
    uint64_t age = l->now > wk->last_seen ? l->now - wk->last_seen : 0;
    json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:i, s:i, s:o, s:o, s:I}", "id", wk->id, "host",
                          wk->host, "pid", (json_int_t)wk->pid, "queues", wk->queues, "busy",
                          wk->busy, "slots", wk->slots, "started_at", time_or_null(wk->started_at),
                          "last_heartbeat", time_or_null(wk->last_seen), "heartbeat_age_ms",
                          (json_int_t)age);
    json_t *un = json_string(wk->exec_unavailable); /* the worker's text: may not be UTF-8 */
    if (o != NULL && json_object_set_new(o, "exec_unavailable", un ? un : json_string("(not UTF-8)")) != 0) {
      json_decref(o);
      o = NULL;
    }
    if (o == NULL || json_array_append_new(arr, o) != 0) {
      json_decref(arr);
      return NULL;
    }
  }
  return arr;
}

void web_api_workers(web_ctx *w, web_response *res) {
  rtq_alive_workers *l = NULL;
  int rc = rtq_list_workers(w->client, &l);
  if (rc != 0) {
    fail(w, res, rc, "workers");
    return;
  }
  web_json(res, 200, workers_value(l));
  rtq_alive_workers_free(l);
}

void web_api_task(web_ctx *w, const char *id, web_response *res) {
  rtq_task *t = NULL;
  int rc = rtq_get_task(w->client, id, &t);
  if (rc != 0) {
    fail(w, res, rc, "task");
    return;
  }
  web_json(res, 200, task_value(t));
  rtq_task_free(t);
}

/* "pending,running" -> status bits; -1 for an unknown word. */
static int parse_statuses(const char *s, unsigned *bits) {
  *bits = 0;
  while (*s != '\0') {
    const char *comma = strchr(s, ',');
    size_t n = comma != NULL ? (size_t)(comma - s) : strlen(s);
    char word[16];
    rtq_status st;
    if (n == 0 || n >= sizeof word) return -1;
    memcpy(word, s, n);
    word[n] = '\0';
    if (rtq_status_parse(word, &st) != 0) return -1;
    *bits |= RTQ_STATUS_BIT(st);
    s += n + (comma != NULL);
  }
  return 0;
}

/* A whole decimal number in [lo, hi]; -1 otherwise. */
static int parse_size(const char *s, size_t lo, size_t hi, size_t *out) {
  if (s == NULL || *s == '\0' || strlen(s) > 9) return -1;
  size_t v = 0;
  for (const char *p = s; *p; p++) {
    if (*p < '0' || *p > '9') return -1;
    v = v * 10 + (size_t)(*p - '0');
  }
  if (v < lo || v > hi) return -1;
  *out = v;
  return 0;
}

void web_api_tasks(web_ctx *w, const web_request *req, web_response *res) {
  rtq_task_filter f;
  memset(&f, 0, sizeof f);
  const char *v;
  size_t limit = LIST_DEFAULT, offset = 0;
  if ((v = web_param_get(req, "status")) != NULL && v[0] != '\0' && parse_statuses(v, &f.statuses) != 0) {
    web_error(res, 400, "invalid status: expected a comma-separated list of pending, running, "
                        "completed, failed, cancelled, timeout");
    return;
  }
  if ((v = web_param_get(req, "queue")) != NULL && v[0] != '\0') {
    if (rtq_validate_name(v) != 0) {
      web_error(res, 400, "invalid queue name");
      return;
    }
    f.queue = v;
  }
  if ((v = web_param_get(req, "name")) != NULL && v[0] != '\0') {
    if (rtq_validate_name(v) != 0) {
      web_error(res, 400, "invalid task name");
      return;
    }
    f.name = v;
  }
  if ((v = web_param_get(req, "limit")) != NULL && parse_size(v, 1, LIST_MAX, &limit) != 0)
    {
      web_error(res, 400, "invalid limit: expected 1..%d", LIST_MAX);
      return;
    }
  if ((v = web_param_get(req, "offset")) != NULL && parse_size(v, 0, OFFSET_MAX, &offset) != 0)
    {
      web_error(res, 400, "invalid offset: expected 0..%d", OFFSET_MAX);
      return;
    }
  if ((v = web_param_get(req, "after")) != NULL && v[0] != '\0') {
    if (rtq_validate_name(v) != 0) {
      web_error(res, 400, "invalid after: expected a task id");
      return;
    }
    f.after = v;
  }
  /* One more than the page says whether there is a next one. */
  f.limit = limit + 1;
  f.offset = offset;
  rtq_task_list *l = NULL;
  int rc = rtq_list_tasks(w->client, &f, &l);
  if (rc != 0) {
      fail(w, res, rc, "list");
      return;
    }
  json_t *arr = json_array();
  for (size_t i = 0; arr != NULL && i < l->count && i < limit; i++) {
    json_t *t = task_value(l->tasks[i]);
    if (t == NULL || json_array_append_new(arr, t) != 0) {
      json_decref(arr);
      arr = NULL;
    }
  }
  /* The cursor of the next page is the last task shown (one more than the
   * page was read, to learn whether there is a next page). */
  bool more = l->count > limit;
  const char *next_after = more && limit > 0 ? l->tasks[limit - 1]->id : NULL;
  web_json(res, 200,
           arr == NULL ? NULL
                       : json_pack("{s:o, s:I, s:I, s:b, s:s*, s:I, s:b}", "tasks", arr, "limit",
                                   (json_int_t)limit, "offset", (json_int_t)offset, "has_more", more,
                                   "next_after", next_after, "examined", (json_int_t)l->examined,
                                   "truncated", l->truncated));
  rtq_task_list_free(l);
}

void web_api_action(web_ctx *w, const char *id, const char *action, web_response *res) {
  if (strcmp(action, "cancel") == 0) {
    int requested = 0;
    int rc = rtq_cancel_task(w->client, id, &requested);
    if (rc != 0) {
      fail(w, res, rc, "cancel");
      return;
    }
    web_json(res, 200,
             json_pack("{s:s, s:s}", "id", id, "outcome", requested ? "requested" : "cancelled"));
    return;
  }
  int rc = rtq_retry_task(w->client, id);
  if (rc != 0) {
      fail(w, res, rc, "retry");
      return;
    }
  web_json(res, 200, json_pack("{s:s, s:s}", "id", id, "status", "pending"));
}

void web_api_queue_action(web_ctx *w, const char *queue, const char *action, web_response *res) {
  bool pause = strcmp(action, "pause") == 0;
  int rc = pause ? rtq_queue_pause(w->client, queue) : rtq_queue_resume(w->client, queue);
  if (rc != 0) {
    fail(w, res, rc, action);
    return;
  }
  web_json(res, 200, json_pack("{s:s, s:b}", "queue", queue, "paused", pause));
}

void web_api_info(web_ctx *w, web_response *res) {
  web_hub_stats st;
  web_hub_stats_get(w->hub, &st);
  json_t *v =
           json_pack("{s:s, s:s, s:b, s:b, s:b, s:{s:I, s:I, s:I, s:I}}", "version", RTQ_VERSION_STRING,
                     "namespace", w->ns, "read_only", w->read_only, "auth_required",
                     web_auth_configured(w), "actions", !w->read_only && web_auth_configured(w),
                     "events",
                     "clients", (json_int_t)st.clients, "received", (json_int_t)st.events,
                     "dropped", (json_int_t)st.dropped, "resets", (json_int_t)st.resets);
  /* How the page authenticates: a token it asks for, or the browser's own
   * Basic login. */
  if (v != NULL)
    json_object_set_new(v, "auth", json_string(w->users.n > 0   ? "basic"
                                               : w->token_len > 0 ? "token"
                                                                  : "none"));
  web_json(res, 200, v);
}

/* A dead letter as rtq_dead_letter_to_json's object. */
static json_t *letter_value(const rtq_dead_letter *d) {
  char *text = NULL;
  if (rtq_dead_letter_to_json(d, &text) != 0) return NULL;
  json_t *v = json_loads(text, JSON_ALLOW_NUL, NULL); /* "\u0000" in args and results */
  free(text);
  return v;
}

void web_api_dead_list(web_ctx *w, const web_request *req, web_response *res) {
  size_t limit = RTQ_DEAD_DEFAULT_LIMIT, offset = 0;
  const char *v;
  if ((v = web_param_get(req, "limit")) != NULL && parse_size(v, 1, RTQ_DEAD_MAX_LIMIT, &limit) != 0) {
    web_error(res, 400, "invalid limit: expected 1..%d", RTQ_DEAD_MAX_LIMIT);
    return;
  }
  if ((v = web_param_get(req, "offset")) != NULL && parse_size(v, 0, 999999999, &offset) != 0) {
    web_error(res, 400, "invalid offset");
    return;
  }
  rtq_dead_letters *l = NULL;
  int rc = rtq_dead_list(w->client, offset, limit, &l);
  if (rc != 0) {
    fail(w, res, rc, "dead letters");
    return;
  }
  json_t *arr = json_array();
  for (size_t i = 0; arr != NULL && i < l->count; i++) {
    json_t *o = letter_value(&l->letters[i]);
    if (o == NULL || json_array_append_new(arr, o) != 0) {
      json_decref(arr);
      arr = NULL;
    }
  }
  web_json(res, 200,
           arr == NULL ? NULL
                       : json_pack("{s:I, s:I, s:o}", "total", (json_int_t)l->total, "offset",
                                   (json_int_t)offset, "letters", arr));
  rtq_dead_letters_free(l);
}

void web_api_dead_one(web_ctx *w, const char *index, web_response *res) {
  size_t i;
  if (parse_size(index, 0, 999999999, &i) != 0) {
    web_error(res, 400, "invalid dead-letter index");
    return;
  }
  rtq_dead_letter *d = NULL;
  int rc = rtq_dead_get(w->client, i, &d);
  if (rc != 0) {
    fail(w, res, rc, "dead letter");
    return;
  }
  web_json(res, 200, letter_value(d));
  rtq_dead_letter_free(d);
}

/* A letter that cannot be requeued is kept: a conflict with its state,
 * not a server error. */
static int requeue_status(int rc) {
  return rc == RTQ_EDECODE || rc == RTQ_ETOOBIG || rc == RTQ_EVERSION || rc == RTQ_EDEPTH
             ? 409
             : web_status_of(rc);
}

void web_api_dead_action(web_ctx *w, const web_request *req, const char *index, const char *action,
                         web_response *res) {
  const char *queue = web_param_get(req, "queue"), *expect = web_param_get(req, "id");
  if (queue != NULL && rtq_validate_name(queue) != 0) {
    web_error(res, 400, "invalid queue name");
    return;
  }
  int rc;
  if (index != NULL) {
    size_t i;
    if (parse_size(index, 0, 999999999, &i) != 0) {
      web_error(res, 400, "invalid dead-letter index");
      return;
    }
    /* The page names the task it showed at that index: a letter pushed in
     * front since then shifts the list, and the wrong one would move. The
     * library checks the id on the very record it requeues. */
    if (expect != NULL && rtq_validate_name(expect) != 0) {
      web_error(res, 400, "invalid id");
      return;
    }
    char *id = NULL;
    rc = expect != NULL ? rtq_dead_requeue_if(w->client, i, expect, queue, &id)
                        : rtq_dead_requeue(w->client, i, queue, &id);
    if (rc != 0) {
      const char *detail = rtq_client_errstr(w->client);
      web_error(res, requeue_status(rc), "requeue: %s%s%s", rtq_strerror(rc), detail[0] ? ": " : "",
                detail);
      return;
    }
    web_json(res, 200, json_pack("{s:I, s:s, s:s}", "index", (json_int_t)i, "id", id, "status",
                                 "pending"));
    free(id);
    return;
  }
  rtq_dead_counts n;
  if (strcmp(action, "requeue") == 0) {
    if ((rc = rtq_dead_requeue_all(w->client, queue, &n)) != 0) {
      fail(w, res, rc, "requeue");
      return;
    }
    web_json(res, 200, json_pack("{s:I, s:I, s:I}", "requeued", (json_int_t)n.done, "refused",
                                 (json_int_t)n.refused, "other_queues", (json_int_t)n.other));
    return;
  }
  if ((rc = rtq_dead_purge(w->client, queue, &n)) != 0) {
    fail(w, res, rc, "purge");
    return;
  }
  web_json(res, 200, json_pack("{s:I, s:I}", "purged", (json_int_t)n.done, "other_queues",
                               (json_int_t)n.other));
}

void web_api_throughput(web_ctx *w, const web_request *req, web_response *res) {
  size_t minutes = 60;
  const char *v = web_param_get(req, "minutes"), *queue = web_param_get(req, "queue");
  if (v != NULL && parse_size(v, 1, RTQ_THROUGHPUT_MAX_MINUTES, &minutes) != 0) {
    web_error(res, 400, "invalid minutes: expected 1..%d", RTQ_THROUGHPUT_MAX_MINUTES);
    return;
  }
  if (queue != NULL && (queue[0] == '\0' || rtq_validate_name(queue) != 0)) {
    web_error(res, 400, "invalid queue name");
    return;
  }
  rtq_throughput *t = NULL;
  int rc = rtq_get_throughput(w->client, queue, (int)minutes, &t);
  if (rc != 0) {
    fail(w, res, rc, "throughput");
    return;
  }
  json_t *arr = json_array();
  for (size_t i = 0; arr != NULL && i < t->count; i++) {
    const rtq_throughput_point *p = &t->points[i];
    json_t *o = p->known ? json_pack("{s:o, s:I, s:I}", "at", time_or_null(p->minute_at), "completed",
                                     (json_int_t)p->completed, "failed", (json_int_t)p->failed)
                         : json_pack("{s:o, s:n, s:n}", "at", time_or_null(p->minute_at), "completed",
                                     "failed");
    if (o == NULL || json_array_append_new(arr, o) != 0) {
      json_decref(arr);
      arr = NULL;
    }
  }
  web_json(res, 200,
           arr == NULL ? NULL : json_pack("{s:o, s:o}", "now", time_or_null(t->now), "minutes", arr));
  rtq_throughput_free(t);
}
