/*
 * fuzz_frame.c - libFuzzer target for the reader of the pipe a forked
 * task child writes to the worker (worker/frame.c). The child runs a
 * handler, so its bytes are hostile.
 *
 * The input's first byte picks the chunk size the bytes are fed in (a
 * pipe delivers any split), the rest is the stream. Properties:
 *   1. feed/next return only their documented codes, and after
 *      RTQ_EDECODE the reader is left alone, as the worker does;
 *   2. a frame's payload fits the reader's max_frame, and every field that
 *      rtq__frame_field returns lies inside its payload;
 *   3. after a 'C' frame no frame is returned again and the tail stays
 *      NUL-terminated within RTQ__CRASH_TAIL_MAX;
 *   4. splitting the stream differently gives the same frames: the same
 *      bytes fed whole are read again and compared.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "rtq/common.h"

#define REQUIRE(cond)     \
  do {                    \
    if (!(cond)) abort(); \
  } while (0)

#define MAX_FRAMES 64

struct seen {
  int n;
  char type[MAX_FRAMES];
  size_t len[MAX_FRAMES];
  int err;
};

static void check_frame(const char *payload, size_t len) {
  for (int idx = 0; idx < 6; idx++) {
    rtq__field f;
    if (rtq__frame_field(payload, len, idx, &f) != 0) break;
    REQUIRE(f.len <= len);
    if (f.len > 0) {
      REQUIRE((const char *)f.p >= payload);
      REQUIRE((const char *)f.p + f.len <= payload + len);
    }
  }
}

/* Feeds data in chunks of `chunk` bytes and records the frames read. */
static void read_stream(const uint8_t *data, size_t size, size_t chunk, struct seen *out) {
  rtq__frame_reader r;
  memset(&r, 0, sizeof r);
  r.max_frame = 4096;
  memset(out, 0, sizeof *out);
  int after_crash = 0;
  for (size_t off = 0; off < size && !out->err; off += chunk) {
    size_t n = size - off < chunk ? size - off : chunk;
    int rc = rtq__frame_feed(&r, data + off, n);
    REQUIRE(rc == 0 || rc == RTQ_ENOMEM);
    if (rc != 0) break;
    for (;;) {
      char type;
      const char *payload;
      size_t len;
      rc = rtq__frame_next(&r, &type, &payload, &len);
      REQUIRE(rc == 1 || rc == 0 || rc == RTQ_EDECODE);
      if (rc == RTQ_EDECODE) {
        out->err = 1;
        break;
      }
      if (rc == 0) break;
      REQUIRE(!after_crash);
      REQUIRE(len <= r.max_frame);
      check_frame(payload, len);
      if (out->n < MAX_FRAMES) {
        out->type[out->n] = type;
        out->len[out->n] = len;
      }
      out->n++;
      if (type == 'C') after_crash = 1;
    }
    if (r.crashed && r.tail != NULL) {
      REQUIRE(r.tail_len <= RTQ__CRASH_TAIL_MAX);
      REQUIRE(r.tail[r.tail_len] == '\0');
    }
  }
  rtq__frame_reader_destroy(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > 65536) return 0;
  size_t chunk = (size_t)data[0] % 32 + 1;
  struct seen split, whole;
  read_stream(data + 1, size - 1, chunk, &split);
  read_stream(data + 1, size - 1, size, &whole);
  REQUIRE(split.err == whole.err);
  REQUIRE(split.n == whole.n);
  for (int i = 0; i < split.n && i < MAX_FRAMES; i++) {
    REQUIRE(split.type[i] == whole.type[i]);
    REQUIRE(split.len[i] == whole.len[i]);
  }
  return 0;
}
