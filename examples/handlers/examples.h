/*
 * examples.h - what the example handlers share (internal to examples.so).
 *
 * The plugin registers three handlers, the services a web framework's
 * background-task docs traditionally show:
 *
 *   examples.process_file  {file_path, delay_ms=0}
 *       reads the file in 1 KiB chunks, progress by bytes;
 *       result {file_path, file_size, processed_bytes, chunks, status}
 *   examples.send_emails   {recipients:[...], fail:[...], delay_ms=100, subject}
 *       "sends" one message per recipient (a simulated delay); an address
 *       in fail, or one without '@', counts as failed;
 *       result {total_recipients, sent_count, failed_count, failed:[...]}
 *   examples.export_data   {format="csv"|"json", records=1000, output_dir=$TMPDIR|/tmp,
 *                           delay_ms=0 (per 100 records)}
 *       writes generated records, progress every 100;
 *       result {filename, format, total_records, bytes}
 *
 * Every handler polls rtq_task_cancelled() (or sleeps with
 * rtq_task_sleep_ms(), which wakes on a cancel) between units of work, and
 * fails with an upper-case error code a caller can branch on:
 * INVALID_ARGUMENT, FILE_NOT_FOUND, PERMISSION_DENIED, NOT_A_FILE,
 * IO_ERROR, INVALID_FORMAT, OUTPUT_DIR_NOT_FOUND.
 *
 * The plugin links nothing of rtq: the rtq_task_* and rtq_args_* calls
 * resolve against the rtq-worker binary that dlopen()s it.
 */
#ifndef RTQ_EXAMPLES_H
#define RTQ_EXAMPLES_H

#include <stdbool.h>
#include <stdint.h>

#include "rtq/worker.h"

/* Handler registration, one per example file. Return rtq_worker_register's code. */
int rtq__ex_register_file(rtq_worker *w);
int rtq__ex_register_email(rtq_worker *w);
int rtq__ex_register_export(rtq_worker *w);

/*
 * Fails t with code and a printf-style message. details (may be NULL) is a
 * map whose ownership passes to this function. Returns 0, so a handler can
 * end with `return rtq__ex_fail(...)`: the failure is recorded by
 * rtq_task_fail and a 0 return keeps the code it set. When rtq_task_fail
 * itself fails (out of memory) its code is returned and the worker fails
 * the task with HANDLER_ERROR.
 */
int rtq__ex_fail(rtq_task_ctx *t, const char *code, rtq_args *details, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A details map {key: val} (NULL when out of memory, which rtq__ex_fail accepts). */
rtq_args *rtq__ex_details(const char *key, const char *val);

/*
 * Reads an optional integer argument. Absent: *out = def, returns 0.
 * Present but not an integer, or outside [lo, hi]: fails the task with
 * INVALID_ARGUMENT and returns -1 (the handler then returns 0).
 */
int rtq__ex_int_arg(rtq_task_ctx *t, const char *key, int64_t def, int64_t lo, int64_t hi,
                    int64_t *out);

/*
 * Copies a string argument into buf. Absent: def (NULL makes it required).
 * Missing when required, not a string, empty, containing a NUL or longer than
 * cap - 1: fails the task with INVALID_ARGUMENT and returns -1.
 */
int rtq__ex_str_arg(rtq_task_ctx *t, const char *key, const char *def, char *buf, size_t cap);

/* The error code for a failed open()/stat() errno: FILE_NOT_FOUND,
 * PERMISSION_DENIED or IO_ERROR. */
const char *rtq__ex_errno_code(int err);

/* strerror, thread-safe: writes into buf (cap >= 64) and returns the text. */
const char *rtq__ex_strerror(int err, char *buf, size_t cap);

#endif
