/* queues.c - pop-round planning over weighted or prioritised queues
 * (the model is in queues.h). */
#include "queues.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int rtq__queues_init(rtq__queues *qs, const rtq_worker_queue *list, size_t n, bool strict,
                     char *errbuf, size_t errcap) {
  static const rtq_worker_queue def = {"default", 1};
  memset(qs, 0, sizeof *qs);
  if (list == NULL || n == 0) {
    list = &def;
    n = 1;
  }
  if (n > RTQ_WORKER_MAX_QUEUES) {
    snprintf(errbuf, errcap, "too many queues (%zu, at most %d)", n, RTQ_WORKER_MAX_QUEUES);
    return RTQ_EINVAL;
  }
  qs->q = calloc(n, sizeof *qs->q);
  if (qs->q == NULL) return RTQ_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    if (rtq_validate_name(list[i].name) != 0) {
      snprintf(errbuf, errcap, "invalid queue name \"%.64s\": expected ^[A-Za-z0-9._:-]{1,128}$",
               list[i].name ? list[i].name : "(null)");
      rtq__queues_destroy(qs);
      return RTQ_EINVAL;
    }
    if (list[i].weight < 1 || list[i].weight > RTQ__MAX_WEIGHT) {
      snprintf(errbuf, errcap, "invalid weight %d for queue %s: expected 1..%d", list[i].weight,
               list[i].name, RTQ__MAX_WEIGHT);
      rtq__queues_destroy(qs);
      return RTQ_EINVAL;
    }
    for (size_t j = 0; j < i; j++) {
      if (strcmp(list[i].name, list[j].name) == 0) {
        snprintf(errbuf, errcap, "queue %s given twice", list[i].name);
        rtq__queues_destroy(qs);
        return RTQ_EINVAL;
      }
    }
    snprintf(qs->q[i].name, sizeof qs->q[i].name, "%s", list[i].name);
    qs->q[i].weight = list[i].weight;
  }
  qs->n = (int)n;
  qs->strict = strict;
  return 0;
}

void rtq__queues_destroy(rtq__queues *qs) {
  free(qs->q);
  memset(qs, 0, sizeof *qs);
}

/* One smooth weighted round-robin pick among the queues whose flag is set
 * in mask (all when mask is NULL). Ties go to the lower index. */
static int wrr_pick(rtq__queues *qs, const bool *mask) {
  int best = -1, total = 0;
  for (int i = 0; i < qs->n; i++) {
    if (mask != NULL && !mask[i]) continue;
    qs->q[i].cw += qs->q[i].weight;
    total += qs->q[i].weight;
    if (best < 0 || qs->q[i].cw > qs->q[best].cw) best = i;
  }
  if (best >= 0) qs->q[best].cw -= total;
  return best;
}

int rtq__queues_plan(rtq__queues *qs, int k, uint64_t now, int *qidx, bool *blocking) {
  bool mask[RTQ_WORKER_MAX_QUEUES], open[RTQ_WORKER_MAX_QUEUES];
  int eligible = 0, first = -1, nopen = 0, first_open = -1;
  for (int i = 0; i < qs->n; i++) {
    open[i] = !qs->q[i].paused;
    mask[i] = open[i] && now >= qs->q[i].empty_until;
    if (open[i]) {
      nopen++;
      if (first_open < 0) first_open = i;
    }
    if (mask[i]) {
      eligible++;
      if (first < 0) first = i;
    }
  }
  if (nopen == 0) return 0;
  *blocking = nopen == 1 || eligible == 0;
  if (nopen > 1 && qs->idle) k = *blocking || qs->strict ? 1 : (eligible < k ? eligible : k);
  if (*blocking || qs->strict) {
    int q = first_open;
    if (nopen > 1 && eligible == 0) q = qs->strict ? first_open : wrr_pick(qs, open);
    else if (nopen > 1) q = first;
    for (int i = 0; i < k; i++) qidx[i] = q;
    return k;
  }
  for (int i = 0; i < k; i++) qidx[i] = wrr_pick(qs, mask);
  return k;
}

int rtq__queues_set_paused(rtq__queues *qs, const char *const *names, size_t n) {
  int changed = 0;
  for (int i = 0; i < qs->n; i++) {
    bool p = false;
    for (size_t j = 0; j < n && !p; j++) p = strcmp(qs->q[i].name, names[j]) == 0;
    if (p != qs->q[i].paused) changed++;
    qs->q[i].paused = p;
  }
  return changed;
}

void rtq__queues_result(rtq__queues *qs, int i, bool got, uint64_t now, int poll_ms) {
  if (i < 0 || i >= qs->n) return;
  qs->q[i].empty_until = got ? 0 : now + (uint64_t)poll_ms;
}

void rtq__queues_round_end(rtq__queues *qs, bool got_any, int blocked) {
  qs->idle = !got_any;
  if (blocked < 0) return;
  for (int j = 0; j < qs->n; j++)
    if (j != blocked) qs->q[j].empty_until = 0;
}

void rtq__queues_describe(const rtq__queues *qs, char *buf, size_t cap) {
  size_t off = 0;
  if (cap == 0) return;
  buf[0] = '\0';
  for (int i = 0; i < qs->n && off < cap; i++) {
    int n = snprintf(buf + off, cap - off, "%s%s:%d", i ? "," : "", qs->q[i].name, qs->q[i].weight);
    if (n < 0) break;
    off += (size_t)n;
  }
}
