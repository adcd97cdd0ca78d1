/*
 * list.c - rtq_list_tasks: newest first, filtered, with a bounded cost.
 *
 * Every task id sits in one index per status, P:status:<s>, scored by its
 * created_at. Listing is a k-way merge of the wanted indexes, read newest
 * first in windows of WINDOW entries (ZREVRANGE ... WITHSCORES):
 *
 *   P:status:pending  [t9 t7 t4 ...]  \
 *   P:status:running  [t8 t3 ...]      >- merge by (created_at, id) desc
 *   P:status:failed   [t6 t5 ...]     /        |
 *                                              v  batches of CHECK_BATCH
 *                       pipelined HMGET status queue name -> filter
 *                                              |
 *                       skip `offset` matches, keep `limit` -> HGETALL
 *
 * A window is read only when its stream runs dry, and the merge stops at
 * offset + limit matches or after RTQ_LIST_MAX_EXAMINED entries, so a call
 * costs O(examined) whatever the size of the database; no KEYS, no SCAN.
 *
 * Windows are read by score, not by rank: each stream keeps the score its
 * next window starts at (inclusive) and how many entries of that score it
 * has passed already (ZREVRANGEBYSCORE key <score> -inf LIMIT <passed> W).
 * So a listing can start anywhere: `after` names a task, whose created_at
 * is its score in every index, and the merge starts at that score, passing
 * over the entries that sort before the task or are the task itself
 * (equal scores are ordered by id, descending, as ZREVRANGEBYSCORE orders
 * them). Each page then costs O(log N + page), however deep it is.
 * Ids can move between indexes while we read (a task starting), so the
 * HMGET re-checks the status and a set of ids already seen drops repeats.
 */
#include "client_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WINDOW 256
#define CHECK_BATCH 256

struct stream {
  rtq_key key;
  redisReply *win;  /* member, score, member, score ... */
  size_t pos;       /* next member index in win */
  char from[64];    /* score the next window starts at (inclusive) */
  size_t passed;    /* entries of score `from` read already */
  int last;         /* win is the final window */
};

struct seen {
  char **slot;      /* open addressing; strdup'd ids */
  size_t cap;       /* power of two, > 2 * RTQ_LIST_MAX_EXAMINED */
};

struct lister {
  rtq_client *c;
  rtq_conn *conn;
  const rtq_task_filter *f;
  unsigned statuses;
  size_t limit;
  struct stream streams[RTQ_STATUS_COUNT];
  int nstreams;
  struct seen seen;
  size_t matched;   /* matches so far, skipped ones included */
  bool after;       /* start after (after_score, after_id) */
  double after_score;
  char after_id[RTQ_TASK_ID_SIZE];
  char last_id[RTQ_TASK_ID_SIZE]; /* the last candidate examined */
  char (*ids)[RTQ_TASK_ID_SIZE];
  size_t nids;      /* ids kept for the page */
  size_t examined;
};

static int redis_err(struct lister *l, int rc) {
  return rtq__client_conn_err(l->c, l->conn, rc, "redis");
}

/* FNV-1a: the set only needs to spread ULIDs and similar names. */
static size_t hash(const char *s) {
  size_t h = (size_t)1469598103934665603ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * (size_t)1099511628211ull;
  return h;
}

/* Adds id; 1 when new, 0 when seen before, RTQ_ENOMEM. */
static int seen_add(struct seen *s, const char *id) {
  size_t i = hash(id) & (s->cap - 1);
  while (s->slot[i] != NULL) {
    if (strcmp(s->slot[i], id) == 0) return 0;
    i = (i + 1) & (s->cap - 1);
  }
  s->slot[i] = strdup(id);
  return s->slot[i] != NULL ? 1 : RTQ_ENOMEM;
}

static void seen_free(struct seen *s) {
  for (size_t i = 0; s->slot != NULL && i < s->cap; i++) free(s->slot[i]);
  free(s->slot);
}

/* Where the window after win starts: the last score of win, past the
 * entries of that score win holds (and those passed before it when the
 * whole window has one score). */
static void next_from(struct stream *s) {
  const redisReply *w = s->win;
  size_t n = w->elements / 2;
  if (n == 0) return;
  const char *lastsc = w->element[w->elements - 1]->str;
  size_t same = 0;
  while (same < n && strcmp(w->element[w->elements - 1 - 2 * same]->str, lastsc) == 0) same++;
  if (same == n && strcmp(lastsc, s->from) == 0) {
    s->passed += n;
  } else {
    snprintf(s->from, sizeof s->from, "%s", lastsc);
    s->passed = same;
  }
}

/* Makes sure a stream that is not exhausted has an entry to offer. */
static int refill(struct lister *l, struct stream *s) {
  if (s->win != NULL && s->pos < s->win->elements) return 0;
  if (s->last) return 0;
  if (s->win != NULL) freeReplyObject(s->win);
  s->win = NULL;
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "ZREVRANGEBYSCORE");
  rtq__argv_add_key(&a, s->key);
  rtq_argv_add_str(&a, s->from);
  rtq_argv_add_str(&a, "-inf");
  rtq_argv_add_str(&a, "WITHSCORES");
  rtq_argv_add_str(&a, "LIMIT");
  rtq_argv_add_u64(&a, s->passed);
  rtq_argv_add_u64(&a, WINDOW);
  int rc = rtq_conn_command(l->conn, &a, &s->win);
  rtq_argv_destroy(&a);
  if (rc != 0) return redis_err(l, rc);
  if (s->win->type != REDIS_REPLY_ARRAY || s->win->elements % 2 != 0) {
    rtq__client_err(l->c, "unexpected ZREVRANGEBYSCORE reply");
    return RTQ_EREDIS;
  }
  for (size_t i = 1; i < s->win->elements; i += 2)
    if (s->win->element[i]->type != REDIS_REPLY_STRING) {
      rtq__client_err(l->c, "unexpected ZREVRANGEBYSCORE reply");
      return RTQ_EREDIS;
    }
  s->pos = 0;
  s->last = s->win->elements < 2 * WINDOW;
  next_from(s);
  return 0;
}

static int has_head(const struct stream *s) {
  return s->win != NULL && s->pos < s->win->elements;
}

static double head_score(const struct stream *s) {
  return strtod(s->win->element[s->pos + 1]->str, NULL);
}

static const char *head_id(const struct stream *s) { return s->win->element[s->pos]->str; }

/* An index member that is not a task id (a stray ZADD, a truncated or
 * binary name) is passed over: it names no key we may read, and reading
 * it could hit a key outside the namespace's ACL patterns. It still
 * counts towards RTQ_LIST_MAX_EXAMINED. */
static int head_is_id(const struct stream *s) {
  const redisReply *m = s->win->element[s->pos];
  return m->type == REDIS_REPLY_STRING && m->len <= RTQ_TASK_ID_MAX && strlen(m->str) == m->len &&
         rtq_validate_name(m->str) == 0;
}

/* A head the `after` cursor has passed: the cursor's task itself, or one
 * of its created_at that sorts before it. */
static int head_passed(const struct lister *l, const struct stream *s) {
  if (!l->after) return 0;
  return head_score(s) == l->after_score && strcmp(s->win->element[s->pos]->str, l->after_id) >= 0;
}

/* Takes the newest head across the streams into id. 1 taken, 0 all
 * exhausted, or an error. */
static int next_candidate(struct lister *l, char id[RTQ_TASK_ID_SIZE]) {
  struct stream *best = NULL;
  for (int i = 0; i < l->nstreams; i++) {
    struct stream *s = &l->streams[i];
    int rc = refill(l, s);
    if (rc != 0) return rc;
    while (has_head(s) && (!head_is_id(s) || head_passed(l, s)) &&
           l->examined < RTQ_LIST_MAX_EXAMINED) {
      s->pos += 2;
      l->examined++;
      if (!has_head(s) && (rc = refill(l, s)) != 0) return rc;
    }
    if (!has_head(s) || !head_is_id(s) || head_passed(l, s)) continue;
    if (best == NULL) {
      best = s;
      continue;
    }
    double a = head_score(s), b = head_score(best);
    if (a > b || (a == b && strcmp(head_id(s), head_id(best)) > 0)) best = s;
  }
  if (best == NULL) return 0;
  snprintf(id, RTQ_TASK_ID_SIZE, "%s", head_id(best));
  best->pos += 2;
  return 1;
}

static int reply_eq(const redisReply *r, const char *s) {
  return r->type == REDIS_REPLY_STRING && r->len == strlen(s) && memcmp(r->str, s, r->len) == 0;
}

/* Does the HMGET status queue name reply match the filter? */
static int matches(const struct lister *l, const redisReply *r) {
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 3) return 0;
  const redisReply *st = r->element[0];
  if (st->type != REDIS_REPLY_STRING || st->len > 15) return 0;
  char buf[16];
  memcpy(buf, st->str, st->len);
  buf[st->len] = '\0';
  rtq_status s;
  if (rtq_status_parse(buf, &s) != 0 || !(l->statuses & RTQ_STATUS_BIT(s))) return 0;
  if (l->f->queue != NULL && !reply_eq(r->element[1], l->f->queue)) return 0;
  if (l->f->name != NULL && !reply_eq(r->element[2], l->f->name)) return 0;
  return 1;
}

/* Checks a batch of candidates in one pipeline and keeps the matches. */
static int check_batch(struct lister *l, char (*batch)[RTQ_TASK_ID_SIZE], size_t n) {
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    rtq_argv a;
    rtq_argv_init(&a);
    rtq_key k = rtq_keys_task(&l->c->keys, batch[i]);
    rtq_argv_add_str(&a, "HMGET");
    rtq__argv_add_key(&a, k);
    rtq_argv_add_str(&a, "status");
    rtq_argv_add_str(&a, "queue");
    rtq_argv_add_str(&a, "name");
    rc = rtq_conn_append(l->conn, &a);
    rtq_argv_destroy(&a);
  }
  if (rc != 0) return redis_err(l, rc);
  for (size_t i = 0; i < n; i++) {
    redisReply *r = NULL;
    int trc = rtq_conn_get_reply(l->conn, &r);
    if (trc != 0 && rc == 0) rc = redis_err(l, trc);
    if (trc == 0 && rc == 0 && matches(l, r)) {
      if (l->matched >= l->f->offset && l->nids < l->limit)
        memcpy(l->ids[l->nids++], batch[i], RTQ_TASK_ID_SIZE);
      l->matched++;
    }
    if (r != NULL) freeReplyObject(r);
  }
  return rc;
}

/* The merge: fills l->ids with the page. Sets *truncated when it stopped
 * at the cap with entries left unread. */
static int collect(struct lister *l, bool *truncated) {
  char (*batch)[RTQ_TASK_ID_SIZE] = malloc(CHECK_BATCH * sizeof *batch);
  if (batch == NULL) return RTQ_ENOMEM;
  int rc = 0, more = 1;
  *truncated = false;
  while (rc == 0 && more && l->nids < l->limit) {
    size_t n = 0;
    while (n < CHECK_BATCH && l->examined < RTQ_LIST_MAX_EXAMINED) {
      more = next_candidate(l, batch[n]);
      if (more <= 0) break;
      l->examined++;
      memcpy(l->last_id, batch[n], RTQ_TASK_ID_SIZE);
      int fresh = seen_add(&l->seen, batch[n]);
      if (fresh < 0) more = fresh;
      if (fresh <= 0) continue;
      n++;
    }
    if (more < 0) {
      rc = more;
      break;
    }
    if (n > 0) rc = check_batch(l, batch, n);
    if (rc == 0 && l->examined >= RTQ_LIST_MAX_EXAMINED && l->nids < l->limit) {
      /* The page is short and anything left in a stream was not read. */
      for (int i = 0; i < l->nstreams; i++)
        if (has_head(&l->streams[i]) || !l->streams[i].last) *truncated = true;
      break;
    }
  }
  free(batch);
  return rc;
}

/* The cursor of the next page: the last task kept when the page is full,
 * the last entry examined when the examination cap stopped it, and ""
 * when every stream has been read to its end. */
static void next_after(const struct lister *l, rtq_task_list *out) {
  out->next_after[0] = '\0';
  if (l->nids == l->limit && l->nids > 0) {
    memcpy(out->next_after, l->ids[l->nids - 1], RTQ_TASK_ID_SIZE);
    return;
  }
  for (int i = 0; i < l->nstreams; i++)
    if (has_head(&l->streams[i]) || !l->streams[i].last) {
      memcpy(out->next_after, l->last_id, RTQ_TASK_ID_SIZE);
      return;
    }
}

/* Reads the page's tasks in one pipeline; a task gone meanwhile is left
 * out. */
static int fetch_page(struct lister *l, rtq_task_list *out) {
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < l->nids; i++) {
    rtq_argv a;
    rtq_argv_init(&a);
    rtq_key k = rtq_keys_task(&l->c->keys, l->ids[i]);
    rtq_argv_add_str(&a, "HGETALL");
    rtq__argv_add_key(&a, k);
    rc = rtq_conn_append(l->conn, &a);
    rtq_argv_destroy(&a);
  }
  if (rc != 0) return redis_err(l, rc);
  for (size_t i = 0; i < l->nids; i++) {
    redisReply *r = NULL;
    int trc = rtq_conn_get_reply(l->conn, &r);
    if (trc != 0 && rc == 0) rc = redis_err(l, trc);
    if (trc == 0 && rc == 0) {
      rtq_task *t = NULL;
      int prc = rtq__task_from_hash(l->ids[i], r, &t);
      if (prc == 0)
        out->tasks[out->count++] = t;
      else if (prc == RTQ_ENOMEM)
        rc = prc;
    }
    if (r != NULL) freeReplyObject(r);
  }
  return rc;
}

/*
 * The `after` cursor: the task's score, its created_at (the score it has in
 * every index); when its hash is gone, its score in the first wanted index
 * that still holds it. Every stream then starts at that score.
 * RTQ_ENOTFOUND when neither is there.
 */
static int start_after(struct lister *l, const char *id) {
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "HGET");
  rtq__argv_add_key(&a, rtq_keys_task(&l->c->keys, id));
  rtq_argv_add_str(&a, "created_at");
  redisReply *r = NULL;
  int rc = rtq_conn_command(l->conn, &a, &r);
  for (int i = 0; rc == 0 && i < l->nstreams && r->type != REDIS_REPLY_STRING; i++) {
    freeReplyObject(r);
    r = NULL;
    rtq_argv_reset(&a);
    rtq_argv_add_str(&a, "ZSCORE");
    rtq__argv_add_key(&a, l->streams[i].key);
    rtq_argv_add_str(&a, id);
    rc = rtq_conn_command(l->conn, &a, &r);
  }
  rtq_argv_destroy(&a);
  if (rc != 0) {
    if (r != NULL) freeReplyObject(r);
    return redis_err(l, rc);
  }
  char *end = NULL;
  double score = r->type == REDIS_REPLY_STRING ? strtod(r->str, &end) : 0;
  bool ok = r->type == REDIS_REPLY_STRING && r->len > 0 && r->len < sizeof l->streams[0].from &&
            end != NULL && *end == '\0';
  for (int i = 0; ok && i < l->nstreams; i++)
    snprintf(l->streams[i].from, sizeof l->streams[i].from, "%s", r->str);
  freeReplyObject(r);
  if (!ok) {
    rtq__client_err(l->c, "list --after %s: no such task in the indexes (it ended and expired, or "
                    "was never created)", id);
    return RTQ_ENOTFOUND;
  }
  l->after = true;
  l->after_score = score;
  snprintf(l->after_id, sizeof l->after_id, "%s", id);
  return 0;
}

static int check_filter(rtq_client *c, const rtq_task_filter *f) {
  if (f->statuses >> RTQ_STATUS_COUNT) {
    rtq__client_err(c, "status set has bits beyond the %d statuses", RTQ_STATUS_COUNT);
    return RTQ_EINVAL;
  }
  if (f->queue != NULL && rtq__check_name(c, "queue name", f->queue) != 0) return RTQ_EINVAL;
  if (f->name != NULL && rtq__check_name(c, "task name", f->name) != 0) return RTQ_EINVAL;
  if (f->after != NULL && rtq__check_name(c, "task id", f->after) != 0) return RTQ_EINVAL;
  return 0;
}

static void lister_destroy(struct lister *l) {
  for (int i = 0; i < l->nstreams; i++)
    if (l->streams[i].win != NULL) freeReplyObject(l->streams[i].win);
  seen_free(&l->seen);
  free(l->ids);
  rtq__pool_put(l->c, l->conn);
}

RTQ_EXTERN int rtq_list_tasks(rtq_client *c, const rtq_task_filter *filter, rtq_task_list **out) {
  static const rtq_task_filter all;
  if (c == NULL || out == NULL) return RTQ_EINVAL;
  *out = NULL;
  rtq__client_clear_err(c);
  const rtq_task_filter *f = filter != NULL ? filter : &all;
  if (c->protocol == 2) return rtq__list2(c, f, out);
  int rc = check_filter(c, f);
  if (rc != 0) return rc;

  struct lister l;
  memset(&l, 0, sizeof l);
  l.c = c;
  l.f = f;
  l.statuses = f->statuses ? f->statuses : (1u << RTQ_STATUS_COUNT) - 1;
  l.limit = f->limit == 0 ? RTQ_LIST_DEFAULT_LIMIT : f->limit;
  if (l.limit > RTQ_LIST_MAX_EXAMINED) l.limit = RTQ_LIST_MAX_EXAMINED;
  for (int s = 0; s < RTQ_STATUS_COUNT; s++)
    if (l.statuses & RTQ_STATUS_BIT(s)) {
      struct stream *st = &l.streams[l.nstreams++];
      st->key = rtq_keys_status(&c->keys, s);
      snprintf(st->from, sizeof st->from, "+inf");
    }
  l.seen.cap = 32768;
  l.seen.slot = calloc(l.seen.cap, sizeof *l.seen.slot);
  l.ids = malloc(l.limit * sizeof *l.ids);
  rtq_task_list *list = calloc(1, sizeof *list);
  if (list != NULL) list->tasks = calloc(l.limit, sizeof *list->tasks);
  if (l.seen.slot == NULL || l.ids == NULL || list == NULL || list->tasks == NULL) {
    rtq__client_err(c, "out of memory");
    rc = RTQ_ENOMEM;
  }
  if (rc == 0) rc = rtq__pool_get(c, &l.conn);
  if (rc == 0 && f->after != NULL) rc = start_after(&l, f->after);
  if (rc == 0) rc = collect(&l, &list->truncated);
  if (rc == 0) next_after(&l, list);
  if (rc == 0) rc = fetch_page(&l, list);
  if (list != NULL) list->examined = l.examined;
  lister_destroy(&l);
  if (rc != 0) {
    if (rc == RTQ_ENOMEM && rtq_client_errstr(c)[0] == '\0') rtq__client_err(c, "out of memory");
    rtq_task_list_free(list);
    return rc;
  }
  *out = list;
  return 0;
}

RTQ_EXTERN void rtq_task_list_free(rtq_task_list *l) {
  if (l == NULL) return;
  for (size_t i = 0; l->tasks != NULL && i < l->count; i++) rtq_task_free(l->tasks[i]);
  free(l->tasks);
  free(l);
}
