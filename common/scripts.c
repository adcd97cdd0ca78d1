/*
 * scripts.c - what running a Lua script takes, whatever the script: SCRIPT
 * LOAD into a write-once SHA table, and EVALSHA with the NOSCRIPT
 * fallback. The scripts themselves and their table are scripts2.c's.
 */
#include "scripts.h"

#include <pthread.h>
#include <string.h>
#include <strings.h>

#include "rtq/common.h"

bool rtq__reply_is_sha(const redisReply *r) {
  if (r->type != REDIS_REPLY_STRING || r->len != 40) return false;
  for (size_t i = 0; i < 40; i++) {
    char ch = r->str[i];
    if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) return false;
  }
  return true;
}

int rtq__script_load_into(rtq_conn *c, rtq_argv *a, const char *body, char sha[41],
                          pthread_mutex_t *mu) {
  rtq_argv_reset(a);
  rtq_argv_add_str(a, "SCRIPT");
  rtq_argv_add_str(a, "LOAD");
  rtq_argv_add_str(a, body);
  if (a->oom) return RTQ_ENOMEM;
  redisReply *r = NULL;
  int rc = rtq_conn_command(c, a, &r);
  if (rc == 0 && !rtq__reply_is_sha(r)) rc = RTQ_EREDIS;
  if (rc == 0) {
    pthread_mutex_lock(mu);
    if (sha[0] == '\0') {
      memcpy(sha, r->str, 40);
      sha[40] = '\0';
    }
    pthread_mutex_unlock(mu);
  }
  if (r != NULL) freeReplyObject(r);
  return rc;
}

bool rtq_reply_is_noscript(const redisReply *r) {
  return r != NULL && r->type == REDIS_REPLY_ERROR && r->len >= 8 && strncmp(r->str, "NOSCRIPT", 8) == 0;
}

bool rtq_script_fallback(bool *use_eval, const redisReply *r, bool *was) {
  if (was != NULL) *was = *use_eval;
  if (!rtq_reply_is_noscript(r)) return false;
  *use_eval = true;
  return true;
}

/*
 * Runs an EVALSHA/EVAL argv. On NOSCRIPT (a restarted server, SCRIPT FLUSH,
 * or a failover to a replica that never saw SCRIPT LOAD):
 *   1. argv[0..1] become EVAL <body> and the command is sent again; EVAL
 *      also puts the script back in the server's cache;
 *   2. argv stays in the EVAL form, which works against any server.
 * An EVALSHA whose SHA is not one of ours cannot be rewritten; its NOSCRIPT
 * reply is returned as RTQ_EREDIS. If the rewrite runs out of memory, argv
 * is marked oom (half rewritten, it must not be sent) and RTQ_ENOMEM returned.
 */
int rtq__script_run_with(rtq_conn *c, rtq_argv *a, redisReply **reply,
                         const char *(*lookup)(const char *sha)) {
  redisReply *r = NULL;
  if (reply != NULL) *reply = NULL;
  int rc = rtq_conn_command(c, a, &r);
  if (rc != RTQ_EREDIS || !rtq_reply_is_noscript(r)) goto done;
  if (a->argvlen[0] != 7 || strncasecmp(a->argv[0], "EVALSHA", 7) != 0) goto done;
  const char *body = a->argc >= 2 && a->argvlen[1] == 40 ? lookup(a->argv[1]) : NULL;
  if (body == NULL) goto done;

  freeReplyObject(r);
  r = NULL;
  if (rtq_argv_set(a, 0, "EVAL", 4) != 0 || rtq_argv_set(a, 1, body, strlen(body)) != 0) {
    a->oom = 1;
    return RTQ_ENOMEM;
  }
  rc = rtq_conn_command(c, a, &r);
done:
  if (reply != NULL)
    *reply = r;
  else if (r != NULL)
    freeReplyObject(r);
  return rc;
}
