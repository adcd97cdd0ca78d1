/*
 * scripts.c - the table of Lua steps, their SHA1s, and EVALSHA with the
 * NOSCRIPT fallback.
 *
 * The bodies are C strings generated at build time from common/lua/<name>.lua
 * (cmake/embed_lua.cmake). The SHA table is process-wide because a SHA is a
 * property of the body, which is a compile-time constant: every connection
 * to every server computes the same value, so caching it once is safe.
 */
#include "scripts.h"

#include <pthread.h>
#include <string.h>
#include <strings.h>

#include "rtq/common.h"

#define RTQ__SCRIPT_EXTERN(up, low) extern const char rtq__lua_##low[];
RTQ_SCRIPT_LIST(RTQ__SCRIPT_EXTERN)
#undef RTQ__SCRIPT_EXTERN

typedef struct script {
  const char *name;
  const char *body;
} script;

static const script table[RTQ_SCRIPT_COUNT] = {
#define RTQ__SCRIPT_ROW(up, low) {#low, rtq__lua_##low},
    RTQ_SCRIPT_LIST(RTQ__SCRIPT_ROW)
#undef RTQ__SCRIPT_ROW
};

/* Write-once: an entry goes from empty to its final value under the mutex
 * and never changes again, so a pointer handed out stays valid. */
static pthread_mutex_t sha_mu = PTHREAD_MUTEX_INITIALIZER;
static char sha_hex[RTQ_SCRIPT_COUNT][41];

static int valid_id(rtq_script_id id) { return (int)id >= 0 && id < RTQ_SCRIPT_COUNT; }

const char *rtq_script_name(rtq_script_id id) { return valid_id(id) ? table[id].name : "unknown"; }
const char *rtq_script_body(rtq_script_id id) { return valid_id(id) ? table[id].body : ""; }

const char *rtq_script_sha(rtq_script_id id) {
  if (!valid_id(id)) return NULL;
  pthread_mutex_lock(&sha_mu);
  const char *s = sha_hex[id][0] != '\0' ? sha_hex[id] : NULL;
  pthread_mutex_unlock(&sha_mu);
  return s;
}

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

int rtq_scripts_load(rtq_conn *c) {
  rtq_argv a;
  rtq_argv_init(&a);
  int rc = 0;
  for (int i = 0; i < RTQ_SCRIPT_COUNT && rc == 0; i++)
    rc = rtq__script_load_into(c, &a, table[i].body, sha_hex[i], &sha_mu);
  rtq_argv_destroy(&a);
  return rc;
}

int rtq_script_argv(rtq_argv *a, rtq_script_id id, int numkeys, bool use_eval) {
  if (!valid_id(id) || numkeys < 0) return RTQ_EINVAL;
  rtq_argv_reset(a);
  const char *sha = use_eval ? NULL : rtq_script_sha(id);
  if (sha != NULL) {
    rtq_argv_add_str(a, "EVALSHA");
    rtq_argv_add_str(a, sha);
  } else {
    rtq_argv_add_str(a, "EVAL");
    rtq_argv_add_str(a, table[id].body);
  }
  return rtq_argv_add_i64(a, numkeys);
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

/* The body of the script whose SHA is argv[1] of an EVALSHA, or NULL. */
static const char *body_of(const char *sha) {
  for (int i = 0; i < RTQ_SCRIPT_COUNT; i++) {
    const char *known = rtq_script_sha((rtq_script_id)i);
    if (known != NULL && memcmp(known, sha, 40) == 0) return table[i].body;
  }
  return NULL;
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

int rtq_script_run(rtq_conn *c, rtq_argv *a, redisReply **reply) {
  return rtq__script_run_with(c, a, reply, body_of);
}
