/*
 * hostile_plugin.c - handlers for the tests that report text and errors no
 * handler should send:
 *   test.badprogress  reports progress with bytes that are not UTF-8 and
 *                     terminal escapes, then completes
 *   test.bigfail      fails through the API with an args.code_bytes long
 *                     code and an args.details_bytes blob in its details,
 *                     and returns 1 whatever rtq_task_fail said
 *   test.rawfail      (process isolation only) skips the API: writes its
 *                     own outcome frame of args.payload_bytes with an
 *                     args.code_bytes code, a 100 kB traceback and details
 *                     filling the rest straight to the pipe, then exits,
 *                     as a handler that knows the frame format could
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rtq/worker.h"

#define BAD_PROGRESS "50%\xff\xfe \x1b[2J\x1b]0;owned\x07 end\xc0"

static int badprogress(rtq_task_ctx *t, void *userdata) {
  (void)userdata;
  rtq_task_progress(t, 50, BAD_PROGRESS);
  return rtq_task_set_result_json(t, "{\"ok\":true}");
}

static size_t arg_size(rtq_task_ctx *t, const char *key) {
  int64_t v = 0;
  if (rtq_args_get_int(rtq_task_args(t), key, &v) != 0 || v < 0) return 0;
  return (size_t)v;
}

static char *filled(size_t n, char c) {
  char *s = malloc(n + 1);
  if (s == NULL) return NULL;
  memset(s, c, n);
  s[n] = '\0';
  return s;
}

static int bigfail(rtq_task_ctx *t, void *userdata) {
  (void)userdata;
  size_t cn = arg_size(t, "code_bytes"), dn = arg_size(t, "details_bytes");
  char *code = filled(cn, 'C'), *blob = filled(dn, 'd');
  rtq_args *d = rtq_args_new();
  if (code == NULL || blob == NULL || d == NULL || rtq_args_set_strn(d, "blob", blob, dn) != 0) abort();
  (void)rtq_task_fail(t, code, "big failure", d);
  rtq_args_free(d);
  free(code);
  free(blob);
  return 1;
}

static void put_field(char **p, const void *b, size_t n) {
  uint32_t be = (uint32_t)n;
  unsigned char h[4] = {(unsigned char)(be >> 24), (unsigned char)(be >> 16), (unsigned char)(be >> 8),
                        (unsigned char)be};
  memcpy(*p, h, 4);
  if (n > 0) memcpy(*p + 4, b, n);
  *p += 4 + n;
}

/* The frame pipe: the one write-only, close-on-exec pipe the child holds
 * (pipes inherited by the worker itself survived an exec, so they are not
 * close-on-exec). */
static int frame_fd(void) {
  int found = -1;
  for (int fd = 3; fd < 1024; fd++) {
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISFIFO(st.st_mode)) continue;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || (fl & O_ACCMODE) != O_WRONLY || (fcntl(fd, F_GETFD) & FD_CLOEXEC) == 0) continue;
    if (found >= 0) return -1;
    found = fd;
  }
  return found;
}

static int rawfail(rtq_task_ctx *t, void *userdata) {
  (void)userdata;
  int fd = frame_fd();
  if (fd < 0) return rtq_task_fail(t, "NO_PIPE", "no single frame pipe", NULL);
  size_t cn = arg_size(t, "code_bytes"), want = arg_size(t, "payload_bytes");
  char st[8];
  snprintf(st, sizeof st, "%d", (int)RTQ_STATUS_FAILED);
  size_t tb = 100000, fixed = 7 * 4 + 1 + strlen(st) + cn + 11 + tb;
  if (want < fixed + 16) return rtq_task_fail(t, "BAD_ARGS", "payload_bytes too small", NULL);
  /* details: a msgpack map {"blob": bin32 of dn - 11 bytes} of dn bytes. */
  size_t dn = want - fixed, bl = dn - 11, total = 5 + want;
  char *details = malloc(dn);
  char *code = filled(cn, 'C');
  char *frame = malloc(total), *tbs = filled(tb, 't');
  if (details == NULL || code == NULL || frame == NULL || tbs == NULL) abort();
  memcpy(details, "\x81\xa4" "blob\xc6", 7);
  details[7] = (char)(bl >> 24), details[8] = (char)(bl >> 16), details[9] = (char)(bl >> 8),
  details[10] = (char)bl;
  memset(details + 11, 'd', bl);
  size_t plen = total - 5;
  frame[0] = 'R';
  frame[1] = (char)(plen >> 24), frame[2] = (char)(plen >> 16), frame[3] = (char)(plen >> 8), frame[4] = (char)plen;
  char *p = frame + 5;
  put_field(&p, "0", 1);
  put_field(&p, st, strlen(st));
  put_field(&p, "", 0);
  put_field(&p, code, cn);
  put_field(&p, "raw failure", 11);
  put_field(&p, details, dn);
  put_field(&p, tbs, tb);
  for (size_t off = 0; off < total;) {
    ssize_t k = write(fd, frame + off, total - off);
    if (k <= 0) _exit(9);
    off += (size_t)k;
  }
  _exit(0);
}

RTQ_PLUGIN_EXPORT int rtq_plugin_register(rtq_worker *w) {
  if (rtq_worker_register(w, "test.badprogress", badprogress, NULL) != 0) return -1;
  if (rtq_worker_register(w, "test.bigfail", bigfail, NULL) != 0) return -1;
  return rtq_worker_register(w, "test.rawfail", rawfail, NULL);
}
