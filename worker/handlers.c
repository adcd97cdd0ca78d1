/*
 * handlers.c - the handler registry (names a worker serves) and the
 * worker's answer to a NOSCRIPT reply. Kept out of worker.c, which owns
 * the worker's life and its event-loop callbacks only.
 */
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "log.h"
#include "scripts.h"

int rtq_worker_register(rtq_worker *w, const char *name, rtq_handler_fn fn, void *userdata) {
  return rtq__handler_add(w, name, fn, userdata, false);
}

/* A pattern: a task name with '*' (any run of bytes) or '?' in it. */
static bool valid_pattern(const char *p) {
  size_t n = strlen(p);
  if (n == 0 || n > RTQ_NAME_MAX) return false;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)p[i] <= ' ' || p[i] == '[' || p[i] == '\\') return false;
  return true;
}

int rtq__handler_add(rtq_worker *w, const char *name, rtq_handler_fn fn, void *userdata, bool pattern) {
  if (w == NULL) return RTQ_EINVAL;
  if (w->running) {
    rtq__set_err(w, "handlers must be registered before rtq_worker_run");
    return RTQ_EINVAL;
  }
  if (fn == NULL || name == NULL || (pattern ? !valid_pattern(name) : rtq_validate_name(name) != 0)) {
    rtq__set_err(w, "invalid handler name or NULL handler");
    return RTQ_EINVAL;
  }
  if (rtq__handler_find(w, name) != NULL) {
    rtq__set_err(w, "handler %s is already registered", name);
    return RTQ_EEXIST;
  }
  if (w->nhandlers == w->caphandlers) {
    size_t ncap = w->caphandlers ? w->caphandlers * 2 : 8;
    rtq__handler *n = realloc(w->handlers, ncap * sizeof *n);
    if (n == NULL) return RTQ_ENOMEM;
    w->handlers = n;
    w->caphandlers = ncap;
  }
  rtq__handler *h = &w->handlers[w->nhandlers++];
  snprintf(h->name, sizeof h->name, "%s", name);
  h->fn = fn;
  h->userdata = userdata;
  h->pattern = pattern;
  return 0;
}

const rtq__handler *rtq__handler_find(const rtq_worker *w, const char *name) {
  for (size_t i = 0; i < w->nhandlers; i++)
    if (!w->handlers[i].pattern && strcmp(w->handlers[i].name, name) == 0) return &w->handlers[i];
  for (size_t i = 0; i < w->nhandlers; i++)
    if (w->handlers[i].pattern && fnmatch(w->handlers[i].name, name, FNM_NOESCAPE) == 0) return &w->handlers[i];
  return NULL;
}

bool rtq__noscript(rtq_worker *w, const redisReply *r) {
  bool was;
  if (!rtq_script_fallback(&w->use_eval, r, &was)) return false;
  if (!was)
    rtq_log(RTQ_LOG_WARNING, "redis lost its script cache (NOSCRIPT); using EVAL until reconnected", NULL);
  return true;
}
