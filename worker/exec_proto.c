/*
 * exec_proto.c - JSON-line framing of the exec protocol (exec_proto.h).
 *
 * The line reader keeps the offset it has already scanned, so a 100 MB
 * line arriving in 64 KiB reads is searched once, not once per read, and
 * it gives up as soon as the unfinished line passes the limit instead of
 * buffering the whole of it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec_proto.h"
#include "rtq/common.h"

void rtq__xline_destroy(rtq__xline *r) {
  free(r->buf);
  memset(r, 0, sizeof *r);
}

int rtq__xline_feed(rtq__xline *r, const void *data, size_t n) {
  if (r->off > 0 && (r->off >= r->len || r->off > r->cap / 2)) {
    memmove(r->buf, r->buf + r->off, r->len - r->off);
    r->len -= r->off;
    r->off = 0;
  }
  if (r->len + n + 1 > r->cap) {
    size_t ncap = r->cap ? r->cap : 4096;
    while (ncap < r->len + n + 1) ncap *= 2;
    char *b = realloc(r->buf, ncap);
    if (b == NULL) return RTQ_ENOMEM;
    r->buf = b;
    r->cap = ncap;
  }
  memcpy(r->buf + r->len, data, n);
  r->len += n;
  /* The unfinished tail may already be too long: fail now, not at 100 MB. */
  const char *start = r->buf + r->off + r->scan;
  size_t avail = r->len - r->off - r->scan;
  if (memchr(start, '\n', avail) == NULL && r->len - r->off >= r->max) return RTQ_ETOOBIG;
  return 0;
}

int rtq__xline_next(rtq__xline *r, char **line, size_t *len) {
  if (r->buf == NULL || r->off >= r->len) return 0;
  char *start = r->buf + r->off;
  size_t avail = r->len - r->off;
  char *nl = memchr(start + r->scan, '\n', avail - r->scan);
  if (nl == NULL) {
    r->scan = avail;
    return 0;
  }
  *nl = '\0';
  *line = start;
  *len = (size_t)(nl - start);
  r->off += *len + 1;
  r->scan = 0;
  return *len + 1 > r->max ? RTQ_ETOOBIG : 1;
}

static const struct {
  const char *name;
  rtq__xtype type;
} types[] = {{"ready", RTQ__X_READY},   {"progress", RTQ__X_PROGRESS}, {"log", RTQ__X_LOG},
             {"result", RTQ__X_RESULT}, {"error", RTQ__X_ERROR}};

int rtq__xmsg_parse(const char *line, size_t len, rtq__xmsg *m, char *err, size_t errcap) {
  m->root = NULL;
  size_t i = 0;
  while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) i++;
  if (i == len) return 1;
  json_error_t je;
  /* JSON_ALLOW_NUL: a result may hold "\u0000" (args may, and a str with
   * a NUL byte packs as it is); the type is compared with its length. */
  json_t *root = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
  if (root == NULL || !json_is_object(root)) {
    snprintf(err, errcap, "handler sent a line that is not a JSON object (%.100s)",
             root == NULL ? je.text : "not an object");
    json_decref(root);
    return RTQ_EDECODE;
  }
  json_t *jtype = json_object_get(root, "type");
  const char *type = json_string_value(jtype);
  for (size_t k = 0; type != NULL && k < sizeof types / sizeof types[0]; k++) {
    if (strcmp(type, types[k].name) == 0 && json_string_length(jtype) == strlen(type)) {
      m->type = types[k].type;
      m->root = root;
      return 0;
    }
  }
  snprintf(err, errcap, "handler sent a message of unknown type \"%.64s\"", type ? type : "(none)");
  json_decref(root);
  return RTQ_EDECODE;
}

/* Dumps obj without its closing brace, then appends tail: lets the task's
 * args (already JSON text) go in without parsing them again. */
static char *dump_with(json_t *obj, const char *tail, size_t *len) {
  char *head = json_dumps(obj, JSON_COMPACT);
  json_decref(obj);
  if (head == NULL) return NULL;
  size_t hl = strlen(head), tl = strlen(tail);
  char *out = malloc(hl + tl + 2);
  if (out != NULL) {
    memcpy(out, head, hl - 1); /* drop '}' */
    memcpy(out + hl - 1, tail, tl);
    out[hl - 1 + tl] = '\n';
    out[hl + tl] = '\0';
    *len = hl + tl;
  }
  free(head);
  return out;
}

char *rtq__xmsg_task(const char *id, const char *name, const char *queue, uint32_t attempt,
                     uint64_t timeout_ms, uint64_t deadline_ms, const char *args_json, size_t *len) {
  json_t *o = json_pack("{s:s,s:i,s:s,s:s,s:s,s:I,s:I,s:I}", "type", "task", "v", 1, "id", id, "name", name,
                        "queue", queue, "attempt", (json_int_t)attempt, "timeout_ms", (json_int_t)timeout_ms,
                        "deadline_ms", (json_int_t)deadline_ms);
  if (o == NULL) return NULL;
  size_t al = strlen(args_json);
  char *tail = malloc(al + 10);
  if (tail == NULL) {
    json_decref(o);
    return NULL;
  }
  memcpy(tail, ",\"args\":", 8);
  memcpy(tail + 8, args_json, al);
  tail[8 + al] = '}';
  tail[9 + al] = '\0';
  char *out = dump_with(o, tail, len);
  free(tail);
  return out;
}

char *rtq__xmsg_cancel(const char *id, const char *reason, size_t *len) {
  json_t *o = json_pack("{s:s,s:s,s:s}", "type", "cancel", "id", id, "reason", reason);
  return o == NULL ? NULL : dump_with(o, "}", len);
}

void rtq__xcode_clean(const char *code, char *out, size_t cap) {
  size_t n = 0;
  for (; code != NULL && code[n] != '\0' && n < 64 && n + 1 < cap; n++) {
    char c = code[n];
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '.' || c == '-';
    out[n] = ok ? c : '_';
  }
  out[n] = '\0';
  if (n == 0) snprintf(out, cap, "HANDLER_ERROR");
}

void rtq__exec_words_free(char **words) {
  for (size_t i = 0; words != NULL && words[i] != NULL; i++) free(words[i]);
  free(words);
}

char **rtq__exec_split(const char *cmd) {
  size_t n = strlen(cmd), nw = 0;
  char **w = calloc(n / 2 + 2, sizeof *w); /* at most one word per two bytes, plus NULL */
  char *cur = malloc(n + 1);
  if (w == NULL || cur == NULL) goto fail;
  size_t i = 0;
  for (;;) {
    while (i < n && (cmd[i] == ' ' || cmd[i] == '\t' || cmd[i] == '\n')) i++;
    if (i == n) break;
    size_t k = 0;
    while (i < n && cmd[i] != ' ' && cmd[i] != '\t' && cmd[i] != '\n') {
      char c = cmd[i++];
      if (c == '\'' || c == '"') {
        while (i < n && cmd[i] != c) {
          if (c == '"' && cmd[i] == '\\' && i + 1 < n) i++;
          cur[k++] = cmd[i++];
        }
        if (i == n) goto fail; /* unclosed quote */
        i++;
      } else if (c == '\\' && i < n) {
        cur[k++] = cmd[i++];
      } else {
        cur[k++] = c;
      }
    }
    if ((w[nw] = malloc(k + 1)) == NULL) goto fail;
    memcpy(w[nw], cur, k);
    w[nw++][k] = '\0';
  }
  free(cur);
  if (nw == 0) goto fail_words;
  return w;
fail:
  free(cur);
fail_words:
  rtq__exec_words_free(w);
  return NULL;
}
