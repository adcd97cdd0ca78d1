/* argv.c - Redis command argument vectors (see argv.h). */
#include "argv.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rtq/common.h"

void *(*rtq__argv_realloc)(void *ptr, size_t size) = realloc;

void rtq_argv_init(rtq_argv *a) { memset(a, 0, sizeof *a); }

static void free_chunks(rtq_argv *a) {
  for (int i = 0; i < a->nchunks; i++) free(a->chunks[i]);
  a->nchunks = 0;
}

void rtq_argv_destroy(rtq_argv *a) {
  if (a == NULL) return;
  free_chunks(a);
  free(a->chunks);
  free((void *)a->argv);
  free(a->argvlen);
  memset(a, 0, sizeof *a);
}

void rtq_argv_reset(rtq_argv *a) {
  free_chunks(a);
  a->argc = 0;
  a->oom = 0;
}

/* Grows the three parallel arrays together; on failure nothing is lost,
 * each array that did grow is simply larger than needed. */
static int grow(rtq_argv *a) {
  int ncap = a->cap ? a->cap * 2 : 8;
  const char **nargv = rtq__argv_realloc((void *)a->argv, (size_t)ncap * sizeof *nargv);
  if (nargv == NULL) return RTQ_ENOMEM;
  a->argv = nargv;
  size_t *nlen = rtq__argv_realloc(a->argvlen, (size_t)ncap * sizeof *nlen);
  if (nlen == NULL) return RTQ_ENOMEM;
  a->argvlen = nlen;
  char **nchunks = rtq__argv_realloc(a->chunks, (size_t)ncap * sizeof *nchunks);
  if (nchunks == NULL) return RTQ_ENOMEM;
  a->chunks = nchunks;
  a->cap = ncap;
  return 0;
}

static char *copy(const void *p, size_t len) {
  if (len == SIZE_MAX) return NULL; /* len + 1 would wrap */
  char *c = rtq__argv_realloc(NULL, len + 1);
  if (c == NULL) return NULL;
  if (len > 0) memcpy(c, p, len);
  c[len] = '\0';
  return c;
}

int rtq_argv_add(rtq_argv *a, const void *p, size_t len) {
  if (a->oom) return RTQ_ENOMEM;
  if (a->argc == a->cap && grow(a) != 0) {
    a->oom = 1;
    return RTQ_ENOMEM;
  }
  char *c = copy(p, len);
  if (c == NULL) {
    a->oom = 1;
    return RTQ_ENOMEM;
  }
  a->chunks[a->argc] = c;
  a->argv[a->argc] = c;
  a->argvlen[a->argc] = len;
  a->argc++;
  a->nchunks = a->argc;
  return 0;
}

void rtq_argv_pop(rtq_argv *a) {
  a->oom = 0;
  if (a->argc == 0) return;
  a->argc--;
  free(a->chunks[a->argc]);
  a->nchunks = a->argc;
}

int rtq_argv_add_str(rtq_argv *a, const char *s) { return rtq_argv_add(a, s, strlen(s)); }

int rtq_argv_add_i64(rtq_argv *a, int64_t v) {
  char buf[24];
  int n = snprintf(buf, sizeof buf, "%" PRId64, v);
  return rtq_argv_add(a, buf, (size_t)n);
}

int rtq_argv_add_u64(rtq_argv *a, uint64_t v) {
  char buf[24];
  int n = snprintf(buf, sizeof buf, "%" PRIu64, v);
  return rtq_argv_add(a, buf, (size_t)n);
}

int rtq_argv_set(rtq_argv *a, int i, const void *p, size_t len) {
  if (i < 0 || i >= a->argc) return RTQ_EINVAL;
  char *c = copy(p, len);
  if (c == NULL) return RTQ_ENOMEM;
  free(a->chunks[i]);
  a->chunks[i] = c;
  a->argv[i] = c;
  a->argvlen[i] = len;
  return 0;
}
