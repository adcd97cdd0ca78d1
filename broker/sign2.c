/*
 * sign2.c - the broker's signatures of the ends it writes under protocol 2
 * (docs/SECURITY.md section 5): with --signing-key-file (the producers'
 * key file, which also signs the tasks schedules create), each task the
 * timeout backstop or a recovery may end gets, in the same call, the
 * broker's signature of each end the script may write for it. The texts
 * are the scripts' own (backstop.lua, recover.lua), and the signature is
 * made for the attempt, claim time and task signature its hash holds when
 * read here; the script stores it only when the hash still holds them.
 */
#include "internal.h"
#include "internal2.h"

#include <string.h>

#include "calls2.h"
#include "sign.h"

/* The ends the broker's scripts write: status, code, message. */
static const struct fixed_end {
  const char *status, *code, *message;
} backstop_end = {"timeout", "TIMEOUT", "exceeded its timeout; its worker did not stop it"},
  recover_ends[] = {{"cancelled", "CANCELLED", "cancelled while its worker died"},
                    {"timeout", "TIMEOUT", "exceeded its timeout while its worker died"},
                    {"failed", "WORKER_LOST", "its worker died on the last delivery"}};

/* A string reply as a C string, NULL otherwise. */
static const char *str_of(const redisReply *r) {
  return r != NULL && r->type == REDIS_REPLY_STRING && strlen(r->str) == r->len ? r->str : NULL;
}

/* Appends to a (a backstop or recover call just built) the records of the
 * ends of each task of ids (n of them) running under wid: one HMGET each,
 * pipelined. Ids that are not task ids, and tasks not running under wid,
 * get none. 0, RTQ_ENOMEM, or the connection's error. */
static int sign_ends(rtq_broker *b, rtq_argv *a, const char *queue, const char *wid, const redisReply *const *ids,
                     size_t n, const struct fixed_end *ends, int nends) {
  if (b->sign_keys == NULL || n == 0) return 0;
  /* A batch of its own: the callers' batches hold replies still in use. */
  rtq__batch own, *bt = &own;
  rtq__batch_init(bt);
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    rtq_argv *h = rtq__batch_add(bt);
    if (h == NULL) {
      rc = RTQ_ENOMEM;
      break;
    }
    const char *id = str_of(ids[i]);
    rtq_argv_add_str(h, "HMGET");
    rtq__argv_add_key2(h, rtq_keys2_task(&b->keys2, queue, id != NULL && rtq_validate_name(id) == 0 ? id : "-"));
    const char *f[] = {"s", "w", "a", "b", "sg"};
    for (int k = 0; k < 5; k++) rtq_argv_add_str(h, f[k]);
  }
  if (rc == 0) rc = rtq__batch_run(b->conn, bt);
  for (size_t i = 0; rc == 0 && i < n; i++) {
    const char *id = str_of(ids[i]);
    const redisReply *r = bt->replies[i];
    if (id == NULL || rtq_validate_name(id) != 0 || bt->rcs[i] != 0 || r == NULL || r->type != REDIS_REPLY_ARRAY ||
        r->elements != 5)
      continue;
    const char *s = str_of(r->element[0]), *w = str_of(r->element[1]);
    if (s == NULL || strcmp(s, "running") != 0 || w == NULL || strcmp(w, wid) != 0) continue;
    const char *at = str_of(r->element[2]), *claimed = str_of(r->element[3]), *sg = str_of(r->element[4]);
    for (int e = 0; rc == 0 && e < nends; e++) {
      char sig[RTQ_SIGN_SIZE];
      rc = rtq_sign_fixed_end(b->sign_keys, id, queue, at, claimed, sg, ends[e].status, ends[e].code,
                              ends[e].message, sig);
      if (rc == 0) rc = rtq__call2_end_sig(a, id, at, claimed, ends[e].status, sig);
    }
  }
  rtq__batch_destroy(bt);
  return rc;
}

int rtq__broker2_sign_backstop(rtq_broker *b, rtq_argv *a, const char *queue, const char *wid, int64_t offset,
                               int n) {
  if (b->sign_keys == NULL) return 0;
  rtq_argv l;
  rtq_argv_init(&l);
  rtq_argv_add_str(&l, "LRANGE");
  rtq__argv_add_key2(&l, rtq_keys2_processing(&b->keys2, queue, wid));
  rtq_argv_add_i64(&l, offset);
  rtq_argv_add_i64(&l, offset + n - 1);
  redisReply *r = NULL;
  int rc = rtq_conn_command(b->conn, &l, &r);
  rtq_argv_destroy(&l);
  if (rc == 0 && r->type == REDIS_REPLY_ARRAY)
    rc = sign_ends(b, a, queue, wid, (const redisReply *const *)r->element, r->elements, &backstop_end, 1);
  if (r != NULL) freeReplyObject(r);
  /* A list of the wrong type: the backstop call reports it. */
  return rc == RTQ_EREDIS ? 0 : rc;
}

int rtq__broker2_sign_recover(rtq_broker *b, rtq_argv *a, const char *queue, const char *wid,
                              const redisReply *const *entries, size_t n) {
  return sign_ends(b, a, queue, wid, entries, n, recover_ends, 3);
}
