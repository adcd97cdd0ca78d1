/*
 * outcome.h - what a handler's run produced, and the one place that turns
 * a handler's error and result into what finish.lua stores.
 *
 * Handlers are not trusted, whatever runs them: a C handler in a thread, a
 * forked child writing frames to a pipe, or a handler process in another
 * language. Each error field therefore has one limit, the same everywhere,
 * and text is made well-formed UTF-8 (events and JSON output need it; a
 * bad byte becomes U+FFFD):
 *
 *   code        RTQ__CODE_MAX bytes; an empty code becomes HANDLER_ERROR
 *   message     RTQ__MESSAGE_MAX bytes
 *   details     a msgpack map of at most RTQ__DETAILS_MAX bytes, within the
 *               depth limit; anything else is dropped and said so in the
 *               message
 *   traceback   RTQ__TRACEBACK_MAX bytes
 *   result      valid msgpack of at most the worker's max_result bytes
 *
 * Longer text is cut (at a byte boundary; a sequence cut in two becomes
 * U+FFFD).
 */
#ifndef RTQ_WORKER_OUTCOME_H
#define RTQ_WORKER_OUTCOME_H

#include <stddef.h>

#include "rtq/common.h"

#define RTQ__CODE_MAX 64
#define RTQ__MESSAGE_MAX (64 * 1024)
#define RTQ__DETAILS_MAX (64 * 1024)
#define RTQ__TRACEBACK_MAX (64 * 1024)

typedef struct rtq__outcome {
  rtq_status status;
  char *result;
  size_t result_len;
  char *code;
  char *message;
  char *details;
  size_t details_len;
  char *traceback;
} rtq__outcome;

void rtq__outcome_destroy(rtq__outcome *o);

/*
 * Replaces o's error with the given fields, applying the limits above.
 * Each text is (pointer, length) and may hold any bytes; NULL or length 0
 * means absent (an absent code becomes HANDLER_ERROR). Sets status failed
 * and drops any result. 0 or RTQ_ENOMEM (o then holds no error fields).
 */
int rtq__outcome_set_error(rtq__outcome *o, const char *code, size_t code_len, const char *message,
                           size_t message_len, const char *details, size_t details_len,
                           const char *traceback, size_t traceback_len);

/*
 * Stores a copy of a result after checking it: RTQ_ETOOBIG over max,
 * RTQ_EINVAL when it is not one well-formed msgpack value within the depth
 * limit, RTQ_ENOMEM. o is unchanged on error.
 */
int rtq__outcome_set_result(rtq__outcome *o, const char *buf, size_t len, size_t max);

#endif
