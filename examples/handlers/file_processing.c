/*
 * file_processing.c - examples.process_file: reads a file in 1 KiB chunks
 * and reports progress by bytes.
 *
 *   args    {file_path: str, delay_ms: int = 0}
 *           delay_ms is a pause after each chunk, so a demo can watch a
 *           small file being "processed"
 *   result  {file_path, file_size, processed_bytes, chunks, status: "processed"}
 *   errors  INVALID_ARGUMENT, FILE_NOT_FOUND, PERMISSION_DENIED, NOT_A_FILE,
 *           IO_ERROR (details: {file_path, errno})
 *
 * The size is taken from fstat() on the open descriptor, so it describes
 * the file actually read. A file that grows while it is read is read to its
 * end; progress then stays at 100 until the handler returns.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "examples.h"

#define CHUNK 1024

static int fail_errno(rtq_task_ctx *t, const char *path, int err, const char *what) {
  char ebuf[128];
  const char *etext = rtq__ex_strerror(err, ebuf, sizeof ebuf);
  rtq_args *d = rtq__ex_details("file_path", path);
  if (d != NULL) rtq_args_set_int(d, "errno", err);
  return rtq__ex_fail(t, rtq__ex_errno_code(err), d, "cannot %s %s: %s", what, path, etext);
}

static int report(rtq_task_ctx *t, uint64_t done, uint64_t size) {
  char msg[96];
  double pct = size == 0 ? 100.0 : (double)done * 100.0 / (double)size;
  if (pct > 100.0) pct = 100.0;
  snprintf(msg, sizeof msg, "%llu/%llu bytes", (unsigned long long)done, (unsigned long long)size);
  return rtq_task_progress(t, pct, msg);
}

static int set_result(rtq_task_ctx *t, const char *path, uint64_t size, uint64_t done,
                      uint64_t chunks) {
  rtq_args *r = rtq_args_new();
  if (r == NULL) return RTQ_ENOMEM;
  int rc = rtq_args_set_str(r, "file_path", path);
  if (rc == 0) rc = rtq_args_set_int(r, "file_size", (int64_t)size);
  if (rc == 0) rc = rtq_args_set_int(r, "processed_bytes", (int64_t)done);
  if (rc == 0) rc = rtq_args_set_int(r, "chunks", (int64_t)chunks);
  if (rc == 0) rc = rtq_args_set_str(r, "status", "processed");
  if (rc == 0) rc = rtq_task_set_result(t, r);
  rtq_args_free(r);
  return rc;
}

static int process_file(rtq_task_ctx *t, void *userdata) {
  (void)userdata;
  char path[PATH_MAX];
  int64_t delay_ms;
  if (rtq__ex_str_arg(t, "file_path", NULL, path, sizeof path) != 0 ||
      rtq__ex_int_arg(t, "delay_ms", 0, 0, 60000, &delay_ms) != 0)
    return 0;

  /* O_NONBLOCK: opening a FIFO must not hang the slot; it is refused below. */
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) return fail_errno(t, path, errno, "open");
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int err = errno;
    close(fd);
    return fail_errno(t, path, err, "stat");
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return rtq__ex_fail(t, "NOT_A_FILE", rtq__ex_details("file_path", path),
                        "%s is not a regular file", path);
  }

  uint64_t size = (uint64_t)st.st_size, done = 0, chunks = 0;
  char buf[CHUNK];
  report(t, 0, size);
  for (;;) {
    if (rtq_task_cancelled(t)) break;
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      close(fd);
      return fail_errno(t, path, err, "read");
    }
    if (n == 0) break;
    /* The "processing" of a chunk would go here (parse, hash, upload...). */
    done += (uint64_t)n;
    chunks++;
    report(t, done, size);
    if (delay_ms > 0 && rtq_task_sleep_ms(t, (uint64_t)delay_ms) != 0) break;
  }
  close(fd);
  /* Cancelled or timed out: the worker records which; no result. */
  if (rtq_task_cancelled(t)) return 0;
  return set_result(t, path, size, done, chunks);
}

int rtq__ex_register_file(rtq_worker *w) {
  return rtq_worker_register(w, "examples.process_file", process_file, NULL);
}
