/*
 * data_export.c - examples.export_data: writes N generated records to a CSV
 * or JSON file in an output folder, with progress every 100 records.
 *
 *   args    {format: "csv"|"json" = "csv", records: int = 1000 (0..10000000),
 *            output_dir: str = $TMPDIR or /tmp, delay_ms: int = 0}
 *           delay_ms is a pause after every 100 records (demos)
 *   result  {filename, format, total_records, bytes}
 *   errors  INVALID_FORMAT (details {format, supported}), INVALID_ARGUMENT,
 *           OUTPUT_DIR_NOT_FOUND, PERMISSION_DENIED, IO_ERROR
 *
 * The file is <output_dir>/export-<task id>.<format>. It is written as
 * <name>.part and renamed when complete, so a reader never sees half an
 * export under the final name; a cancelled, timed-out or failed export
 * removes its .part file. A redelivered task (its worker died) overwrites
 * the previous attempt's leftovers.
 *
 * Record i (1-based) is the same in both formats:
 *   id=i, name="User i", email="user<i>@example.com", score=(i*37)%100,
 *   active=(i%3 != 0)
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "examples.h"

#define MAX_RECORDS 10000000
#define PROGRESS_EVERY 100
#define CANCELLED (-1) /* write_all: not an errno value */

typedef enum { FMT_CSV, FMT_JSON } export_format;

static int write_record(FILE *f, export_format fmt, int64_t i, int64_t n) {
  long long id = (long long)i;
  int score = (int)((i * 37) % 100);
  const char *active = i % 3 != 0 ? "true" : "false";
  if (fmt == FMT_CSV)
    return fprintf(f, "%lld,User %lld,user%lld@example.com,%d,%s\n", id, id, id, score, active);
  return fprintf(f, "{\"id\":%lld,\"name\":\"User %lld\",\"email\":\"user%lld@example.com\","
                    "\"score\":%d,\"active\":%s}%s\n",
                 id, id, id, score, active, i < n ? "," : "");
}

static int fail_invalid_format(rtq_task_ctx *t, const char *format) {
  rtq_args *d = rtq__ex_details("format", format);
  rtq_args *supported = rtq_args_new_array();
  if (supported != NULL) {
    rtq_args_push_str(supported, "csv");
    rtq_args_push_str(supported, "json");
  }
  if (d != NULL && supported != NULL) rtq_args_set_child(d, "supported", supported);
  else rtq_args_free(supported);
  return rtq__ex_fail(t, "INVALID_FORMAT", d, "unsupported export format \"%s\" (csv or json)",
                      format);
}

/* Reads the format argument (absent: csv). Anything but "csv" or "json"
 * fails t with INVALID_FORMAT and returns -1. */
static int format_arg(rtq_task_ctx *t, export_format *fmt) {
  const rtq_args *a = rtq_task_args(t);
  const char *s = "csv";
  size_t len = 3;
  if (a == NULL) {
    rtq__ex_fail(t, "INVALID_ARGUMENT", NULL, "out of memory reading the arguments");
    return -1;
  }
  if (rtq_args_has(a, "format") && rtq_args_get_str(a, "format", &s, &len) != 0) {
    s = "(not a string)";
    len = strlen(s);
  }
  if (len == 3 && memcmp(s, "csv", 3) == 0) {
    *fmt = FMT_CSV;
    return 0;
  }
  if (len == 4 && memcmp(s, "json", 4) == 0) {
    *fmt = FMT_JSON;
    return 0;
  }
  char shown[64];
  snprintf(shown, sizeof shown, "%.*s", (int)(len > 48 ? 48 : len), s);
  fail_invalid_format(t, shown);
  return -1;
}

static int fail_io(rtq_task_ctx *t, const char *path, int err, const char *what) {
  char ebuf[128];
  const char *code = err == EACCES || err == EPERM ? "PERMISSION_DENIED" : "IO_ERROR";
  return rtq__ex_fail(t, code, rtq__ex_details("filename", path), "cannot %s %s: %s", what, path,
                      rtq__ex_strerror(err, ebuf, sizeof ebuf));
}

static void report(rtq_task_ctx *t, int64_t done, int64_t n) {
  char msg[64];
  snprintf(msg, sizeof msg, "%lld/%lld records", (long long)done, (long long)n);
  rtq_task_progress(t, n == 0 ? 100.0 : (double)done * 100.0 / (double)n, msg);
}

/*
 * Writes the records to f. Returns 0 when all were written, CANCELLED when
 * the task was cancelled (or timed out) on the way, or an errno value.
 */
static int write_all(rtq_task_ctx *t, FILE *f, export_format fmt, int64_t n, int64_t delay_ms) {
  if (fmt == FMT_CSV ? fputs("id,name,email,score,active\n", f) < 0 : fputs("[\n", f) < 0)
    return errno ? errno : EIO;
  for (int64_t i = 1; i <= n; i++) {
    if (rtq_task_cancelled(t)) return CANCELLED;
    if (write_record(f, fmt, i, n) < 0) return errno ? errno : EIO;
    if (i % PROGRESS_EVERY == 0) {
      report(t, i, n);
      if (delay_ms > 0 && i < n && rtq_task_sleep_ms(t, (uint64_t)delay_ms) != 0) return CANCELLED;
    }
  }
  if (fmt == FMT_JSON && fputs("]\n", f) < 0) return errno ? errno : EIO;
  if (fflush(f) != 0) return errno ? errno : EIO;
  report(t, n, n);
  return 0;
}

static int set_result(rtq_task_ctx *t, const char *path, const char *format, int64_t n,
                      int64_t bytes) {
  rtq_args *r = rtq_args_new();
  if (r == NULL) return RTQ_ENOMEM;
  int rc = rtq_args_set_str(r, "filename", path);
  if (rc == 0) rc = rtq_args_set_str(r, "format", format);
  if (rc == 0) rc = rtq_args_set_int(r, "total_records", n);
  if (rc == 0) rc = rtq_args_set_int(r, "bytes", bytes);
  if (rc == 0) rc = rtq_task_set_result(t, r);
  rtq_args_free(r);
  return rc;
}

static int export_data(rtq_task_ctx *t, void *userdata) {
  (void)userdata;
  char dir[PATH_MAX];
  int64_t n, delay_ms;
  export_format fmt;
  const char *tmp = getenv("TMPDIR");
  if (tmp == NULL || tmp[0] == '\0') tmp = "/tmp";
  if (format_arg(t, &fmt) != 0 || rtq__ex_int_arg(t, "records", 1000, 0, MAX_RECORDS, &n) != 0 ||
      rtq__ex_str_arg(t, "output_dir", tmp, dir, sizeof dir) != 0 ||
      rtq__ex_int_arg(t, "delay_ms", 0, 0, 60000, &delay_ms) != 0)
    return 0;
  const char *format = fmt == FMT_CSV ? "csv" : "json";

  struct stat st;
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
    return rtq__ex_fail(t, "OUTPUT_DIR_NOT_FOUND", rtq__ex_details("output_dir", dir),
                        "output folder %s does not exist or is not a folder", dir);
  }
  char path[PATH_MAX], part[PATH_MAX + 8];
  int len = snprintf(path, sizeof path, "%s/export-%s.%s", dir, rtq_task_id(t), format);
  if (len < 0 || (size_t)len >= sizeof path) {
    return rtq__ex_fail(t, "INVALID_ARGUMENT", rtq__ex_details("output_dir", dir),
                        "output_dir is too long");
  }
  snprintf(part, sizeof part, "%s.part", path);

  int fd = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) return fail_io(t, part, errno, "create");
  FILE *f = fdopen(fd, "w");
  if (f == NULL) {
    int err = errno;
    close(fd);
    unlink(part);
    return fail_io(t, part, err, "open");
  }
  errno = 0;
  int wr = write_all(t, f, fmt, n, delay_ms);
  long bytes = wr == 0 ? ftell(f) : -1;
  if (fclose(f) != 0 && wr == 0) wr = errno ? errno : EIO;
  if (wr == 0 && rename(part, path) != 0) wr = errno;
  if (wr != 0) {
    unlink(part);
    return wr == CANCELLED ? 0 : fail_io(t, path, wr, "write");
  }
  return set_result(t, path, format, n, bytes);
}

int rtq__ex_register_export(rtq_worker *w) {
  return rtq_worker_register(w, "examples.export_data", export_data, NULL);
}
