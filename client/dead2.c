/*
 * dead2.c - protocol 2: the dead letters, kept per queue in {ns:Q}:dead
 * (docs/PROTOCOL.md section 8), read and handled as one list.
 *
 * The index of a letter across queues: the queues of {ns}:queues in name
 * order, each list newest first, one after the other. With queues a (2
 * letters) and b (3), index 0 is a's newest, 1 a's oldest, 2 b's newest
 * and 4 b's oldest; total is the sum of the lengths. The lengths are read
 * (one pipelined LLEN per queue) at each call, so an index means what it
 * meant when the caller read the list only while nothing was
 * dead-lettered or removed meanwhile: rtq_dead_requeue_if checks the
 * record's id for that reason.
 *
 * A v2 letter's payload is the entry that was not a task to run: a task
 * id (its hash missing, invalid, or the task failed by the dead-lettering)
 * or bytes that are not an id. Requeueing runs dead_requeue.lua on the
 * record's exact bytes: a task whose hash exists, validates and ended
 * failed, timeout or cancelled is pending again at the back of its queue
 * and the letter is removed; any other letter is kept (no hash: v2 keeps
 * no envelope, so there is nothing to enqueue).
 */
#include "client_internal.h"

#include <stdlib.h>
#include <string.h>

#include "calls2.h"

/* The largest record dead_requeue.lua takes (deadletter.lua's are a few
 * KiB: the payload is cut at 4 KiB). */
#define RECORD_MAX 65536

/* The queues and the length of each one's dead list. */
typedef struct dead_map {
  char **names;
  size_t n;
  uint64_t *lens;
  uint64_t total;
} dead_map;

static void map_free(dead_map *m) {
  rtq__queues2_free(m->names, m->n);
  free(m->lens);
  memset(m, 0, sizeof *m);
}

/* A read, resent once on a lost connection; destroys a. */
static int send_one(rtq_client *c, rtq_argv *a, redisReply **r) {
  int rc = rtq__client_command(c, a, r);
  rtq_argv_destroy(a);
  return rc;
}

/* A write, sent once (an RPOP resent would take more); destroys a. */
static int send_once(rtq_client *c, rtq_argv *a, redisReply **r) {
  rtq_conn *conn = NULL;
  int rc = rtq__pool_get(c, &conn);
  if (rc == 0 && (rc = rtq_conn_command(conn, a, r)) != 0) rtq__client_conn_err(c, conn, rc, "redis");
  if (conn != NULL) rtq__pool_put(c, conn);
  rtq_argv_destroy(a);
  return rc;
}

/* Reads the queues (only `only` when not NULL) and their dead lists'
 * lengths. */
static int map_read(rtq_client *c, const char *only, dead_map *m) {
  memset(m, 0, sizeof *m);
  int rc = 0;
  if (only != NULL) {
    m->names = calloc(1, sizeof *m->names);
    if (m->names != NULL && (m->names[0] = strdup(only)) != NULL) m->n = 1;
    else rc = RTQ_ENOMEM;
  } else {
    rc = rtq__queues2_read(c, &m->names, &m->n);
  }
  if (rc != 0) {
    map_free(m);
    return rc;
  }
  m->lens = calloc(m->n + 1, sizeof *m->lens);
  rtq_argv *cmds = calloc(m->n + 1, sizeof *cmds);
  redisReply **r = calloc(m->n + 1, sizeof *r);
  rtq_conn *conn = NULL;
  rc = m->lens != NULL && cmds != NULL && r != NULL ? rtq__pool_get(c, &conn) : RTQ_ENOMEM;
  for (size_t i = 0; rc == 0 && i < m->n; i++) {
    rtq_argv_init(&cmds[i]);
    rtq_argv_add_str(&cmds[i], "LLEN");
    rtq__argv_add_key2(&cmds[i], rtq_keys2_dead(&c->keys2, m->names[i]));
  }
  if (rc == 0 && m->n > 0) rc = rtq__pipe2(c, conn, cmds, m->n, r);
  for (size_t i = 0; rc == 0 && i < m->n; i++) {
    m->lens[i] = rtq__reply_u64(r[i]);
    m->total += m->lens[i];
  }
  if (conn != NULL) rtq__pool_put(c, conn);
  rtq__pipe2_free(cmds, r, cmds != NULL && r != NULL ? m->n : 0);
  if (rc != 0) {
    if (rc == RTQ_ENOMEM) rtq__client_err(c, "out of memory");
    map_free(m);
  }
  return rc;
}

/* The queue and the index in its list of letter index; -1 past the end. */
static int locate(const dead_map *m, uint64_t index, size_t *q, uint64_t *local) {
  for (size_t i = 0; i < m->n; i++) {
    if (index < m->lens[i]) {
      *q = i;
      *local = index;
      return 0;
    }
    index -= m->lens[i];
  }
  return -1;
}

int rtq__dead2_list(rtq_client *c, size_t offset, size_t limit, rtq_dead_letters **out) {
  dead_map m;
  int rc = map_read(c, NULL, &m);
  if (rc != 0) return rc;
  rtq_dead_letters *l = calloc(1, sizeof *l);
  if (l != NULL && (l->letters = calloc(limit, sizeof *l->letters)) == NULL) {
    free(l);
    l = NULL;
  }
  if (l == NULL) rc = RTQ_ENOMEM;
  /* One LRANGE per queue the page overlaps, in index order. */
  uint64_t start = 0, end = (uint64_t)offset + limit; /* [offset, end) */
  for (size_t i = 0; rc == 0 && i < m.n && start < end; start += m.lens[i], i++) {
    uint64_t lo = offset > start ? offset - start : 0, stop = end - start;
    if (lo >= m.lens[i]) continue;
    if (stop > m.lens[i]) stop = m.lens[i];
    rtq_argv a;
    rtq_argv_init(&a);
    rtq_argv_add_str(&a, "LRANGE");
    rtq__argv_add_key2(&a, rtq_keys2_dead(&c->keys2, m.names[i]));
    rtq_argv_add_u64(&a, lo);
    rtq_argv_add_u64(&a, stop - 1);
    redisReply *r = NULL;
    rc = send_one(c, &a, &r);
    for (size_t j = 0; rc == 0 && r->type == REDIS_REPLY_ARRAY && j < r->elements && l->count < limit; j++) {
      const redisReply *e = r->element[j];
      if (e->type != REDIS_REPLY_STRING) continue;
      rc = rtq__dead_decode(&l->letters[l->count++], start + lo + j, e->str, e->len);
    }
    if (r != NULL) freeReplyObject(r);
  }
  if (rc == 0) l->total = m.total;
  map_free(&m);
  if (rc != 0) {
    if (rc == RTQ_ENOMEM) rtq__client_err(c, "out of memory");
    rtq_dead_letters_free(l);
    return rc;
  }
  *out = l;
  return 0;
}

/* The record at index: its queue (copied into queue) and bytes (a string
 * reply the caller frees). RTQ_ENOTFOUND when there is none. */
static int record_at(rtq_client *c, size_t index, char queue[RTQ_TASK_ID_SIZE], redisReply **out) {
  *out = NULL;
  dead_map m;
  int rc = map_read(c, NULL, &m);
  if (rc != 0) return rc;
  size_t qi = 0;
  uint64_t local = 0;
  if (locate(&m, index, &qi, &local) != 0) {
    rtq__client_err(c, "no dead letter at index %zu", index);
    rc = RTQ_ENOTFOUND;
  }
  redisReply *r = NULL;
  if (rc == 0) {
    strcpy(queue, m.names[qi]);
    rtq_argv a;
    rtq_argv_init(&a);
    rtq_argv_add_str(&a, "LINDEX");
    rtq__argv_add_key2(&a, rtq_keys2_dead(&c->keys2, queue));
    rtq_argv_add_u64(&a, local);
    rc = send_one(c, &a, &r);
  }
  if (rc == 0 && r->type != REDIS_REPLY_STRING) {
    rtq__client_err(c, "no dead letter at index %zu (the list changed)", index);
    rc = RTQ_ENOTFOUND;
  }
  map_free(&m);
  if (rc != 0 && r != NULL) {
    freeReplyObject(r);
    r = NULL;
  }
  *out = r;
  return rc;
}

int rtq__dead2_get(rtq_client *c, size_t index, rtq_dead_letter **out) {
  char queue[RTQ_TASK_ID_SIZE];
  redisReply *r = NULL;
  int rc = record_at(c, index, queue, &r);
  return rtq__dead_letter_of(c, index, rc, r, out);
}

/*
 * Runs dead_requeue.lua on one record of queue's list. 0 (requeued;
 * *id_out a copy of the id when id_out is not NULL), RTQ_ENOTFOUND (the
 * record was gone), RTQ_ESTATE (no task hash, or a task not ended failed,
 * timeout or cancelled), RTQ_EDECODE (the record or the task hash does
 * not validate): the detail says which; or a connection error.
 */
static int requeue_record(rtq_client *c, const char *queue, const char *rec, size_t len, char **id_out) {
  /* The script raises an error for these (no record deadletter.lua writes
   * is one); refused here like any other letter that is no record, so a
   * bulk requeue goes on past it. */
  if (len == 0 || len > RECORD_MAX) {
    rtq__client_err(c, "dead letter of %zu bytes is no record (1 to %d bytes): nothing to requeue, letter kept", len,
                    RECORD_MAX);
    return RTQ_EDECODE;
  }
  rtq_argv a;
  rtq_argv_init(&a);
  redisReply *r = NULL;
  int rc = rtq__call2_dead_requeue(&a, &c->keys2, false, queue, (rtq__bytes2){rec, len});
  if (rc == 0) rc = rtq__client_script2(c, &a, &r);
  rtq_argv_destroy(&a);
  rtq__tag2 t;
  if (rc == 0 && rtq__reply2_tag(r, &t) != 0) {
    rtq__client_err(c, "unexpected reply from dead_requeue");
    rc = RTQ_EREDIS;
  }
  if (rc == 0) {
    const char *id = t.n >= 1 && t.str[0] != NULL ? t.str[0] : "";
    if (strcmp(t.tag, "ok") == 0) {
      if (id_out != NULL && (*id_out = strdup(id)) == NULL) rc = RTQ_ENOMEM;
    } else if (strcmp(t.tag, "gone") == 0) {
      rtq__client_err(c, "the dead letter was taken meanwhile");
      rc = RTQ_ENOTFOUND;
    } else if (strcmp(t.tag, "notask") == 0) {
      rtq__client_err(c, "task %s has no record (expired or never written): nothing to requeue, letter kept", id);
      rc = RTQ_ESTATE;
    } else if (strcmp(t.tag, "state") == 0) {
      rtq__client_err(c, "task %s is %s: only a failed, timeout or cancelled task is requeued, letter kept", id,
                      t.n >= 2 && t.str[1] != NULL ? t.str[1] : "?");
      rc = RTQ_ESTATE;
    } else {
      rtq__client_err(c, "dead letter of task %s cannot be requeued: %s", id[0] ? id : "(no id)",
                      t.n >= 2 && t.str[1] != NULL ? t.str[1] : "?");
      rc = RTQ_EDECODE;
    }
  }
  if (r != NULL) freeReplyObject(r);
  return rc;
}

int rtq__dead2_requeue(rtq_client *c, size_t index, const char *expect_id, const char *queue, char **id_out) {
  char q[RTQ_TASK_ID_SIZE];
  redisReply *r = NULL;
  int rc = record_at(c, index, q, &r);
  if (rc == 0 && queue != NULL && strcmp(queue, q) != 0) {
    rtq__client_err(c, "dead letter %zu is of queue %s, not %s", index, q, queue);
    rc = RTQ_ENOTFOUND;
  }
  if (rc == 0 && expect_id != NULL) rc = rtq__dead_is_task(c, index, r, expect_id);
  if (rc == 0) rc = requeue_record(c, q, r->str, r->len, id_out);
  if (r != NULL) freeReplyObject(r);
  return rc;
}

/* Requeues the letters of one queue present when it starts, oldest
 * first, RTQ_DEAD_STEP per LRANGE. */
static int requeue_queue(rtq_client *c, const char *queue, uint64_t budget, rtq_dead_counts *n) {
  uint64_t tail = 0; /* letters kept behind us */
  int rc = 0;
  while (rc == 0 && budget > 0) {
    uint64_t page = budget < RTQ_DEAD_STEP ? budget : RTQ_DEAD_STEP;
    rtq_argv a;
    rtq_argv_init(&a);
    rtq_argv_add_str(&a, "LRANGE");
    rtq__argv_add_key2(&a, rtq_keys2_dead(&c->keys2, queue));
    rtq_argv_add_i64(&a, -(int64_t)(tail + page));
    rtq_argv_add_i64(&a, -(int64_t)(tail + 1));
    redisReply *r = NULL;
    rc = send_one(c, &a, &r);
    size_t got = rc == 0 && r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
    for (size_t i = got; rc == 0 && i > 0; i--) {
      const redisReply *e = r->element[i - 1];
      budget--;
      int v = e->type == REDIS_REPLY_STRING ? requeue_record(c, queue, e->str, e->len, NULL) : RTQ_EDECODE;
      if (v == 0) {
        n->done++;
      } else if (v == RTQ_ESTATE || v == RTQ_EDECODE) {
        n->refused++;
        tail++;
      } else if (v != RTQ_ENOTFOUND) {
        rc = v; /* a connection or memory failure ends the walk */
      }
    }
    if (r != NULL) freeReplyObject(r);
    if (got == 0) break;
  }
  return rc;
}

int rtq__dead2_requeue_all(rtq_client *c, const char *queue, rtq_dead_counts *n) {
  dead_map m;
  int rc = map_read(c, queue, &m);
  for (size_t i = 0; rc == 0 && i < m.n; i++) rc = requeue_queue(c, m.names[i], m.lens[i], n);
  if (rc == 0) rtq__client_clear_err(c); /* a refusal's detail is not an error */
  map_free(&m);
  return rc;
}

int rtq__dead2_purge(rtq_client *c, const char *queue, rtq_dead_counts *n) {
  dead_map m;
  int rc = map_read(c, queue, &m);
  /* The oldest letters, those present at the start, RTQ_DEAD_STEP per
   * RPOP: letters dead-lettered meanwhile go to the head and stay. */
  for (size_t i = 0; rc == 0 && i < m.n; i++) {
    uint64_t budget = m.lens[i];
    while (rc == 0 && budget > 0) {
      uint64_t most = budget < RTQ_DEAD_STEP ? budget : RTQ_DEAD_STEP;
      rtq_argv a;
      rtq_argv_init(&a);
      rtq_argv_add_str(&a, "RPOP");
      rtq__argv_add_key2(&a, rtq_keys2_dead(&c->keys2, m.names[i]));
      rtq_argv_add_u64(&a, most);
      redisReply *r = NULL;
      rc = send_once(c, &a, &r);
      uint64_t popped = rc == 0 && r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
      if (r != NULL) freeReplyObject(r);
      n->done += popped;
      budget -= popped < budget ? popped : budget;
      if (popped < most) break; /* the list is empty */
    }
  }
  map_free(&m);
  return rc;
}
