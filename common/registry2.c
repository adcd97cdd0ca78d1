/*
 * registry2.c - reading {ns}:queues (registry2.h).
 */
#include "registry2.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rtq/common.h"

void rtq_registry2_free(char **names, size_t n) {
  for (size_t i = 0; names != NULL && i < n; i++) free(names[i]);
  free(names);
}

static int cmp_names(const void *x, const void *y) { return strcmp(*(char *const *)x, *(char *const *)y); }

int rtq__names_push(char ***v, size_t *n, size_t *cap, const char *s, size_t len) {
  if (memchr(s, '\0', len) != NULL || s[len] != '\0' || rtq_validate_name(s) != 0) return 0;
  if (*n == *cap) {
    size_t nc = *cap == 0 ? 16 : *cap * 2;
    char **g = realloc(*v, nc * sizeof *g);
    if (g == NULL) return RTQ_ENOMEM;
    *v = g;
    *cap = nc;
  }
  if (((*v)[*n] = strdup(s)) == NULL) return RTQ_ENOMEM;
  (*n)++;
  return 0;
}

void rtq__names_sort_unique(char **v, size_t *n) {
  if (*n == 0) return;
  qsort(v, *n, sizeof *v, cmp_names);
  size_t k = 1;
  for (size_t i = 1; i < *n; i++) {
    if (strcmp(v[i], v[k - 1]) == 0) free(v[i]);
    else v[k++] = v[i];
  }
  *n = k;
}

int rtq_registry2_read(rtq_conn *c, const rtq_keys2 *k, size_t max, char ***names, size_t *n, bool *capped) {
  *names = NULL;
  *n = 0;
  if (capped != NULL) *capped = false;
  rtq_key2 key = rtq_keys2_queues(k);
  char cursor[32] = "0";
  char **v = NULL;
  size_t got = 0, cap = 0;
  /* Enough pages for max valid names several times over; more only
   * happens when the set is mostly junk. */
  size_t pages_left = max / RTQ_REGISTRY2_PAGE * 4 + 16;
  bool full = false;
  int rc = 0;
  do {
    rtq_argv a;
    rtq_argv_init(&a);
    rtq_argv_add_str(&a, "SSCAN");
    rtq__argv_add_key2(&a, key);
    rtq_argv_add_str(&a, cursor);
    rtq_argv_add_str(&a, "COUNT");
    rtq_argv_add_i64(&a, RTQ_REGISTRY2_PAGE);
    redisReply *r = NULL;
    rc = rtq_conn_command(c, &a, &r);
    rtq_argv_destroy(&a);
    if (rc == 0 && (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING ||
                    r->element[0]->len >= sizeof cursor || r->element[1]->type != REDIS_REPLY_ARRAY))
      rc = RTQ_EREDIS;
    if (rc == 0) {
      snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
      const redisReply *page = r->element[1];
      for (size_t i = 0; i < page->elements && rc == 0 && !full; i++) {
        full = got >= max; /* a member past the max: the rest wait */
        const redisReply *e = page->element[i];
        if (!full && e->type == REDIS_REPLY_STRING) rc = rtq__names_push(&v, &got, &cap, e->str, e->len);
      }
    }
    if (r != NULL) freeReplyObject(r);
  } while (rc == 0 && !full && --pages_left > 0 && strcmp(cursor, "0") != 0);
  if (rc != 0) {
    rtq_registry2_free(v, got);
    return rc;
  }
  if (capped != NULL) *capped = full || strcmp(cursor, "0") != 0;
  rtq__names_sort_unique(v, &got); /* SSCAN may return a member twice */
  *names = v;
  *n = got;
  return 0;
}
