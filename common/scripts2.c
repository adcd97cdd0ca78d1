/*
 * scripts2.c - the table of protocol v2 scripts and their SHA1s. The
 * bodies are generated from common/lua2 at build time (rtq__lua2_<name>,
 * cmake/embed_lua.cmake); the NOSCRIPT fallback is scripts.c's.
 */
#include "scripts2.h"

#include <pthread.h>
#include <string.h>

#include "rtq/common.h"
#include "scripts.h"

#define RTQ__SCRIPT2_EXTERN(up, low) extern const char rtq__lua2_##low[];
RTQ_SCRIPT2_LIST(RTQ__SCRIPT2_EXTERN)
#undef RTQ__SCRIPT2_EXTERN

static const char *const names[RTQ_SCRIPT2_COUNT] = {
#define RTQ__SCRIPT2_NAME(up, low) #low,
    RTQ_SCRIPT2_LIST(RTQ__SCRIPT2_NAME)
#undef RTQ__SCRIPT2_NAME
};
static const char *const bodies[RTQ_SCRIPT2_COUNT] = {
#define RTQ__SCRIPT2_BODY(up, low) rtq__lua2_##low,
    RTQ_SCRIPT2_LIST(RTQ__SCRIPT2_BODY)
#undef RTQ__SCRIPT2_BODY
};

/* Write-once, as scripts.c's table: a SHA is a property of the body. */
static pthread_mutex_t sha_mu = PTHREAD_MUTEX_INITIALIZER;
static char sha_hex[RTQ_SCRIPT2_COUNT][41];

static int valid_id(rtq_script2_id id) { return (int)id >= 0 && id < RTQ_SCRIPT2_COUNT; }

const char *rtq_script2_name(rtq_script2_id id) { return valid_id(id) ? names[id] : "unknown"; }
const char *rtq_script2_body(rtq_script2_id id) { return valid_id(id) ? bodies[id] : ""; }

const char *rtq_script2_sha(rtq_script2_id id) {
  if (!valid_id(id)) return NULL;
  pthread_mutex_lock(&sha_mu);
  const char *s = sha_hex[id][0] != '\0' ? sha_hex[id] : NULL;
  pthread_mutex_unlock(&sha_mu);
  return s;
}

int rtq_scripts2_load(rtq_conn *c) {
  rtq_argv a;
  rtq_argv_init(&a);
  int rc = 0;
  for (int i = 0; i < RTQ_SCRIPT2_COUNT && rc == 0; i++)
    rc = rtq__script_load_into(c, &a, bodies[i], sha_hex[i], &sha_mu);
  rtq_argv_destroy(&a);
  return rc;
}

int rtq_script2_argv(rtq_argv *a, rtq_script2_id id, int numkeys, bool use_eval) {
  if (!valid_id(id) || numkeys < 0) return RTQ_EINVAL;
  rtq_argv_reset(a);
  const char *sha = use_eval ? NULL : rtq_script2_sha(id);
  rtq_argv_add_str(a, sha != NULL ? "EVALSHA" : "EVAL");
  rtq_argv_add_str(a, sha != NULL ? sha : bodies[id]);
  return rtq_argv_add_i64(a, numkeys);
}

static const char *body_of(const char *sha) {
  for (int i = 0; i < RTQ_SCRIPT2_COUNT; i++) {
    const char *known = rtq_script2_sha((rtq_script2_id)i);
    if (known != NULL && memcmp(known, sha, 40) == 0) return bodies[i];
  }
  return NULL;
}

int rtq_script2_run(rtq_conn *c, rtq_argv *a, redisReply **reply) {
  return rtq__script_run_with(c, a, reply, body_of);
}
