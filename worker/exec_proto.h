/*
 * exec_proto.h - the exec protocol's framing (docs/EXEC.md): JSON lines
 * between the worker and a handler process. Pure logic, no I/O, so it can
 * be tested without processes.
 */
#ifndef RTQ_WORKER_EXEC_PROTO_H
#define RTQ_WORKER_EXEC_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Longest line a handler may send, newline included (docs/EXEC.md §1). */
#define RTQ__XLINE_MAX (32u * 1024u * 1024u)

/* Splits a byte stream into lines. Zero it, set max, then feed / next. */
typedef struct rtq__xline {
  char *buf;
  size_t len, cap;
  size_t off;   /* start of the next line */
  size_t scan;  /* bytes from off already known to hold no newline */
  size_t max;   /* longest line, newline included */
} rtq__xline;

void rtq__xline_destroy(rtq__xline *r);
/* Appends bytes. 0, RTQ_ENOMEM, or RTQ_ETOOBIG when a line without its
 * newline is already longer than max (the reader is then unusable). */
int rtq__xline_feed(rtq__xline *r, const void *data, size_t n);
/* The next complete line without its newline: 1 and *line (NUL-terminated
 * in place, borrowed until the next feed) and *len; 0 when none. */
int rtq__xline_next(rtq__xline *r, char **line, size_t *len);

typedef enum rtq__xtype {
  RTQ__X_READY,
  RTQ__X_PROGRESS,
  RTQ__X_LOG,
  RTQ__X_RESULT,
  RTQ__X_ERROR,
} rtq__xtype;

/* One message from a handler. root owns everything; free with json_decref. */
typedef struct rtq__xmsg {
  rtq__xtype type;
  json_t *root;
} rtq__xmsg;

/* Parses one line. 0; 1 for a blank line (ignored); RTQ_EDECODE for a line
 * that is not a JSON object or has an unknown or missing "type", with the
 * reason in err. */
int rtq__xmsg_parse(const char *line, size_t len, rtq__xmsg *m, char *err, size_t errcap);

/* The "task" line, newline included, malloc'd; NULL when out of memory.
 * args_json is the task's args as a JSON object text. */
char *rtq__xmsg_task(const char *id, const char *name, const char *queue, uint32_t attempt,
                     uint64_t timeout_ms, uint64_t deadline_ms, const char *args_json, size_t *len);
/* The "cancel" line for reason "cancelled", "timeout" or "shutdown". */
char *rtq__xmsg_cancel(const char *id, const char *reason, size_t *len);

/* Copies an error code into out (cap >= 65): at most 64 bytes, every byte
 * outside A-Z a-z 0-9 _ . - replaced by '_'; "HANDLER_ERROR" when empty. */
void rtq__xcode_clean(const char *code, char *out, size_t cap);

/* Splits a command into words: blanks separate, '...' and "..." group,
 * backslash escapes one character outside single quotes. NULL-terminated
 * malloc'd array (free with rtq__exec_words_free); NULL when empty, on an
 * unclosed quote or out of memory. */
char **rtq__exec_split(const char *cmd);
void rtq__exec_words_free(char **words);

#endif
