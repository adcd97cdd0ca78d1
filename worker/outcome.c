/* outcome.c - see outcome.h. */
#include "outcome.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "defaults.h"
#include "envelope.h"
#include "utf8.h"

void rtq__outcome_destroy(rtq__outcome *o) {
  free(o->result);
  free(o->code);
  free(o->message);
  free(o->details);
  free(o->traceback);
  memset(o, 0, sizeof *o);
}

/* (s, n) cut to max bytes and made well-formed UTF-8; NULL for absent
 * text; *bad set when out of memory. */
static char *text(const char *s, size_t n, size_t max, int *bad) {
  if (s == NULL || n == 0) return NULL;
  char *t = rtq__utf8_sanitize(s, n < max ? n : max, NULL);
  if (t == NULL) *bad = 1;
  return t;
}

/* Codes are identifiers people grep for: keep A-Z a-z 0-9 _ . - and turn
 * anything else (spaces, quotes, bytes that are not ASCII) into '_'. */
static char *code_text(const char *s, size_t n, int *bad) {
  if (s == NULL || n == 0) {
    s = RTQ_CODE_HANDLER_ERROR;
    n = strlen(s);
  }
  if (n > RTQ__CODE_MAX) n = RTQ__CODE_MAX;
  char *c = malloc(n + 1);
  if (c == NULL) {
    *bad = 1;
    return NULL;
  }
  for (size_t i = 0; i < n; i++) {
    char ch = s[i];
    int ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
             ch == '_' || ch == '.' || ch == '-';
    c[i] = ok ? ch : '_';
  }
  c[n] = '\0';
  return c;
}

/* fixmap (0x80..0x8f), map 16 or map 32. */
static int is_map(char first) {
  unsigned char b = (unsigned char)first;
  return (b & 0xf0) == 0x80 || b == 0xde || b == 0xdf;
}

int rtq__outcome_set_error(rtq__outcome *o, const char *code, size_t code_len, const char *message,
                           size_t message_len, const char *details, size_t details_len,
                           const char *traceback, size_t traceback_len) {
  int bad = 0;
  const char *dropped = NULL;
  char *d = NULL;
  if (details != NULL && details_len > 0) {
    if (details_len > RTQ__DETAILS_MAX)
      dropped = "error details dropped: over 64 KiB";
    else if (rtq_msgpack_check(details, details_len, RTQ_MAX_DEPTH, NULL, 0) != 0 ||
             !is_map(details[0]))
      dropped = "error details dropped: not a msgpack map";
    else if ((d = malloc(details_len)) == NULL)
      bad = 1;
    else
      memcpy(d, details, details_len);
  }
  char *c = code_text(code, code_len, &bad);
  char *m = text(message, message_len, RTQ__MESSAGE_MAX, &bad);
  char *tb = text(traceback, traceback_len, RTQ__TRACEBACK_MAX, &bad);
  if (dropped != NULL && !bad) {
    /* Say why the details are missing, after the handler's own text. */
    size_t n = (m != NULL ? strlen(m) + 2 : 0) + strlen(dropped) + 3;
    char *both = malloc(n);
    if (both == NULL) {
      bad = 1;
    } else {
      snprintf(both, n, "%s%s(%s)", m != NULL ? m : "", m != NULL ? " " : "", dropped);
      free(m);
      m = both;
    }
  }
  if (bad) {
    free(c);
    free(m);
    free(d);
    free(tb);
    return RTQ_ENOMEM;
  }
  free(o->result);
  free(o->code);
  free(o->message);
  free(o->details);
  free(o->traceback);
  o->status = RTQ_STATUS_FAILED;
  o->result = NULL;
  o->result_len = 0;
  o->code = c;
  o->message = m;
  o->details = d;
  o->details_len = d != NULL ? details_len : 0;
  o->traceback = tb;
  return 0;
}

int rtq__outcome_set_result(rtq__outcome *o, const char *buf, size_t len, size_t max) {
  if (len > max) return RTQ_ETOOBIG;
  if (buf == NULL || len == 0 || rtq_msgpack_check(buf, len, RTQ_MAX_DEPTH, NULL, 0) != 0)
    return RTQ_EINVAL;
  char *copy = malloc(len);
  if (copy == NULL) return RTQ_ENOMEM;
  memcpy(copy, buf, len);
  free(o->result);
  o->result = copy;
  o->result_len = len;
  return 0;
}
