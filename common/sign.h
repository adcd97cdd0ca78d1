/*
 * sign.h - HMAC-SHA256 signatures of tasks and outcomes under protocol 2
 * (docs/PROTOCOL.md section 9, docs/SECURITY.md).
 *
 * A key file holds one key a line, `kid:hex`: a key id of 1..32 of
 * A-Z a-z 0-9 . _ - and a secret of 32..128 bytes written as hex. Blank
 * lines and lines starting with # are skipped. The first key signs; every
 * key verifies, so a new key is added at the top and the old one stays
 * listed until nothing signed with it is left. A file that group or others
 * may read, a short or malformed key, or a kid given twice is refused;
 * errors name the file and the line, never the secret.
 *
 * Roles. Producers and workers hold different key files: a producer's
 * key signs tasks (`sg`), a worker's key signs outcomes (`rs`), and each
 * side verifies with the other's file. The signed bytes also start with
 * the role ("rtq2" for a task, "rtq2r" for an outcome), so a signature
 * made for one can never pass as the other, even under one secret.
 */
#ifndef RTQ_SIGN_H
#define RTQ_SIGN_H

#include <stddef.h>

#define RTQ_SIGN_MAX_KEYS 16
#define RTQ_SIGN_KID_MAX 32
#define RTQ_SIGN_SECRET_MIN 32
#define RTQ_SIGN_SECRET_MAX 128
/* "kid:hex" and its NUL. */
#define RTQ_SIGN_SIZE (RTQ_SIGN_KID_MAX + 1 + 64 + 1)

typedef struct rtq_sign_keys rtq_sign_keys;

/* Reads a key file. Returns 0 and *out (free with rtq_sign_keys_free), or
 * RTQ_EINVAL / RTQ_EIO / RTQ_ENOMEM with the reason in err. */
int rtq_sign_keys_load(const char *path, rtq_sign_keys **out, char *err, size_t cap);
/* Wipes the secrets and frees k. NULL does nothing. */
void rtq_sign_keys_free(rtq_sign_keys *k);
/* The key id that signs (the file's first). */
const char *rtq_sign_kid(const rtq_sign_keys *k);

/* HMAC-SHA256 of msg under key. 0 or RTQ_ENOMEM. */
int rtq_hmac_sha256(const void *key, size_t key_len, const void *msg, size_t len,
                     unsigned char out[32]);

/* The values a task signature covers: decimal texts as stored in the task
 * hash, "" (or NULL) for absent. */
typedef struct rtq_sign_task {
  const char *id, *queue, *name;
  const void *args;
  size_t args_len;
  const char *to, *mr, *rt, *bo;
} rtq_sign_task;

/* A byte string of an outcome; NULL or len 0 is absent. */
typedef struct rtq_sign_bytes {
  const void *p;
  size_t len;
} rtq_sign_bytes;

/* The values an outcome signature covers, as the task hash holds them
 * once the outcome is written: attempt and status as text; for completed
 * the result r, for the other statuses the error fields; and what ties
 * the outcome to one run of one task, so that it cannot be copied onto
 * another: the task's signature `sg` ("" when unsigned) and the run's
 * start `b` (Redis ms, as decimal text). */
typedef struct rtq_sign_outcome {
  const char *id, *queue, *attempt, *status;
  rtq_sign_bytes r, ec, em, ed, et;
  const char *task_sig, *started;
} rtq_sign_outcome;

/* "kid:hex" into out (RTQ_SIGN_SIZE bytes). Returns 0 or RTQ_EINVAL. */
int rtq_sign_task_sig(const rtq_sign_keys *k, const rtq_sign_task *t, char *out);
int rtq_sign_outcome_sig(const rtq_sign_keys *k, const rtq_sign_outcome *o, char *out);
/* An end written by a step that holds no worker key (a producer's cancel
 * of a pending task, the broker's timeouts and recoveries), signed with a
 * producer key: the same values as an outcome, under the role "rtq2e",
 * so that it never passes as a worker's outcome. Only failed, cancelled
 * and timeout ends: a completed one is RTQ_EINVAL. */
int rtq_sign_end_sig(const rtq_sign_keys *k, const rtq_sign_outcome *o, char *out);
/* 0 when sig (NULL or "" for none) is "kid:hex" of a listed kid and
 * matches; else RTQ_EUNVERIFIED. Compares in constant time. */
int rtq_sign_task_check(const rtq_sign_keys *k, const rtq_sign_task *t, const char *sig);
int rtq_sign_outcome_check(const rtq_sign_keys *k, const rtq_sign_outcome *o, const char *sig);
int rtq_sign_end_check(const rtq_sign_keys *k, const rtq_sign_outcome *o, const char *sig);

/* Signs, with a producer key, one of the fixed ends a step without a
 * worker key writes: status with error code ec and message em, of task id
 * of queue whose hash held attempt a, claim time b and task signature sg
 * ("" or NULL when absent). out: RTQ_SIGN_SIZE bytes. */
int rtq_sign_fixed_end(const rtq_sign_keys *k, const char *id, const char *queue, const char *a,
                       const char *b, const char *sg, const char *status, const char *ec, const char *em,
                       char *out);

#endif
