/*
 * test_scripts2.c - the protocol v2 script set (scripts2.c) and its call
 * builders (calls2.c) against the scripts' own headers: every file of
 * common/lua2 is in the set with its body compiled in, and each builder
 * puts the key or value a header line names at the place it names (KEYS
 * count and order; the ARGV places that carry a channel, a prefix, a
 * worker id, an id or a queue). The files are read from the source tree
 * (RTQ_SOURCE_DIR) at run time, so a header changed without its builder
 * fails here, naming the script and the place.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "calls2.h"
#include "scripts2.h"

#ifndef RTQ_SOURCE_DIR
#error "RTQ_SOURCE_DIR must name the source tree"
#endif

#define QN "Q"
#define W "W"
#define I "I"

static rtq_keys2 K;

static char *read_file(const char *rel) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", RTQ_SOURCE_DIR, rel);
  FILE *f = fopen(path, "rb");
  if (f == NULL) fail_msg("cannot open %s", path);
  static char buf[65536];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  char *s = strdup(buf);
  assert_non_null(s);
  return s;
}

/* The header text after "-- <what>:" up to the next "-- Xxx:" line,
 * continuation lines joined, with the variadic tail ("then ...") cut. */
static void section(const char *src, const char *what, char *out, size_t cap) {
  char tag[32];
  snprintf(tag, sizeof tag, "\n-- %s:", what);
  const char *p = strstr(src, tag);
  if (p == NULL) fail_msg("no '%s' line", what);
  p += strlen(tag);
  size_t n = 0;
  for (;;) {
    const char *nl = strchr(p, '\n');
    size_t len = nl ? (size_t)(nl - p) : strlen(p);
    if (n + len + 2 > cap) fail_msg("%s section too long", what);
    memcpy(out + n, p, len);
    n += len;
    out[n++] = ' ';
    if (nl == NULL || strncmp(nl + 1, "--   ", 5) != 0) break;
    p = nl + 3;
  }
  out[n] = '\0';
  char *then = strstr(out, "then ");
  if (then != NULL) *then = '\0';
}

/* Splits "1 queue, 2 delayed" into item texts by number; returns the
 * highest number. items[i] is the text of item i + 1. */
static int items(char *s, char items_out[24][64]) {
  int max = 0;
  for (char *tok = strtok(s, ","); tok != NULL; tok = strtok(NULL, ",")) {
    while (*tok == ' ') tok++;
    int n = 0, used = 0;
    if (sscanf(tok, "%d %n", &n, &used) != 1 || n < 1 || n > 24) continue;
    char *t = tok + used;
    size_t len = strlen(t);
    while (len > 0 && t[len - 1] == ' ') t[--len] = '\0';
    snprintf(items_out[n - 1], 64, "%s", t);
    if (n > max) max = n;
  }
  return max;
}

/* What a KEYS item names, as keys2 builds it for queue Q, worker W, id I. */
static rtq_key2 key_named(const char *d) {
  if (strncmp(d, "queue", 5) == 0) return rtq_keys2_queue(&K, QN);
  if (strncmp(d, "processing", 10) == 0 || strncmp(d, "source", 6) == 0)
    return rtq_keys2_processing(&K, QN, W);
  if (strcmp(d, "delayed") == 0) return rtq_keys2_delayed(&K, QN);
  if (strcmp(d, "stats") == 0) return rtq_keys2_stats(&K, QN);
  if (strcmp(d, "done:completed") == 0 || strcmp(d, "done list") == 0 ||
      strcmp(d, "done:<status>") == 0)
    return rtq_keys2_done(&K, QN, RTQ_STATUS_COMPLETED);
  if (strcmp(d, "done:failed") == 0 || strcmp(d, "done:<current status>") == 0)
    return rtq_keys2_done(&K, QN, RTQ_STATUS_FAILED);
  if (strcmp(d, "done:cancelled") == 0) return rtq_keys2_done(&K, QN, RTQ_STATUS_CANCELLED);
  if (strcmp(d, "done:timeout") == 0) return rtq_keys2_done(&K, QN, RTQ_STATUS_TIMEOUT);
  if (strcmp(d, "run-time histogram") == 0) return rtq_keys2_runtime(&K, QN);
  if (strcmp(d, "task") == 0) return rtq_keys2_task(&K, QN, I);
  if (strcmp(d, "dead list") == 0) return rtq_keys2_dead(&K, QN);
  if (strcmp(d, "worker record") == 0) return rtq_keys2_worker(&K, W);
  if (strcmp(d, "workers") == 0) return rtq_keys2_workers(&K);
  if (strcmp(d, "lease") == 0) return rtq_keys2_lease(&K);
  if (strcmp(d, "limit") == 0) return rtq_keys2_limit(&K, QN);
  if (strcmp(d, "bucket") == 0) return rtq_keys2_bucket(&K, QN);
  if (strncmp(d, "slots", 5) == 0) return rtq_keys2_slots(&K, QN);
  fail_msg("no key known for the header's \"%s\"", d);
  return rtq_keys2_lease(&K);
}

/* What an ARGV item carries, or NULL for a value this test does not pin. */
static const char *arg_named(const char *d, rtq_key2 *tmp) {
  if (strcmp(d, "events channel") == 0) *tmp = rtq_keys2_chan_events(&K, QN);
  else if (strcmp(d, "task key prefix") == 0) *tmp = rtq_keys2_task_prefix(&K, QN);
  else if (strcmp(d, "side key prefix") == 0) *tmp = rtq_keys2_side_prefix(&K, QN);
  else if (strcmp(d, "waiter channel prefix") == 0) *tmp = rtq_keys2_chan_waiter_prefix(&K, QN);
  else if (strcmp(d, "cancel channel") == 0) *tmp = rtq_keys2_chan_cancel(&K);
  else if (strcmp(d, "worker id") == 0 || strcmp(d, "dead worker id") == 0) return W;
  else if (strcmp(d, "id") == 0 || strcmp(d, "owner id") == 0) return I;
  else if (strcmp(d, "queue name") == 0) return QN;
  else return NULL;
  return tmp->s;
}

/* One sample call per script, with Q, W and I wherever a name goes. */
static int build(rtq_script2_id id, rtq_argv *a) {
  static const rtq__keep2 keep = {86400, true, 100};
  rtq__create2_task ct = {.id = I, .name = "n"};
  rtq__finish2_task ft = {.id = I, .attempt = 1, .status = RTQ_STATUS_COMPLETED, .progress = -1};
  rtq__bytes2 entry = {I, 1};
  const char *ids[1] = {I};
  switch (id) {
    case RTQ_SCRIPT2_CREATE: return rtq__call2_create(a, &K, true, QN, &ct, 1);
    case RTQ_SCRIPT2_TAKE: return rtq__call2_take(a, &K, true, QN, W, 1, 1, 1);
    case RTQ_SCRIPT2_CLAIM: return rtq__call2_claim(a, &K, true, QN, W, 1, ids, 1);
    case RTQ_SCRIPT2_FINISH: return rtq__call2_finish(a, &K, true, QN, W, &keep, NULL, 0, &ft, 1);
    case RTQ_SCRIPT2_PROGRESS: return rtq__call2_progress(a, &K, true, QN, I, W, 1, 1, "m");
    case RTQ_SCRIPT2_WAIT: return rtq__call2_wait(a, &K, true, QN, I);
    case RTQ_SCRIPT2_CANCEL: return rtq__call2_cancel(a, &K, true, QN, I, &keep);
    case RTQ_SCRIPT2_RETRY: return rtq__call2_retry(a, &K, true, QN, I, RTQ_STATUS_FAILED);
    case RTQ_SCRIPT2_REQUEUE: return rtq__call2_requeue(a, &K, true, QN, I, W, 1);
    case RTQ_SCRIPT2_HANDBACK: return rtq__call2_handback(a, &K, true, QN, I, W, 1, 0, 1);
    case RTQ_SCRIPT2_DEADLETTER:
      return rtq__call2_deadletter(a, &K, true, QN, entry, "C", "r", W, false, &keep);
    case RTQ_SCRIPT2_RECOVER:
      return rtq__call2_recover(a, &K, true, QN, W, 1, 0, &keep, &entry, 1);
    case RTQ_SCRIPT2_PROMOTE: return rtq__call2_promote(a, &K, true, QN, 1);
    case RTQ_SCRIPT2_PRUNE: return rtq__call2_prune(a, &K, true, QN, RTQ_STATUS_COMPLETED, 1);
    case RTQ_SCRIPT2_PURGE: return rtq__call2_purge(a, &K, true, QN, 1, &keep);
    case RTQ_SCRIPT2_DELETE: return rtq__call2_delete(a, &K, true, QN, RTQ_STATUS_COMPLETED, 1, 0);
    case RTQ_SCRIPT2_HEARTBEAT: return rtq__call2_heartbeat(a, &K, true, W, 1000, NULL, 0);
    case RTQ_SCRIPT2_LEASE: return rtq__call2_lease(a, &K, true, I, 1000, true);
    case RTQ_SCRIPT2_DEAD_REQUEUE: return rtq__call2_dead_requeue(a, &K, true, QN, entry);
    case RTQ_SCRIPT2_BACKSTOP: return rtq__call2_backstop(a, &K, true, QN, W, 0, &keep, 0, 1);
    default: return RTQ_EINVAL;
  }
}

static void test_scripts2_every_file_is_in_the_set(void **state) {
  (void)state;
  char path[1024];
  snprintf(path, sizeof path, "%s/common/lua2", RTQ_SOURCE_DIR);
  DIR *d = opendir(path);
  assert_non_null(d);
  int files = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    size_t n = strlen(e->d_name);
    if (n < 5 || strcmp(e->d_name + n - 4, ".lua") != 0 || e->d_name[0] == '_') continue;
    files++;
    int found = 0;
    for (int i = 0; i < RTQ_SCRIPT2_COUNT; i++)
      if (strlen(rtq_script2_name(i)) == n - 4 && strncmp(rtq_script2_name(i), e->d_name, n - 4) == 0)
        found = 1;
    if (!found) fail_msg("common/lua2/%s has no entry in RTQ_SCRIPT2_LIST", e->d_name);
  }
  closedir(d);
  assert_int_equal(files, RTQ_SCRIPT2_COUNT);
  assert_string_equal(rtq_script2_name(RTQ_SCRIPT2_COUNT), "unknown");
  assert_string_equal(rtq_script2_body((rtq_script2_id)-1), "");
}

/* True when the script's "-- Prelude:" header lines name part `name`
 * (len bytes). */
static int lists_part(const char *src, const char *name, size_t len) {
  for (const char *l = src; l != NULL && *l != '\0';) {
    const char *nl = strchr(l, '\n');
    size_t ll = nl ? (size_t)(nl - l) : strlen(l);
    if (ll > 11 && strncmp(l, "-- Prelude:", 11) == 0) {
      for (const char *w = l + 11; w < l + ll;) {
        while (w < l + ll && *w == ' ') w++;
        const char *e = w;
        while (e < l + ll && *e != ' ') e++;
        if ((size_t)(e - w) == len && strncmp(w, name, len) == 0) return 1;
        w = e;
      }
    }
    l = nl ? nl + 1 : NULL;
  }
  return 0;
}

/* Each body is the prelude's head (before its first "--@ " part line),
 * the parts the file's "-- Prelude:" lines name, in the prelude's order,
 * then the file. */
static void test_scripts2_bodies_are_prelude_parts_and_file(void **state) {
  (void)state;
  char *prelude = read_file("common/lua2/_prelude.lua");
  const char *first = strstr(prelude, "\n--@ ");
  assert_non_null(first);
  size_t nhead = (size_t)(first - prelude) + 1;
  for (int i = 0; i < RTQ_SCRIPT2_COUNT; i++) {
    char rel[128];
    snprintf(rel, sizeof rel, "common/lua2/%s.lua", rtq_script2_name(i));
    char *src = read_file(rel);
    const char *body = rtq_script2_body(i);
    size_t nb = strlen(body), ns = strlen(src);
    assert_true(nb > nhead + ns);
    assert_memory_equal(body, prelude, nhead);
    assert_string_equal(body + nb - ns, src);
    size_t at = nhead, parts = 0;
    for (const char *p = prelude + nhead; *p != '\0';) {
      const char *next = strstr(p, "\n--@ ");
      size_t len = next ? (size_t)(next - p) + 1 : strlen(p);
      const char *name = p + 4;
      size_t nlen = strcspn(name, "\n");
      if (lists_part(src, name, nlen)) {
        if (at + len > nb - ns || memcmp(body + at, p, len) != 0)
          fail_msg("%s: part %.*s is not where the body should hold it", rel, (int)nlen, name);
        at += len;
        parts++;
      }
      p += len;
    }
    if (at != nb - ns) fail_msg("%s: the body holds more than its parts and the file", rel);
    assert_true(parts > 0);
    free(src);
  }
  free(prelude);
}

static void test_scripts2_builders_follow_the_headers(void **state) {
  (void)state;
  assert_int_equal(rtq_keys2_init(&K, "rtq"), 0);
  rtq_argv a;
  rtq_argv_init(&a);
  int bad = 0;
  for (int s = 0; s < RTQ_SCRIPT2_COUNT; s++) {
    const char *name = rtq_script2_name(s);
    char rel[128], text[2048], it[24][64];
    snprintf(rel, sizeof rel, "common/lua2/%s.lua", name);
    char *src = read_file(rel);
    int variadic = 0;
    assert_int_equal(build(s, &a), 0);
    int numkeys = atoi(a.argv[2]);

    section(src, "KEYS", text, sizeof text);
    memset(it, 0, sizeof it);
    int nk = items(text, it);
    if (nk != numkeys) {
      print_error("%s: the header names %d KEYS, the builder sends %d\n", name, nk, numkeys);
      bad++;
    }
    for (int i = 0; i < nk && i < numkeys; i++) {
      rtq_key2 want = key_named(it[i]);
      if (strcmp(a.argv[3 + i], want.s) != 0) {
        print_error("%s: KEYS[%d] is \"%s\" (%s) but the builder sends %s\n", name, i + 1, it[i],
                    want.s, a.argv[3 + i]);
        bad++;
      }
    }

    section(src, "ARGV", text, sizeof text);
    variadic = strstr(strstr(src, "-- ARGV:"), "then ") != NULL &&
               strstr(strstr(src, "-- ARGV:"), "then ") < strstr(src, "-- Reply:");
    memset(it, 0, sizeof it);
    int na = items(text, it);
    int sent = a.argc - 3 - numkeys;
    if (variadic ? sent < na : sent != na) {
      print_error("%s: the header names %d ARGV%s, the builder sends %d\n", name, na,
                  variadic ? " before its tail" : "", sent);
      bad++;
    }
    for (int i = 0; i < na && i < sent; i++) {
      rtq_key2 tmp;
      const char *want = arg_named(it[i], &tmp);
      if (want != NULL && strcmp(a.argv[3 + numkeys + i], want) != 0) {
        print_error("%s: ARGV[%d] is \"%s\" (%s) but the builder sends %s\n", name, i + 1, it[i],
                    want, a.argv[3 + numkeys + i]);
        bad++;
      }
    }
    free(src);
  }
  rtq_argv_destroy(&a);
  assert_int_equal(bad, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_scripts2_every_file_is_in_the_set),
      cmocka_unit_test(test_scripts2_bodies_are_prelude_parts_and_file),
      cmocka_unit_test(test_scripts2_builders_follow_the_headers),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
