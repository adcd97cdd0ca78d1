/*
 * frame.h - the pipe protocol between a forked task child and the worker
 * (process isolation). Pure logic, no I/O.
 *
 * A frame is   type (1 byte) | length (4 bytes, big endian) | payload
 * and a payload is a sequence of fields, each   length (4 bytes) | bytes.
 *
 *   'P' progress  [percent as text, message]      (may repeat, coalesced)
 *   'R' result    [msgpack value, or empty: nil]  (last frame)
 *   'F' failure   [code, message, details msgpack, traceback] (last frame)
 *   'C' crash     [signal number as text]; every byte after this frame up
 *                 to EOF is backtrace text, written by backtrace_symbols_fd
 *                 from the child's fatal-signal handler.
 *
 * The reader trusts nothing: a frame longer than its limit, an unknown
 * type or a malformed field is a protocol error, which the worker reports
 * as a crash of the child.
 */
#ifndef RTQ_WORKER_FRAME_H
#define RTQ_WORKER_FRAME_H

#include <stdbool.h>
#include <stddef.h>

#define RTQ__FRAME_HDR 5
#define RTQ__CRASH_TAIL_MAX (64 * 1024)

typedef struct rtq__field {
  const void *p;
  size_t len;
} rtq__field;

/* Builds a frame into a malloc'd *out. 0 or RTQ_ENOMEM / RTQ_ETOOBIG. */
int rtq__frame_build(char type, const rtq__field *fields, int n, char **out, size_t *outlen);
/* Reads field number idx (0-based) of a payload. 0 or RTQ_EDECODE. */
int rtq__frame_field(const char *payload, size_t len, int idx, rtq__field *out);

/* Storage the caller owns: zero it, set max_frame, rtq__frame_reader_destroy. */
typedef struct rtq__frame_reader {
  char *buf;
  size_t len, cap, off;
  size_t max_frame;
  bool crashed;      /* a 'C' frame was read: the rest is the tail */
  char *tail;        /* backtrace text, NUL-terminated, at most RTQ__CRASH_TAIL_MAX */
  size_t tail_len;
} rtq__frame_reader;

void rtq__frame_reader_destroy(rtq__frame_reader *r);
/* Appends bytes read from the pipe. 0 or RTQ_ENOMEM. */
int rtq__frame_feed(rtq__frame_reader *r, const void *data, size_t n);
/*
 * Takes the next complete frame: 1 and fills type, payload and len (borrowed until
 * the next feed or next call), 0 when more bytes are needed, RTQ_EDECODE on
 * a protocol error (the reader is then unusable). After a 'C' frame is
 * returned, further bytes go to r->tail and no frame is returned again.
 */
int rtq__frame_next(rtq__frame_reader *r, char *type, const char **payload, size_t *len);

#endif
