/*
 * dead_requeue.c - putting dead letters back on their queues, and deleting
 * them: rtq_dead_requeue, rtq_dead_requeue_all, rtq_dead_purge.
 *
 * A record can be requeued when its payload is the whole envelope (the
 * record keeps the first 4096 bytes; `size` says how many there were) and
 * that decodes as a task envelope under the client's limits; anything else
 * is refused and the record kept. The check is made here, with the same
 * decoder the workers use; the write is one dead_requeue.lua step per
 * record, which removes the record by its bytes (so a record pushed in
 * front of it meanwhile does not matter) and decides what happens to the
 * task hash.
 *
 * The walks (requeue_all, purge with a queue) go from the oldest record
 * towards the newest, a page of RTQ_DEAD_STEP at a time, counting records
 * from the tail: new records arrive at the head and do not move that
 * count, and a removed record moves the rest by one, which the walk
 * follows. A walk visits at most the records there when it started.
 */
#include "client_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calls.h"
#include "envelope.h"

/* Decodes d's payload as a whole task envelope into e, or says why not
 * (detail set): RTQ_EDECODE, RTQ_ETOOBIG, RTQ_EVERSION, RTQ_EDEPTH. */
static int envelope_of(rtq_client *c, const rtq_dead_letter *d, rtq_envelope *e) {
  char why[256] = "";
  if (d->record_error != NULL) {
    rtq__client_err(c, "dead letter %llu: the record does not decode (%s); kept",
                    (unsigned long long)d->index, d->record_error);
    return RTQ_EDECODE;
  }
  if (d->payload_len < d->size) {
    rtq__client_err(c, "dead letter %llu: only the first %zu of its %llu bytes were kept; kept",
                    (unsigned long long)d->index, d->payload_len, (unsigned long long)d->size);
    return RTQ_ETOOBIG;
  }
  int rc = rtq_envelope_decode(d->payload, d->payload_len, c->max_payload, e, why, sizeof why);
  if (rc == 0) return 0;
  rtq__client_err(c, "dead letter %llu: its payload is not a task envelope (%s); kept",
                  (unsigned long long)d->index, why[0] ? why : rtq_strerror(rc));
  return rc == RTQ_ENOMEM || rc == RTQ_EVERSION || rc == RTQ_EDEPTH || rc == RTQ_ETOOBIG
             ? rc
             : RTQ_EDECODE;
}

/* The queue a letter belongs to: its envelope's when that decodes, else
 * the record's ("" when neither says). */
static const char *queue_of(const rtq_dead_letter *d, const rtq_envelope *e, int decoded) {
  if (decoded) return e->queue;
  return strcmp(d->queue, "unknown") == 0 ? "" : d->queue;
}

static int reply_is(const redisReply *r, const char *s) {
  return r->type == REDIS_REPLY_STRING && strcmp(r->str, s) == 0;
}

/* One dead_requeue.lua step for record rec (decoded as d, envelope e).
 * *removed is set when the record left P:dead (requeued, or taken by
 * someone else: RTQ_ENOTFOUND). */
static int run_requeue(rtq_client *c, const char *rec, size_t len, const rtq_dead_letter *d,
                       const rtq_envelope *e, int *removed) {
  rtq__dead_requeue q = {.record = rec,
                         .record_len = len,
                         .env = d->payload,
                         .env_len = d->payload_len,
                         .args = e->args,
                         .args_len = e->args_len,
                         .id = e->id,
                         .name = e->name,
                         .queue = e->queue,
                         .timeout_ms = e->timeout_ms,
                         .max_retries = e->max_retries,
                         .result_ttl_s = e->result_ttl_s};
  rtq_argv a;
  rtq_argv_init(&a);
  int rc = rtq__call_dead_requeue(&a, &c->keys, false, &q);
  redisReply *r = NULL;
  if (rc != 0)
    rtq__client_err(c, "dead letter %llu: %s", (unsigned long long)d->index, rtq_strerror(rc));
  else
    rc = rtq__client_script(c, &a, &r);
  rtq_argv_destroy(&a);
  if (rc != 0) {
    if (r != NULL) freeReplyObject(r);
    return rc;
  }
  const redisReply *e0 = r->type == REDIS_REPLY_ARRAY && r->elements > 0 ? r->element[0] : NULL;
  unsigned long long idx = (unsigned long long)d->index;
  if (e0 != NULL && reply_is(e0, "ok")) {
    *removed = 1;
  } else if (e0 != NULL && reply_is(e0, "gone")) {
    *removed = 1;
    rc = RTQ_ENOTFOUND;
    rtq__client_err(c, "dead letter %llu was removed by another process meanwhile", idx);
  } else if (e0 != NULL && reply_is(e0, "state") && r->elements == 2 &&
             r->element[1]->type == REDIS_REPLY_STRING) {
    rc = RTQ_ESTATE;
    rtq__client_err(c, "dead letter %llu: task %s is %s, so it was left alone; record kept", idx,
                    e->id, r->element[1]->str);
  } else if (e0 != NULL && reply_is(e0, "mismatch")) {
    rc = RTQ_ESTATE;
    rtq__client_err(c, "dead letter %llu: task %s exists with another name or queue; record kept",
                    idx, e->id);
  } else {
    rc = RTQ_EREDIS;
    rtq__client_err(c, "unexpected reply from dead_requeue.lua");
  }
  freeReplyObject(r);
  return rc;
}

/* Requeues the record rec found at index, when it is of queue (NULL: any).
 * *removed: as run_requeue; *other: it is of another queue, untouched.
 * id_out: NULL, or receives the task id. */
static int requeue_record(rtq_client *c, const char *rec, size_t len, uint64_t index,
                          const char *queue, int *removed, int *other, char **id_out) {
  rtq_dead_letter d = {0};
  rtq_envelope e;
  rtq_envelope_init(&e);
  *removed = *other = 0;
  int rc = rtq__dead_decode(&d, index, rec, len);
  int env_rc = rc == 0 ? envelope_of(c, &d, &e) : rc;
  if (rc == 0 && queue != NULL && strcmp(queue_of(&d, &e, env_rc == 0), queue) != 0) {
    *other = 1;
    rtq__client_err(c, "dead letter %llu is not of queue %s", (unsigned long long)index, queue);
    rc = RTQ_ENOTFOUND;
  } else {
    rc = env_rc;
  }
  if (rc == 0) rc = run_requeue(c, rec, len, &d, &e, removed);
  if (rc == 0 && id_out != NULL && (*id_out = strdup(e.id)) == NULL) rc = RTQ_ENOMEM;
  if (rc == RTQ_ENOMEM) rtq__client_err(c, "out of memory");
  rtq_envelope_destroy(&e);
  rtq__dead_letter_destroy(&d);
  return rc;
}

/* rtq_dead_requeue and rtq_dead_requeue_if: the record read at index is the
 * one the script removes (by its exact bytes), so checking its id here
 * leaves no window for a record pushed in front meanwhile. */
static int requeue_at(rtq_client *c, size_t index, const char *expect_id, const char *queue, char **id_out) {
  if (id_out != NULL) *id_out = NULL;
  if (c == NULL) return RTQ_EINVAL;
  rtq__client_clear_err(c);
  if (queue != NULL && rtq__check_name(c, "queue", queue) != 0) return RTQ_EINVAL;
  if (expect_id != NULL && rtq__check_name(c, "task id", expect_id) != 0) return RTQ_EINVAL;
  if (c->protocol == 2) return rtq__dead2_requeue(c, index, expect_id, queue, id_out);
  redisReply *r = NULL;
  int rc = rtq__dead_index(c, index, &r);
  if (rc == 0 && expect_id != NULL) rc = rtq__dead_is_task(c, index, r, expect_id);
  int removed, other;
  if (rc == 0) rc = requeue_record(c, r->str, r->len, index, queue, &removed, &other, id_out);
  if (r != NULL) freeReplyObject(r);
  return rc;
}

RTQ_EXTERN int rtq_dead_requeue(rtq_client *c, size_t index, const char *queue, char **id_out) {
  return requeue_at(c, index, NULL, queue, id_out);
}

RTQ_EXTERN int rtq_dead_requeue_if(rtq_client *c, size_t index, const char *expect_id, const char *queue,
                                   char **id_out) {
  return requeue_at(c, index, expect_id, queue, id_out);
}

/* What a walk does with one record: 1 when it left P:dead, 0 when it was
 * kept, or a negative RTQ_E* that ends the walk. */
typedef int (*visit_fn)(rtq_client *c, const char *rec, size_t len, uint64_t index,
                        const char *queue, rtq_dead_counts *n);

/* LLEN of P:dead into *n. */
static int dead_len(rtq_client *c, long long *n) {
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "LLEN");
  rtq__argv_add_key(&a, rtq_keys_dead(&c->keys));
  redisReply *r = NULL;
  int rc = rtq__client_command(c, &a, &r);
  rtq_argv_destroy(&a);
  if (rc == 0 && r->type != REDIS_REPLY_INTEGER) {
    rtq__client_err(c, "unexpected reply to LLEN of the dead-letter list");
    rc = RTQ_EREDIS;
  }
  *n = rc == 0 ? r->integer : 0;
  if (r != NULL) freeReplyObject(r);
  return rc;
}

/* Visits the records of P:dead oldest first, at most as many as there are
 * when it starts, with one LRANGE per RTQ_DEAD_STEP records. */
static int walk(rtq_client *c, const char *queue, visit_fn visit, rtq_dead_counts *n) {
  rtq_key k = rtq_keys_dead(&c->keys);
  rtq_argv a;
  redisReply *r = NULL;
  long long budget, tail = 0; /* tail: records kept behind us */
  int rc = dead_len(c, &budget);
  while (rc == 0 && budget > 0) {
    long long page = budget < RTQ_DEAD_STEP ? budget : RTQ_DEAD_STEP;
    rtq_argv_init(&a);
    rtq_argv_add_str(&a, "LRANGE");
    rtq__argv_add_key(&a, k);
    rtq_argv_add_i64(&a, -(tail + page));
    rtq_argv_add_i64(&a, -(tail + 1));
    rc = rtq__client_command(c, &a, &r);
    rtq_argv_destroy(&a);
    if (rc == 0 && r->type != REDIS_REPLY_ARRAY) {
      rtq__client_err(c, "unexpected reply to LRANGE of the dead-letter list");
      rc = RTQ_EREDIS;
    }
    size_t got = rc == 0 ? r->elements : 0;
    /* The reply runs newest to oldest; the oldest is visited first. Its
     * index counted from the head is only a label here (for messages). */
    for (size_t i = got; rc == 0 && i > 0; i--) {
      const redisReply *e = r->element[i - 1];
      budget--;
      if (e->type != REDIS_REPLY_STRING) {
        tail++;
        continue;
      }
      int v = visit(c, e->str, e->len, (uint64_t)(i - 1), queue, n);
      if (v < 0) rc = v;
      else if (v == 0) tail++;
    }
    if (r != NULL) freeReplyObject(r);
    r = NULL;
    if (got == 0) break;
  }
  return rc;
}

static int visit_requeue(rtq_client *c, const char *rec, size_t len, uint64_t index,
                         const char *queue, rtq_dead_counts *n) {
  int removed, other;
  int rc = requeue_record(c, rec, len, index, queue, &removed, &other, NULL);
  if (rc == 0) n->done++;
  else if (other) n->other++;
  else if (!removed) n->refused++;
  /* Only the connection and memory failures end the walk; a refusal is
   * counted and the record kept. */
  if (rc == RTQ_ECONN || rc == RTQ_EREDIS || rc == RTQ_ENOMEM || rc == RTQ_EOOM) return rc;
  return removed;
}

RTQ_EXTERN int rtq_dead_requeue_all(rtq_client *c, const char *queue, rtq_dead_counts *out) {
  rtq_dead_counts n = {0};
  if (out != NULL) *out = n;
  if (c == NULL) return RTQ_EINVAL;
  rtq__client_clear_err(c);
  if (queue != NULL && rtq__check_name(c, "queue", queue) != 0) return RTQ_EINVAL;
  int rc = c->protocol == 2 ? rtq__dead2_requeue_all(c, queue, &n) : walk(c, queue, visit_requeue, &n);
  if (rc == 0) rtq__client_clear_err(c); /* a refusal's detail is not an error */
  if (out != NULL) *out = n;
  return rc;
}

static int visit_purge(rtq_client *c, const char *rec, size_t len, uint64_t index,
                       const char *queue, rtq_dead_counts *n) {
  rtq_dead_letter d = {0};
  rtq_envelope e;
  rtq_envelope_init(&e);
  int rc = rtq__dead_decode(&d, index, rec, len), match = 0;
  if (rc == 0) {
    const char *q = strcmp(d.queue, "unknown") == 0 ? "" : d.queue;
    char why[8];
    if (q[0] == '\0' && d.record_error == NULL &&
        rtq_envelope_decode(d.payload, d.payload_len, 0, &e, why, sizeof why) == 0)
      q = e.queue;
    match = strcmp(q, queue) == 0;
  }
  rtq_envelope_destroy(&e);
  rtq__dead_letter_destroy(&d);
  if (rc != 0) {
    rtq__client_err(c, "out of memory");
    return rc;
  }
  if (!match) {
    n->other++;
    return 0;
  }
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "LREM");
  rtq__argv_add_key(&a, rtq_keys_dead(&c->keys));
  rtq_argv_add_str(&a, "1");
  rtq_argv_add(&a, rec, len);
  redisReply *r = NULL;
  rc = rtq__client_command(c, &a, &r);
  rtq_argv_destroy(&a);
  if (rc == 0 && r->type == REDIS_REPLY_INTEGER && r->integer > 0) n->done++;
  if (r != NULL) freeReplyObject(r);
  return rc != 0 ? rc : 1; /* gone already or removed: out of the list either way */
}

/* Every record there at the start, oldest first, RTQ_DEAD_STEP per
 * dead_purge.lua step. */
static int purge_all(rtq_client *c, rtq_dead_counts *n) {
  rtq_argv a;
  redisReply *r = NULL;
  long long budget;
  int rc = dead_len(c, &budget);
  while (rc == 0 && budget > 0) {
    long long most = budget < RTQ_DEAD_STEP ? budget : RTQ_DEAD_STEP;
    rtq_argv_init(&a);
    rc = rtq__call_dead_purge(&a, &c->keys, false, (uint64_t)most);
    if (rc == 0) rc = rtq__client_script(c, &a, &r);
    rtq_argv_destroy(&a);
    if (rc == 0 && (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
                    r->element[0]->type != REDIS_REPLY_INTEGER)) {
      rtq__client_err(c, "unexpected reply from dead_purge.lua");
      rc = RTQ_EREDIS;
    }
    long long dropped = rc == 0 ? r->element[0]->integer : 0;
    if (r != NULL) freeReplyObject(r);
    r = NULL;
    n->done += (uint64_t)dropped;
    budget -= most;
    if (dropped < most) break; /* the list is empty */
  }
  return rc;
}

RTQ_EXTERN int rtq_dead_purge(rtq_client *c, const char *queue, rtq_dead_counts *out) {
  rtq_dead_counts n = {0};
  if (out != NULL) *out = n;
  if (c == NULL) return RTQ_EINVAL;
  rtq__client_clear_err(c);
  if (queue != NULL && rtq__check_name(c, "queue", queue) != 0) return RTQ_EINVAL;
  int rc = c->protocol == 2 ? rtq__dead2_purge(c, queue, &n)
           : queue == NULL  ? purge_all(c, &n)
                            : walk(c, queue, visit_purge, &n);
  if (out != NULL) *out = n;
  return rc;
}
