/*
 * rtq/common.h - what every rtq user shares: the export macro, error codes
 * and the task status model.
 *
 * Error convention: a function that can fail returns int, 0 on success or a
 * negative RTQ_E* code. Handles (client, worker) carry a detail string that
 * repeats a Redis error reply word for word.
 */
#ifndef RTQ_COMMON_H
#define RTQ_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "rtq/version.h"

#if defined(RTQ_BUILDING) && defined(__GNUC__)
#define RTQ_EXTERN __attribute__((visibility("default")))
#else
#define RTQ_EXTERN
#endif

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The error list. Each entry: name (after RTQ_E), value, message.
 * Values are stable and part of the ABI; append, never renumber.
 */
#define RTQ_ERRNO_MAP(XX)                                                   \
  XX(INVAL, -1, "invalid argument")                                        \
  XX(NOMEM, -2, "out of memory")                                           \
  XX(NOTFOUND, -3, "no such task")                                         \
  XX(STATE, -4, "task is in a state that does not allow this")            \
  XX(TIMEDOUT, -5, "timed out")                                            \
  XX(REDIS, -6, "redis returned an error")                                 \
  XX(CONN, -7, "redis connection failed or was lost")                      \
  XX(OOM, -8, "redis is out of memory (maxmemory reached)")                \
  XX(DECODE, -9, "payload does not decode")                                \
  XX(TOOBIG, -10, "payload exceeds the size limit")                        \
  XX(DEPTH, -11, "payload nesting exceeds the depth limit")                \
  XX(TYPE, -12, "value has another type")                                  \
  XX(JSON, -13, "invalid JSON")                                            \
  XX(EXIST, -14, "already exists")                                         \
  XX(STALE, -15, "write fenced off: the task is no longer ours")           \
  XX(VERSION, -16, "unsupported envelope format version")                  \
  XX(IO, -17, "local I/O or system call failed")                           \
  XX(RANGE, -18, "value out of range")                                     \
  XX(UNKNOWN, -19, "unknown task name")                                    \
  XX(REPLICAS, -20, "written, but fewer replicas than asked acknowledged it") \
  XX(PROTOCOL, -21, "the namespace holds data of another protocol version") \
  XX(UNVERIFIED, -22, "the task's outcome is not signed by a known worker key")

enum rtq_errno {
  RTQ_OK = 0,
#define RTQ__ERRNO_ENUM(name, val, msg) RTQ_E##name = (val),
  RTQ_ERRNO_MAP(RTQ__ERRNO_ENUM)
#undef RTQ__ERRNO_ENUM
};

/* Message for an RTQ_E* code; a static string, never NULL. */
RTQ_EXTERN const char *rtq_strerror(int err);
/* Symbolic name ("RTQ_ENOTFOUND") for a code; a static string, never NULL. */
RTQ_EXTERN const char *rtq_err_name(int err);

/*
 * Task states. The strings are exact and lowercase; they are what Redis
 * stores in the task hash's "status" field.
 *
 *            create               claim              finish
 *   (none) ---------> pending ----------> running ------------> completed
 *                       |  ^                 |                   failed
 *                       |  | retry/redeliver |                   cancelled
 *                       |  +-----------------+                   timeout
 *                       +---- cancel ---------------------------> cancelled
 *
 * completed, failed, cancelled and timeout are terminal: the first terminal
 * write wins and nothing leaves a terminal state (except an explicit
 * `rtq retry`, which re-creates the task as pending).
 */
typedef enum rtq_status {
  RTQ_STATUS_PENDING = 0,
  RTQ_STATUS_RUNNING,
  RTQ_STATUS_COMPLETED,
  RTQ_STATUS_FAILED,
  RTQ_STATUS_CANCELLED,
  RTQ_STATUS_TIMEOUT
} rtq_status;

#define RTQ_STATUS_COUNT 6

/* "pending", "running", ...; "unknown" for an out-of-range value. */
RTQ_EXTERN const char *rtq_status_name(rtq_status s);
/* Parses an exact lowercase status string; RTQ_EINVAL if it is none. */
RTQ_EXTERN int rtq_status_parse(const char *s, rtq_status *out);
/* 1 for completed, failed, cancelled and timeout; else 0. */
RTQ_EXTERN int rtq_status_is_terminal(rtq_status s);

/* Validates a task id, task name or queue name: ^[A-Za-z0-9._:-]{1,128}$.
 * Returns 0 or RTQ_EINVAL. s may be NULL (RTQ_EINVAL). */
RTQ_EXTERN int rtq_validate_name(const char *s);

#ifdef __cplusplus
}
#endif
#endif
