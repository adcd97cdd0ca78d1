/* keys2.c - the only place that formats key and channel names, and the
 * task ids (layout drawn in keys2.h). */
#include "keys2.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "crc16.h"
#include "ids.h"

/* ^[A-Za-z0-9._-]{1,64}$ */
static int ns_valid(const char *ns) {
  size_t n = 0;
  if (ns == NULL) return 0;
  for (const char *p = ns; *p; p++, n++) {
    char c = *p;
    int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '.' || c == '_' || c == '-';
    if (!ok || n >= RTQ_NS_MAX) return 0;
  }
  return n > 0;
}

int rtq_keys2_init(rtq_keys2 *k, const char *ns) {
  if (k == NULL || !ns_valid(ns)) return RTQ_EINVAL;
  k->ns_len = strlen(ns);
  memcpy(k->ns, ns, k->ns_len + 1);
  return 0;
}

static rtq_key2 none(void) {
  rtq_key2 key;
  key.len = 0;
  key.s[0] = '\0';
  return key;
}

/*
 * Builds "{ns}:<kind>[<name>]" (queue NULL) or "{ns:Q}:<kind>[<name>]".
 * kind carries its own separators ("t:", "done:"), so a prefix is a key
 * with no name. Returns a len-0 key when:
 *   1. queue is given and is not a valid name;
 *   2. want_name and name is NULL or not a valid name;
 *   3. the result would not fit (it always does with valid names).
 */
static rtq_key2 build(const rtq_keys2 *k, const char *queue, const char *kind, const char *name,
                      int want_name) {
  if (queue != NULL && rtq_validate_name(queue) != 0) return none();
  if (want_name && rtq_validate_name(name) != 0) return none();
  rtq_key2 key;
  int n = snprintf(key.s, sizeof key.s, "{%s%s%s}:%s%s", k->ns, queue ? ":" : "",
                   queue ? queue : "", kind, want_name ? name : "");
  if (n < 0 || (size_t)n >= sizeof key.s) return none();
  key.len = (size_t)n;
  return key;
}

/* A queue key; a NULL queue is a bad name, never a namespace key. */
static rtq_key2 qkey(const rtq_keys2 *k, const char *queue, const char *kind, const char *name,
                     int want_name) {
  if (queue == NULL) return none();
  return build(k, queue, kind, name, want_name);
}

rtq_key2 rtq_keys2_version(const rtq_keys2 *k) { return build(k, NULL, "version", NULL, 0); }
rtq_key2 rtq_keys2_queues(const rtq_keys2 *k) { return build(k, NULL, "queues", NULL, 0); }
rtq_key2 rtq_keys2_workers(const rtq_keys2 *k) { return build(k, NULL, "workers", NULL, 0); }
rtq_key2 rtq_keys2_worker(const rtq_keys2 *k, const char *wid) {
  return build(k, NULL, "worker:", wid, 1);
}
rtq_key2 rtq_keys2_lease(const rtq_keys2 *k) { return build(k, NULL, "lease", NULL, 0); }
rtq_key2 rtq_keys2_throughput(const rtq_keys2 *k, uint64_t minute) {
  char m[24];
  snprintf(m, sizeof m, "%llu", (unsigned long long)minute);
  return build(k, NULL, "throughput:", m, 1);
}
rtq_key2 rtq_keys2_paused(const rtq_keys2 *k) { return build(k, NULL, "paused", NULL, 0); }
rtq_key2 rtq_keys2_broker(const rtq_keys2 *k) { return build(k, NULL, "broker", NULL, 0); }
rtq_key2 rtq_keys2_chan_cancel(const rtq_keys2 *k) { return build(k, NULL, "cancel", NULL, 0); }
rtq_key2 rtq_keys2_schedules(const rtq_keys2 *k) { return build(k, NULL, "schedules", NULL, 0); }
rtq_key2 rtq_keys2_schedules_due(const rtq_keys2 *k) {
  return build(k, NULL, "schedules:due", NULL, 0);
}
rtq_key2 rtq_keys2_schedules_last(const rtq_keys2 *k) {
  return build(k, NULL, "schedules:last", NULL, 0);
}

rtq_key2 rtq_keys2_queue(const rtq_keys2 *k, const char *q) { return qkey(k, q, "q", NULL, 0); }
rtq_key2 rtq_keys2_processing(const rtq_keys2 *k, const char *q, const char *wid) {
  return qkey(k, q, "p:", wid, 1);
}
rtq_key2 rtq_keys2_delayed(const rtq_keys2 *k, const char *q) {
  return qkey(k, q, "delayed", NULL, 0);
}
rtq_key2 rtq_keys2_done(const rtq_keys2 *k, const char *q, rtq_status s) {
  if ((int)s < 0 || (int)s >= RTQ_STATUS_COUNT || !rtq_status_is_terminal(s)) return none();
  return qkey(k, q, "done:", rtq_status_name(s), 1);
}
rtq_key2 rtq_keys2_task(const rtq_keys2 *k, const char *q, const char *id) {
  return qkey(k, q, "t:", id, 1);
}
rtq_key2 rtq_keys2_side(const rtq_keys2 *k, const char *q, const char *id) {
  return qkey(k, q, "x:", id, 1);
}
rtq_key2 rtq_keys2_stats(const rtq_keys2 *k, const char *q) { return qkey(k, q, "stats", NULL, 0); }
rtq_key2 rtq_keys2_runtime(const rtq_keys2 *k, const char *q) { return qkey(k, q, "rt", NULL, 0); }
rtq_key2 rtq_keys2_dead(const rtq_keys2 *k, const char *q) { return qkey(k, q, "dead", NULL, 0); }
rtq_key2 rtq_keys2_limit(const rtq_keys2 *k, const char *q) { return qkey(k, q, "limit", NULL, 0); }
rtq_key2 rtq_keys2_bucket(const rtq_keys2 *k, const char *q) {
  return qkey(k, q, "bucket", NULL, 0);
}
rtq_key2 rtq_keys2_slots(const rtq_keys2 *k, const char *q) { return qkey(k, q, "slots", NULL, 0); }
rtq_key2 rtq_keys2_chan_events(const rtq_keys2 *k, const char *q) {
  return qkey(k, q, "ev", NULL, 0);
}
rtq_key2 rtq_keys2_chan_waiter(const rtq_keys2 *k, const char *q, const char *id) {
  return qkey(k, q, "w:", id, 1);
}
rtq_key2 rtq_keys2_task_prefix(const rtq_keys2 *k, const char *q) {
  return qkey(k, q, "t:", NULL, 0);
}
rtq_key2 rtq_keys2_side_prefix(const rtq_keys2 *k, const char *q) {
  return qkey(k, q, "x:", NULL, 0);
}
rtq_key2 rtq_keys2_chan_waiter_prefix(const rtq_keys2 *k, const char *q) {
  return qkey(k, q, "w:", NULL, 0);
}

rtq_key2 rtq_keys2_processing_pattern(const rtq_keys2 *k) {
  rtq_key2 key;
  int n = snprintf(key.s, sizeof key.s, "{%s:*}:p:*", k->ns);
  if (n < 0 || (size_t)n >= sizeof key.s) return none();
  key.len = (size_t)n;
  return key;
}

/* Copies s[0..n) to out as a valid name, or returns RTQ_EINVAL. */
static int copy_name(const char *s, size_t n, char *out) {
  if (n == 0 || n > RTQ_NAME_MAX || memchr(s, '\0', n) != NULL) return RTQ_EINVAL;
  memcpy(out, s, n);
  out[n] = '\0';
  return rtq_validate_name(out);
}

int rtq_keys2_parse_processing(const rtq_keys2 *k, const char *key, size_t n, char *queue, char *wid) {
  queue[0] = wid[0] = '\0';
  /* "{" ns ":" Q "}:p:" wid */
  size_t pre = 1 + k->ns_len + 1;
  if (key == NULL || n <= pre || key[0] != '{' || memcmp(key + 1, k->ns, k->ns_len) != 0 ||
      key[pre - 1] != ':')
    return RTQ_EINVAL;
  const char *q = key + pre, *end = key + n;
  const char *close = memchr(q, '}', (size_t)(end - q));
  if (close == NULL || (size_t)(end - close) < 4 || memcmp(close, "}:p:", 4) != 0 ||
      copy_name(q, (size_t)(close - q), queue) != 0 || copy_name(close + 4, (size_t)(end - close - 4), wid) != 0) {
    queue[0] = wid[0] = '\0';
    return RTQ_EINVAL;
  }
  return 0;
}

int rtq__argv_add_key2(rtq_argv *a, rtq_key2 k) {
  if (k.len == 0) return RTQ_EINVAL;
  return rtq_argv_add(a, k.s, k.len);
}

int rtq_keys2_slot(const rtq_keys2 *k, const char *queue) {
  if (rtq_validate_name(queue) != 0) return -1;
  char tag[RTQ_KEY2_CAP];
  int n = snprintf(tag, sizeof tag, "%s:%s", k->ns, queue);
  if (n < 0 || (size_t)n >= sizeof tag) return -1;
  return rtq_crc16(tag, (size_t)n) % RTQ_SLOTS;
}

/* ---- ids ---- */

/* Crockford's base32 (no I, L, O, U). */
static const char digits[33] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

static int digit_value(char c) {
  const char *p = c != '\0' ? strchr(digits, c) : NULL;
  return p != NULL ? (int)(p - digits) : -1;
}

/* Bit k (0 = least significant) of ms << 82 | r << 14 | slot, where r is
 * hi:lo (4 + 64 bits). */
static unsigned id_bit(uint64_t ms, unsigned hi, uint64_t lo, int slot, int k) {
  if (k < 14) return ((unsigned)slot >> k) & 1u;
  if (k < 78) return (unsigned)(lo >> (k - 14)) & 1u;
  if (k < 82) return (hi >> (k - 78)) & 1u;
  return (unsigned)(ms >> (k - 82)) & 1u;
}

void rtq__id2_encode(char out[RTQ_ID2_LEN + 1], uint64_t ms, unsigned hi, uint64_t lo, int slot) {
  for (int d = 0; d < RTQ_ID2_LEN; d++) {
    unsigned v = 0;
    for (int b = 0; b < 5; b++) v = (v << 1) | id_bit(ms, hi, lo, slot, 129 - 5 * d - b);
    out[d] = digits[v];
  }
  out[RTQ_ID2_LEN] = '\0';
}

static int fresh(rtq__id2_state *st) {
  unsigned char b[9];
  int rc = rtq_random_bytes(b, sizeof b);
  if (rc != 0) return rc;
  st->hi = b[8] & 15u;
  st->lo = 0;
  for (int i = 0; i < 8; i++) st->lo = (st->lo << 8) | b[i];
  return 0;
}

int rtq__id2_next(rtq__id2_state *st, uint64_t ms, int slot, char out[RTQ_ID2_LEN + 1]) {
  out[0] = '\0';
  if (slot < 0 || slot >= RTQ_SLOTS) return RTQ_EINVAL;
  if (st->started && ms <= st->ms) {
    ms = st->ms;
    if (++st->lo == 0 && ++st->hi > 15) ms++; /* 2^68 ids in one ms: borrow the next */
  }
  if (ms >> 48) return RTQ_ERANGE;
  if (!st->started || ms != st->ms) {
    int rc = fresh(st);
    if (rc != 0) return rc;
  }
  st->ms = ms;
  st->started = 1;
  rtq__id2_encode(out, ms, st->hi, st->lo, slot);
  return 0;
}

static pthread_mutex_t gen_mu = PTHREAD_MUTEX_INITIALIZER;
static rtq__id2_state gen;

int rtq_id2_new(char out[RTQ_ID2_LEN + 1], int slot) {
  pthread_mutex_lock(&gen_mu);
  int rc = rtq__id2_next(&gen, rtq__wall_ms(), slot, out);
  pthread_mutex_unlock(&gen_mu);
  return rc;
}

int rtq_id2_parse(const char *id, uint64_t *ms, int *slot) {
  if (id == NULL || strlen(id) != RTQ_ID2_LEN) return RTQ_EINVAL;
  int v[RTQ_ID2_LEN];
  for (int i = 0; i < RTQ_ID2_LEN; i++)
    if ((v[i] = digit_value(id[i])) < 0) return RTQ_EINVAL;
  /* The time is the top 48 of the 130 bits: characters 0..8 and the top
   * 3 bits of character 9; the slot the low 14: character 23's low 4 bits
   * and characters 24 and 25. */
  uint64_t t = 0;
  for (int i = 0; i < 9; i++) t = (t << 5) | (uint64_t)v[i];
  t = (t << 3) | (uint64_t)(v[9] >> 2);
  if (ms != NULL) *ms = t;
  if (slot != NULL) *slot = ((v[23] & 15) << 10) | (v[24] << 5) | v[25];
  return 0;
}

int rtq_id2_slot(const char *id) {
  int slot;
  return rtq_id2_parse(id, NULL, &slot) == 0 ? slot : -1;
}
