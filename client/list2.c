/*
 * list2.c - rtq_list_tasks under protocol 2 (docs/design/protocol-v2.md
 * section 5a): tasks are listed from the lists that hold them, queue by
 * queue (sorted by name, or the filter's queue alone), and within a queue
 * source by source:
 *
 *   source  status     key                          read
 *   q       pending    {ns:Q}:q                     from the right: oldest first
 *   d       pending    {ns:Q}:delayed               by due time
 *   r       running    {ns:Q}:p:<wid>, live workers  by worker id, oldest first
 *   c f x t completed, failed, cancelled, timeout
 *                      {ns:Q}:done:<status>         newest first
 *
 * Each source is read by offset in windows of WINDOW ids, and the tasks of
 * a window are read pipelined (rtq__task2_read_many); a task whose status
 * is not its source's (cancelled while pending, say) is skipped there and
 * listed from the source of its status. At most RTQ_LIST_MAX_EXAMINED
 * entries are examined per call; no call scans everything.
 *
 * Paging: next_after is a cursor "<id>/<source><offset>" of the last entry
 * examined ('/' is not in any name, so it never reads as an id). The next
 * page looks for the id within WINDOW entries of that offset, since lists
 * move (a claim takes the oldest pending id, an ended task pushes the done
 * list), and goes on after it (see refind for an id that has left). A plain task id works as `after` too: its source comes
 * from its status and its offset from a bounded search (LPOS ... MAXLEN).
 */
#include "client_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WINDOW 256
/* Live workers looked at for the running tasks of a queue. */
#define MAX_WORKERS 1000
/* A worker whose heartbeat is older than this is dead (docs/PROTOCOL.md §6). */
#define WORKER_TTL_MS 30000
/* Ids read from one worker's processing list. */
#define MAX_RUNNING_PER_WORKER 1024
/* (The running source of a queue keeps at most RTQ_LIST_MAX_EXAMINED +
 * WINDOW ids: a listing examines no more.) */
/* A key of the queue holds another type of value than rtq writes there
 * (written by hand): the queue is left out, with a note that names it,
 * rather than the whole listing failing. */
#define SKIPPED 2

static const struct source {
  char code;
  rtq_status status;
} sources[] = {
    {'q', RTQ_STATUS_PENDING},   {'d', RTQ_STATUS_PENDING},   {'r', RTQ_STATUS_RUNNING},
    {'c', RTQ_STATUS_COMPLETED}, {'f', RTQ_STATUS_FAILED},    {'x', RTQ_STATUS_CANCELLED},
    {'t', RTQ_STATUS_TIMEOUT},
};
#define NSOURCES ((int)(sizeof sources / sizeof sources[0]))

/* A window of ids, owned. */
typedef struct ids2 {
  char **v;
  size_t n;
} ids2;

static void ids_free(ids2 *w) {
  for (size_t i = 0; w->v != NULL && i < w->n; i++) free(w->v[i]);
  free(w->v);
  w->v = NULL;
  w->n = 0;
}

/* Takes the valid names of an array reply (reversed when rev) into w. */
static int ids_from(const redisReply *r, bool rev, ids2 *w) {
  w->v = NULL;
  w->n = 0;
  if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements == 0) return 0;
  w->v = calloc(r->elements, sizeof *w->v);
  if (w->v == NULL) return RTQ_ENOMEM;
  for (size_t i = 0; i < r->elements; i++) {
    const redisReply *e = r->element[rev ? r->elements - 1 - i : i];
    /* Junk in a list takes its place (offsets stay right) as "". */
    bool ok = e->type == REDIS_REPLY_STRING && memchr(e->str, '\0', e->len) == NULL &&
              rtq_validate_name(e->str) == 0;
    if ((w->v[w->n++] = strdup(ok ? e->str : "")) == NULL) return RTQ_ENOMEM;
  }
  return 0;
}

typedef struct lister2 {
  rtq_client *c;
  const rtq_task_filter *f;
  unsigned statuses;
  size_t limit;
  rtq_task_list *out;
  size_t matched;
  uint64_t now_ms;
  ids2 running;          /* the running source of running_queue */
  char running_queue[RTQ_TASK_ID_SIZE];
  char live[MAX_WORKERS][RTQ_TASK_ID_SIZE];
  int nlive;
  bool have_live;
  /* the last entry examined */
  char last_id[RTQ_TASK_ID_SIZE];
  char last_src;
  size_t last_off;
} lister2;

/* Redis TIME in ms. */
static int redis_now(rtq_client *c, uint64_t *ms) {
  const char *w[] = {"TIME"};
  redisReply *r = NULL;
  int rc = rtq__client_words(c, &r, 1, w);
  if (rc != 0) return rc;
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING ||
      r->element[1]->type != REDIS_REPLY_STRING) {
    rc = RTQ_EREDIS;
    rtq__client_err(c, "unexpected reply to TIME");
  } else {
    *ms = rtq__parse_u64(r->element[0]->str, r->element[0]->len) * 1000 +
          rtq__parse_u64(r->element[1]->str, r->element[1]->len) / 1000;
  }
  freeReplyObject(r);
  return rc;
}

static int cmp_ids(const void *a, const void *b) { return strcmp(a, b); }

/* The live workers, by id, once per listing. */
static int live_workers(lister2 *l) {
  if (l->have_live) return 0;
  rtq_key2 key = rtq_keys2_workers(&l->c->keys2);
  char min[32], most[16];
  snprintf(min, sizeof min, "%llu", (unsigned long long)(l->now_ms - WORKER_TTL_MS));
  snprintf(most, sizeof most, "%d", MAX_WORKERS);
  const char *w[] = {"ZRANGEBYSCORE", key.s, min, "+inf", "LIMIT", "0", most};
  redisReply *r = NULL;
  int rc = rtq__client_words(l->c, &r, 7, w);
  /* A user without the registry (a producer) lists everything else; the
   * running tasks are only in the workers' lists, which it may not read
   * either. */
  if (rc == RTQ_EREDIS && strstr(rtq_client_errstr(l->c), "NOPERM") != NULL) {
    rtq__client_clear_err(l->c);
    l->out->running_hidden = true;
    l->have_live = true;
    return 0;
  }
  if (rc != 0) return rc;
  ids2 ids;
  rc = ids_from(r, false, &ids);
  freeReplyObject(r);
  for (size_t i = 0; rc == 0 && i < ids.n; i++)
    if (ids.v[i][0] != '\0') snprintf(l->live[l->nlive++], RTQ_TASK_ID_SIZE, "%s", ids.v[i]);
  ids_free(&ids);
  if (rc == 0) {
    qsort(l->live, (size_t)l->nlive, sizeof l->live[0], cmp_ids);
    l->have_live = true;
  }
  return rc;
}

/* Appends part's ids to l->running (taking them), up to the listing's
 * examination bound in all. */
static int running_add(lister2 *l, ids2 *part) {
  size_t room = RTQ_LIST_MAX_EXAMINED + (size_t)WINDOW - l->running.n;
  size_t k = part->n < room ? part->n : room;
  if (k == 0) return 0;
  char **more = realloc(l->running.v, (l->running.n + k) * sizeof *more);
  if (more == NULL) return RTQ_ENOMEM;
  l->running.v = more;
  memcpy(more + l->running.n, part->v, k * sizeof *more);
  l->running.n += k;
  /* The ids taken now belong to running; the rest are part's to free. */
  memmove(part->v, part->v + k, (part->n - k) * sizeof *part->v);
  part->n -= k;
  return 0;
}

/* The running source of queue: every live worker's processing list of
 * it, oldest first, concatenated in worker order; read once per queue, in
 * one pipelined round trip. */
static int running_of(lister2 *l, const char *queue) {
  if (strcmp(l->running_queue, queue) == 0 && l->running.v != NULL) return 0;
  ids_free(&l->running);
  int rc = live_workers(l);
  if (rc != 0) return rc;
  rtq_conn *conn = NULL;
  if (l->nlive > 0 && (rc = rtq__pool_get(l->c, &conn)) != 0) return rc;
  char last[16];
  snprintf(last, sizeof last, "%d", MAX_RUNNING_PER_WORKER - 1);
  int sent = 0;
  rtq_argv a;
  rtq_argv_init(&a);
  for (int i = 0; rc == 0 && i < l->nlive; i++) {
    rtq_argv_reset(&a);
    rtq_argv_add_str(&a, "LRANGE");
    rc = rtq__argv_add_key2(&a, rtq_keys2_processing(&l->c->keys2, queue, l->live[i]));
    rtq_argv_add_str(&a, "0");
    rtq_argv_add_str(&a, last);
    if (rc == 0) rc = rtq_conn_append(conn, &a);
    if (rc == 0) sent++;
  }
  rtq_argv_destroy(&a);
  if (rc != 0) rc = rtq__client_conn_err(l->c, conn, rc, "redis");
  bool wrong = false;
  for (int i = 0; i < sent; i++) {
    redisReply *r = NULL;
    int g = rtq_conn_get_reply(conn, &r);
    ids2 part = {NULL, 0};
    if (g == RTQ_EREDIS && rtq__wrong_type(r)) {
      if (!wrong)
        rtq__skip_note(l->out->skipped, sizeof l->out->skipped, queue,
                       rtq_keys2_processing(&l->c->keys2, queue, l->live[i]).s);
      wrong = true;
      g = 0;
    }
    if (g != 0 && rc == 0) rc = rtq__client_conn_err(l->c, conn, g, "redis");
    if (rc == 0 && ids_from(r, true, &part) != 0) rc = RTQ_ENOMEM;
    if (rc == 0) rc = running_add(l, &part);
    ids_free(&part);
    if (r != NULL) freeReplyObject(r);
  }
  if (conn != NULL) rtq__pool_put(l->c, conn);
  if (rc == 0 && l->running.v == NULL) l->running.v = calloc(1, sizeof *l->running.v);
  if (rc == 0 && l->running.v == NULL) rc = RTQ_ENOMEM;
  snprintf(l->running_queue, sizeof l->running_queue, "%s", queue);
  if (rc == 0 && wrong) {
    rtq__client_clear_err(l->c);
    return SKIPPED;
  }
  return rc;
}

/* Ids [off, off + n) of source src of queue, in reading order. */
static int window(lister2 *l, const char *queue, const struct source *src, size_t off, size_t n,
                  ids2 *w) {
  w->v = NULL;
  w->n = 0;
  if (src->code == 'r') {
    int rc = running_of(l, queue);
    if (rc != 0 || off >= l->running.n) return rc;
    size_t k = l->running.n - off < n ? l->running.n - off : n;
    w->v = calloc(k, sizeof *w->v);
    if (w->v == NULL) return RTQ_ENOMEM;
    for (size_t i = 0; i < k; i++)
      if ((w->v[w->n++] = strdup(l->running.v[off + i])) == NULL) return RTQ_ENOMEM;
    return 0;
  }
  rtq_key2 key = src->code == 'q'   ? rtq_keys2_queue(&l->c->keys2, queue)
                 : src->code == 'd' ? rtq_keys2_delayed(&l->c->keys2, queue)
                                    : rtq_keys2_done(&l->c->keys2, queue, src->status);
  char a[32], b[32];
  if (src->code == 'q') { /* from the right: -(off+1) is the off-th oldest */
    snprintf(a, sizeof a, "-%zu", off + n);
    snprintf(b, sizeof b, "-%zu", off + 1);
  } else {
    snprintf(a, sizeof a, "%zu", off);
    snprintf(b, sizeof b, "%zu", off + n - 1);
  }
  const char *words[] = {src->code == 'd' ? "ZRANGE" : "LRANGE", key.s, a, b};
  redisReply *r = NULL;
  int rc = rtq__client_words(l->c, &r, 4, words);
  if (rc == RTQ_EREDIS && strstr(rtq_client_errstr(l->c), "WRONGTYPE") != NULL) {
    rtq__skip_note(l->out->skipped, sizeof l->out->skipped, queue, key.s);
    rtq__client_clear_err(l->c);
    return SKIPPED;
  }
  if (rc != 0) return rc;
  /* LRANGE with negative indexes clamps at the head: a short window
   * beyond the list's length reads only what is there. */
  rc = ids_from(r, src->code == 'q', w);
  freeReplyObject(r);
  return rc;
}

static bool wanted(const lister2 *l, const struct source *src, const rtq_task *t) {
  if (t->status != src->status || !(l->statuses & RTQ_STATUS_BIT(t->status))) return false;
  return l->f->name == NULL || strcmp(l->f->name, t->name) == 0;
}

/* Lists source src of queue from offset off. Returns 0 (source done), 1
 * (the page is full or the budget spent: stop), SKIPPED, or an error. */
static int list_source(lister2 *l, const char *queue, const struct source *src, size_t off) {
  for (;;) {
    size_t budget = RTQ_LIST_MAX_EXAMINED - l->out->examined;
    if (budget == 0) {
      l->out->truncated = true;
      return 1;
    }
    size_t n = budget < WINDOW ? budget : WINDOW;
    ids2 w;
    int rc = window(l, queue, src, off, n, &w);
    if (rc != 0 || w.n == 0) {
      ids_free(&w);
      if (rc == RTQ_ENOMEM) rtq__client_err(l->c, "out of memory");
      return rc;
    }
    rtq_task **tasks = calloc(w.n, sizeof *tasks);
    int *rcs = calloc(w.n, sizeof *rcs);
    size_t nread = 0; /* ids of w that are names: the others are skipped */
    const char **names = calloc(w.n, sizeof *names);
    if (tasks == NULL || rcs == NULL || names == NULL) {
      rc = RTQ_ENOMEM;
      rtq__client_err(l->c, "out of memory");
    }
    for (size_t i = 0; rc == 0 && i < w.n; i++)
      if (w.v[i][0] != '\0') names[nread++] = w.v[i];
    if (rc == 0) rc = rtq__task2_read_many(l->c, queue, names, nread, tasks, rcs);
    int stop = 0;
    for (size_t i = 0, k = 0; rc == 0 && i < w.n && !stop; i++) {
      l->out->examined++;
      snprintf(l->last_id, sizeof l->last_id, "%s", w.v[i]);
      l->last_src = src->code;
      l->last_off = off + i;
      if (w.v[i][0] == '\0') continue;
      rtq_task *t = tasks[k];
      tasks[k++] = NULL;
      if (t != NULL && wanted(l, src, t) && ++l->matched > l->f->offset) {
        l->out->tasks[l->out->count++] = t;
        t = NULL;
        if (l->out->count == l->limit) stop = 1;
      }
      rtq_task_free(t);
    }
    for (size_t i = 0; tasks != NULL && i < nread; i++) rtq_task_free(tasks[i]);
    free(tasks);
    free(rcs);
    free(names);
    size_t got = w.n;
    ids_free(&w);
    if (rc != 0) return rc;
    if (stop) return 1;
    if (got < n) return 0;
    off += got;
  }
}

/* ---- the cursor ---- */

typedef struct cursor {
  char id[RTQ_TASK_ID_SIZE];
  int src;       /* index into sources */
  size_t off;
  bool has_off;  /* false: a plain id */
  char queue[RTQ_TASK_ID_SIZE];
} cursor;

static int parse_cursor(rtq_client *c, const char *after, cursor *cur) {
  memset(cur, 0, sizeof *cur);
  const char *slash = strrchr(after, '/');
  size_t idlen = slash != NULL ? (size_t)(slash - after) : strlen(after);
  if (idlen == 0 || idlen > RTQ_TASK_ID_MAX) goto bad;
  memcpy(cur->id, after, idlen);
  cur->id[idlen] = '\0';
  if (rtq_validate_name(cur->id) != 0) goto bad;
  if (slash == NULL) return 0;
  cur->src = -1;
  for (int i = 0; i < NSOURCES; i++)
    if (slash[1] == sources[i].code) cur->src = i;
  const char *num = slash + 2;
  size_t nlen = strlen(num);
  if (cur->src < 0 || nlen == 0 || nlen > 9 || strspn(num, "0123456789") != nlen) goto bad;
  cur->off = (size_t)rtq__parse_u64(num, nlen);
  cur->has_off = true;
  return 0;
bad:
  rtq__client_err(c, "invalid after \"%.140s\": expected a task id or a listing's next_after", after);
  return RTQ_EINVAL;
}

/* The queue the cursor's id belongs to: the filter's, else by the id (a
 * task that has expired since: the one queue of its slot). */
static int cursor_queue(lister2 *l, cursor *cur) {
  if (l->f->queue != NULL) {
    snprintf(cur->queue, sizeof cur->queue, "%s", l->f->queue);
    return 0;
  }
  int rc = rtq__queue_of_id2(l->c, cur->id, NULL, cur->queue);
  if (rc != RTQ_ENOTFOUND) return rc;
  int slot = rtq_id2_slot(cur->id);
  char **names;
  size_t n;
  if (slot < 0 || rtq__queues2_read(l->c, &names, &n) != 0) return RTQ_ENOTFOUND;
  int found = 0;
  for (size_t i = 0; i < n; i++)
    if (rtq_keys2_slot(&l->c->keys2, names[i]) == slot && found++ == 0)
      snprintf(cur->queue, sizeof cur->queue, "%s", names[i]);
  rtq__queues2_free(names, n);
  if (found == 1) return 0;
  rtq__client_err(l->c, "after: no task %s", cur->id);
  return RTQ_ENOTFOUND;
}

/* Where the page after the cursor starts in its source: just after the id
 * when it is within WINDOW of its offset (the nearest such place). An id
 * that has left a pending source went the way every older one went first
 * (claims take the oldest pending id, promotion the earliest due), so the
 * page goes on at the start of the source; one that left another source
 * goes on at the offset. */
static int refind(lister2 *l, cursor *cur, size_t *start) {
  const struct source *src = &sources[cur->src];
  size_t lo = cur->off > WINDOW ? cur->off - WINDOW : 0;
  ids2 w;
  int rc = window(l, cur->queue, src, lo, 2 * WINDOW + 1, &w);
  if (rc != 0) return rc;
  size_t best = SIZE_MAX, dist = SIZE_MAX;
  for (size_t i = 0; i < w.n; i++) {
    if (strcmp(w.v[i], cur->id) != 0) continue;
    size_t pos = lo + i, d = pos > cur->off ? pos - cur->off : cur->off - pos;
    if (d < dist) best = pos, dist = d;
  }
  ids_free(&w);
  if (best != SIZE_MAX)
    *start = best + 1;
  else
    *start = src->status == RTQ_STATUS_PENDING ? 0 : cur->off;
  return 0;
}

/* A plain id as `after`: its source from its status, its offset by a
 * bounded search. RTQ_ENOTFOUND when it is not within reach. */
static int locate(lister2 *l, cursor *cur) {
  rtq_task *t = NULL;
  int rc = rtq__task2_read(l->c, cur->queue, cur->id, &t);
  if (rc != 0) return rc;
  rtq_status st = t->status;
  rtq_task_free(t);
  char maxlen[16];
  snprintf(maxlen, sizeof maxlen, "%d", RTQ_LIST_MAX_EXAMINED);
  for (int i = 0; i < NSOURCES; i++) {
    const struct source *src = &sources[i];
    if (src->status != st) continue;
    redisReply *r = NULL;
    if (src->code == 'r') {
      if ((rc = running_of(l, cur->queue)) != 0) return rc;
      for (size_t k = 0; k < l->running.n; k++)
        if (strcmp(l->running.v[k], cur->id) == 0) {
          cur->src = i, cur->off = k, cur->has_off = true;
          return 0;
        }
      continue;
    }
    rtq_key2 key = src->code == 'q'   ? rtq_keys2_queue(&l->c->keys2, cur->queue)
                   : src->code == 'd' ? rtq_keys2_delayed(&l->c->keys2, cur->queue)
                                      : rtq_keys2_done(&l->c->keys2, cur->queue, st);
    if (src->code == 'd') {
      const char *w[] = {"ZRANK", key.s, cur->id};
      rc = rtq__client_words(l->c, &r, 3, w);
    } else {
      const char *w[] = {"LPOS", key.s, cur->id, "RANK", src->code == 'q' ? "-1" : "1",
                         "MAXLEN", maxlen};
      rc = rtq__client_words(l->c, &r, 7, w);
    }
    if (rc != 0) return rc;
    bool found = r->type == REDIS_REPLY_INTEGER && r->integer >= 0;
    long long pos = found ? r->integer : 0;
    freeReplyObject(r);
    if (!found) continue;
    if (src->code == 'q') { /* LPOS counts from the head; we read from the tail */
      const char *w[] = {"LLEN", key.s};
      if ((rc = rtq__client_words(l->c, &r, 2, w)) != 0) return rc;
      long long len = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
      freeReplyObject(r);
      if (pos >= len) continue;
      pos = len - 1 - pos;
    }
    cur->src = i, cur->off = (size_t)pos, cur->has_off = true;
    return 0;
  }
  rtq__client_err(l->c, "after: task %s is not within %d entries of its list's end", cur->id,
                  RTQ_LIST_MAX_EXAMINED);
  return RTQ_ENOTFOUND;
}

/* The cursor of the last entry examined, or "" when it does not fit (an
 * id near 128 characters: the plain id then, found again by locate). */
static void set_next(lister2 *l) {
  char buf[RTQ_TASK_ID_SIZE + 32];
  int n = snprintf(buf, sizeof buf, "%s/%c%zu", l->last_id, l->last_src, l->last_off);
  if (l->last_id[0] == '\0')
    l->out->next_after[0] = '\0';
  else if (n > 0 && (size_t)n < sizeof l->out->next_after)
    memcpy(l->out->next_after, buf, (size_t)n + 1);
  else
    snprintf(l->out->next_after, sizeof l->out->next_after, "%s", l->last_id);
}

static int run(lister2 *l) {
  int rc = redis_now(l->c, &l->now_ms);
  if (rc != 0) return rc;
  cursor cur;
  bool resume = false;
  if (l->f->after != NULL) {
    if ((rc = parse_cursor(l->c, l->f->after, &cur)) != 0) return rc;
    if ((rc = cursor_queue(l, &cur)) != 0) return rc;
    if (!cur.has_off && (rc = locate(l, &cur)) != 0) return rc;
    resume = true;
  }
  char **names = NULL;
  size_t nq = 0;
  if (l->f->queue != NULL) {
    names = calloc(1, sizeof *names);
    if (names == NULL || (names[0] = strdup(l->f->queue)) == NULL) {
      free(names);
      rtq__client_err(l->c, "out of memory");
      return RTQ_ENOMEM;
    }
    nq = 1;
  } else if ((rc = rtq__queues2_read(l->c, &names, &nq)) != 0) {
    return rc;
  }
  size_t q0 = 0;
  if (resume) {
    while (q0 < nq && strcmp(names[q0], cur.queue) < 0) q0++;
    if (q0 == nq || strcmp(names[q0], cur.queue) != 0) resume = false; /* queue gone: go on after it */
  }
  int stop = 0;
  for (size_t q = q0; rc == 0 && !stop && q < nq; q++) {
    for (int s = 0; rc == 0 && !stop && s < NSOURCES; s++) {
      size_t off = 0;
      if (resume && q == q0) {
        if (s < cur.src) continue;
        if (s == cur.src && (rc = refind(l, &cur, &off)) != 0) {
          if (rc == SKIPPED) rc = 0;
          break;
        }
      }
      if (!(l->statuses & RTQ_STATUS_BIT(sources[s].status))) continue;
      rc = list_source(l, names[q], &sources[s], off);
      if (rc == 1) stop = 1, rc = 0;
      if (rc == SKIPPED) {
        rc = 0;
        break;
      }
    }
  }
  rtq__queues2_free(names, nq);
  if (rc == 0 && stop) set_next(l);
  return rc;
}

int rtq__list2(rtq_client *c, const rtq_task_filter *f, rtq_task_list **out) {
  if (f->statuses >> RTQ_STATUS_COUNT) {
    rtq__client_err(c, "status set has bits beyond the %d statuses", RTQ_STATUS_COUNT);
    return RTQ_EINVAL;
  }
  if (f->queue != NULL && rtq__check_name(c, "queue name", f->queue) != 0) return RTQ_EINVAL;
  if (f->name != NULL && rtq__check_name(c, "task name", f->name) != 0) return RTQ_EINVAL;
  lister2 *l = calloc(1, sizeof *l);
  rtq_task_list *list = calloc(1, sizeof *list);
  if (l == NULL || list == NULL) {
    free(l);
    free(list);
    rtq__client_err(c, "out of memory");
    return RTQ_ENOMEM;
  }
  l->c = c;
  l->f = f;
  l->statuses = f->statuses ? f->statuses : (1u << RTQ_STATUS_COUNT) - 1;
  l->limit = f->limit == 0 ? RTQ_LIST_DEFAULT_LIMIT : f->limit;
  if (l->limit > RTQ_LIST_MAX_EXAMINED) l->limit = RTQ_LIST_MAX_EXAMINED;
  l->out = list;
  list->tasks = calloc(l->limit, sizeof *list->tasks);
  int rc = list->tasks != NULL ? run(l) : RTQ_ENOMEM;
  if (rc == RTQ_ENOMEM) rtq__client_err(c, "out of memory");
  ids_free(&l->running);
  free(l);
  if (rc != 0) {
    rtq_task_list_free(list);
    return rc;
  }
  *out = list;
  return 0;
}
