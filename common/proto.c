/*
 * proto.c - the namespace's protocol mark (proto.h).
 */
#include "proto.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "keys2.h"
#include "rtq/common.h"

static void errf(char *errbuf, size_t errcap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void errf(char *errbuf, size_t errcap, const char *fmt, ...) {
  if (errbuf == NULL || errcap == 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(errbuf, errcap, fmt, ap);
  va_end(ap);
}

/* One command of words; *reply (may be NULL) is the caller's. */
static int run(rtq_conn *c, redisReply **reply, char *errbuf, size_t errcap, int n, const char *const *w) {
  rtq_argv a;
  rtq_argv_init(&a);
  for (int i = 0; i < n; i++) rtq_argv_add_str(&a, w[i]);
  redisReply *r = NULL;
  int rc = rtq_conn_command(c, &a, &r);
  rtq_argv_destroy(&a);
  const char *why = rtq_conn_errstr(c);
  /* A plain URL to one node of a cluster cannot follow MOVED: say what
   * would. */
  if (rc != 0 && strncmp(why, "MOVED ", 6) == 0)
    errf(errbuf, errcap, "checking the protocol version: %s: redis is a cluster node and the namespace's slot is "
         "elsewhere; use a redis+cluster:// URL (docs/OPERATIONS.md section 2.5)", why);
  else if (rc != 0)
    errf(errbuf, errcap, "checking the protocol version: %s", why);
  if (reply != NULL && rc == 0) *reply = r;
  else if (r != NULL) freeReplyObject(r);
  return rc;
}

/* Protocol 1's counters key, in both of its spellings: "ns:stats", and
 * "{ns}:stats" for a cluster namespace. */
static int has_v1_data(rtq_conn *c, const char *ns, char *errbuf, size_t errcap, int *found) {
  *found = 0;
  for (int cluster = 0; cluster <= 1 && *found == 0; cluster++) {
    char key[96];
    snprintf(key, sizeof key, cluster ? "{%s}:stats" : "%s:stats", ns);
    const char *w[] = {"EXISTS", key};
    redisReply *r = NULL;
    int rc = run(c, &r, errbuf, errcap, 2, w);
    if (rc != 0) return rc;
    *found = r->type == REDIS_REPLY_INTEGER && r->integer > 0;
    freeReplyObject(r);
  }
  return 0;
}

/* GET {ns}:version into mark ("" when absent); *marked says it exists. */
static int read_mark(rtq_conn *c, const rtq_key2 *ver, char mark[16], bool *marked, char *errbuf, size_t errcap) {
  const char *get[] = {"GET", ver->s};
  redisReply *r = NULL;
  int rc = run(c, &r, errbuf, errcap, 2, get);
  if (rc != 0) return rc;
  mark[0] = '\0';
  if (r->type == REDIS_REPLY_STRING) snprintf(mark, 16, "%.*s", (int)(r->len < 15 ? r->len : 15), r->str);
  /* Whoever may write the key chooses these bytes, and the messages below
   * quote them: nothing a terminal would act on. */
  for (char *p = mark; *p != '\0'; p++)
    if (!isprint((unsigned char)*p)) *p = '?';
  *marked = r->type != REDIS_REPLY_NIL;
  freeReplyObject(r);
  return 0;
}

int rtq_proto_check(rtq_conn *c, const char *ns, char *errbuf, size_t errcap) {
  rtq_keys2 k2;
  if (errbuf != NULL && errcap > 0) errbuf[0] = '\0';
  if (rtq_keys2_init(&k2, ns) != 0) {
    errf(errbuf, errcap, "invalid namespace");
    return RTQ_EINVAL;
  }
  rtq_key2 ver = rtq_keys2_version(&k2);
  char mark[16];
  bool marked;
  int rc = read_mark(c, &ver, mark, &marked, errbuf, errcap);
  if (rc != 0) return rc;
  if (!marked) {
    int v1 = 0;
    rc = has_v1_data(c, ns, errbuf, errcap, &v1);
    if (rc != 0) return rc;
    if (v1) {
      errf(errbuf, errcap, "namespace \"%s\" holds protocol-1 data, which this rtq no longer reads: drain it with "
           "the old fleet first, or use another namespace (docs/OPERATIONS.md, \"Upgrading the protocol\")", ns);
      return RTQ_EPROTOCOL;
    }
    const char *set[] = {"SET", ver.s, "2", "NX"};
    rc = run(c, NULL, errbuf, errcap, 4, set);
    /* Another process may have written a mark between GET and SET: read
     * what is there now. */
    if (rc == 0) rc = read_mark(c, &ver, mark, &marked, errbuf, errcap);
    if (rc != 0) return rc;
  }
  if (strcmp(mark, "2") == 0) return 0;
  errf(errbuf, errcap, "namespace \"%s\": %s holds \"%s\", not a protocol this process speaks (2)", ns, ver.s,
       mark);
  return RTQ_EPROTOCOL;
}
