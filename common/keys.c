/* keys.c - the only place that formats Redis key and channel names. */
#include "keys.h"

#include <stdio.h>
#include <string.h>

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

int rtq_keys_init(rtq_keys *k, const char *ns, bool cluster) {
  if (k == NULL || !ns_valid(ns)) return RTQ_EINVAL;
  int n = snprintf(k->prefix, sizeof k->prefix, cluster ? "{%s}" : "%s", ns);
  k->prefix_len = (size_t)n;
  return 0;
}

/* Builds "<prefix>:<kind>" or "<prefix>:<kind>:<name>". A name that fails
 * validation yields len 0, so a caller can never address a key built from
 * unchecked input. */
static rtq_key build(const rtq_keys *k, const char *kind, const char *name) {
  rtq_key key;
  key.len = 0;
  key.s[0] = '\0';
  if (name != NULL && rtq_validate_name(name) != 0) return key;
  int n = name ? snprintf(key.s, sizeof key.s, "%s:%s:%s", k->prefix, kind, name)
               : snprintf(key.s, sizeof key.s, "%s:%s", k->prefix, kind);
  if (n < 0 || (size_t)n >= sizeof key.s) {
    key.s[0] = '\0';
    return key;
  }
  key.len = (size_t)n;
  return key;
}

/* For patterns with a name part: a NULL name is invalid, never "no part". */
static rtq_key named(const rtq_keys *k, const char *kind, const char *name) {
  if (name == NULL) {
    rtq_key key;
    key.len = 0;
    key.s[0] = '\0';
    return key;
  }
  return build(k, kind, name);
}

rtq_key rtq_keys_task(const rtq_keys *k, const char *id) { return named(k, "task", id); }
rtq_key rtq_keys_task_prefix(const rtq_keys *k) { return build(k, "task:", NULL); }
rtq_key rtq_keys_cancel_prefix(const rtq_keys *k) { return build(k, "cancel:", NULL); }
rtq_key rtq_keys_chan_task_prefix(const rtq_keys *k) { return build(k, "chan:task:", NULL); }
rtq_key rtq_keys_runtime(const rtq_keys *k, const char *queue) { return named(k, "runtime", queue); }
rtq_key rtq_keys_runtime_prefix(const rtq_keys *k) { return build(k, "runtime:", NULL); }
rtq_key rtq_keys_queue(const rtq_keys *k, const char *queue) { return named(k, "queue", queue); }
rtq_key rtq_keys_queues(const rtq_keys *k) { return build(k, "queues", NULL); }
rtq_key rtq_keys_processing(const rtq_keys *k, const char *wid) { return named(k, "processing", wid); }
rtq_key rtq_keys_worker(const rtq_keys *k, const char *wid) { return named(k, "worker", wid); }
rtq_key rtq_keys_workers(const rtq_keys *k) { return build(k, "workers", NULL); }
rtq_key rtq_keys_cancel(const rtq_keys *k, const char *id) { return named(k, "cancel", id); }
rtq_key rtq_keys_delayed(const rtq_keys *k) { return build(k, "delayed", NULL); }
rtq_key rtq_keys_deadlines(const rtq_keys *k) { return build(k, "deadlines", NULL); }
rtq_key rtq_keys_status(const rtq_keys *k, rtq_status s) {
  if ((int)s < 0 || (int)s >= RTQ_STATUS_COUNT) return named(k, "status", NULL);
  return build(k, "status", rtq_status_name(s));
}
rtq_key rtq_keys_history(const rtq_keys *k) { return build(k, "history", NULL); }
rtq_key rtq_keys_dead(const rtq_keys *k) { return build(k, "dead", NULL); }
rtq_key rtq_keys_stats(const rtq_keys *k) { return build(k, "stats", NULL); }
rtq_key rtq_keys_lease(const rtq_keys *k) { return build(k, "lease", NULL); }
rtq_key rtq_keys_paused(const rtq_keys *k) { return build(k, "paused", NULL); }
rtq_key rtq_keys_schedules(const rtq_keys *k) { return build(k, "schedules", NULL); }
rtq_key rtq_keys_schedules_due(const rtq_keys *k) { return build(k, "schedules:due", NULL); }
rtq_key rtq_keys_schedules_last(const rtq_keys *k) { return build(k, "schedules:last", NULL); }
rtq_key rtq_keys_throughput(const rtq_keys *k, uint64_t minute) {
  char m[24];
  snprintf(m, sizeof m, "%llu", (unsigned long long)minute);
  return build(k, "throughput", m);
}
rtq_key rtq_keys_chan_events(const rtq_keys *k) { return build(k, "chan:events", NULL); }
rtq_key rtq_keys_chan_task(const rtq_keys *k, const char *id) { return named(k, "chan:task", id); }
rtq_key rtq_keys_chan_cancel(const rtq_keys *k) { return build(k, "chan:cancel", NULL); }
rtq_key rtq_keys_acl_pattern(const rtq_keys *k) { return build(k, "*", NULL); }

rtq_key rtq_keys_stats_field(const char *queue, const char *counter) {
  rtq_key key;
  key.len = 0;
  key.s[0] = '\0';
  if (rtq_validate_name(queue) != 0 || counter == NULL) return key;
  int n = snprintf(key.s, sizeof key.s, "%s|%s", queue, counter);
  if (n > 0 && (size_t)n < sizeof key.s) key.len = (size_t)n;
  else key.s[0] = '\0';
  return key;
}

int rtq__argv_add_key(rtq_argv *a, rtq_key k) {
  if (k.len == 0) return RTQ_EINVAL;
  return rtq_argv_add(a, k.s, k.len);
}
