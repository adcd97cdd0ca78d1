/*
 * bulk_email.c - examples.send_emails: sends one message per recipient and
 * reports progress per recipient.
 *
 *   args    {recipients: [str], fail: [str] = [], delay_ms: int = 100,
 *            subject: str = "Hello from rtq"}
 *   result  {total_recipients, sent_count, failed_count, failed: [str],
 *            subject}
 *   errors  INVALID_ARGUMENT (recipients missing or not a list of strings)
 *
 * The send is simulated: a pause of delay_ms per recipient. An address
 * listed in fail, or one without an '@', is a failed delivery: it is
 * counted and listed (the first MAX_LISTED of them) and the task carries
 * on, as a real bulk mailer would with a bounced address. The task itself
 * fails only when its input is unusable.
 */
#include <stdio.h>
#include <string.h>

#include "examples.h"

#define MAX_RECIPIENTS 100000
#define MAX_LISTED 1000

/*
 * Reads the list argument key into *out: an array of at most max strings.
 * Absent: *out = NULL and 0, unless required. Otherwise fails t with
 * INVALID_ARGUMENT and returns -1.
 */
static int list_arg(rtq_task_ctx *t, const rtq_args *a, const char *key, bool required, size_t max,
                    const rtq_args **out) {
  *out = NULL;
  if (!rtq_args_has(a, key) && !required) return 0;
  const rtq_args *list = NULL;
  bool ok = rtq_args_get_child(a, key, &list) == 0 && rtq_args_type(list) == RTQ_TYPE_ARRAY &&
            rtq_args_count(list) <= max;
  for (size_t i = 0; ok && i < rtq_args_count(list); i++) {
    const rtq_args *v;
    const char *s;
    size_t len;
    ok = rtq_args_at(list, i, &v) == 0 && rtq_args_as_str(v, &s, &len) == 0;
  }
  if (!ok) {
    rtq__ex_fail(t, "INVALID_ARGUMENT", rtq__ex_details("argument", key),
                 "%s must be a list of at most %zu addresses (strings)", key, max);
    return -1;
  }
  *out = list;
  return 0;
}

static bool str_at(const rtq_args *list, size_t i, const char **s, size_t *len) {
  const rtq_args *v;
  return rtq_args_at(list, i, &v) == 0 && rtq_args_as_str(v, s, len) == 0;
}

/* True when addr (len bytes) appears in the array fail (may be NULL). */
static bool listed(const rtq_args *fail, const char *addr, size_t len) {
  size_t n = fail == NULL ? 0 : rtq_args_count(fail);
  for (size_t i = 0; i < n; i++) {
    const char *s;
    size_t slen;
    if (str_at(fail, i, &s, &slen) && slen == len && memcmp(s, addr, len) == 0) return true;
  }
  return false;
}

/* The simulated SMTP exchange. A real handler would talk to a mail relay
 * here and return false on a permanent rejection. */
static bool deliver(const rtq_args *fail, const char *addr, size_t len) {
  if (len == 0 || memchr(addr, '@', len) == NULL) return false;
  return !listed(fail, addr, len);
}

static int send_emails(rtq_task_ctx *t, void *userdata) {
  (void)userdata;
  const rtq_args *a = rtq_task_args(t);
  const rtq_args *to = NULL, *fail = NULL;
  int64_t delay_ms;
  char subject[256];
  if (a == NULL) return RTQ_ENOMEM;
  if (list_arg(t, a, "recipients", true, MAX_RECIPIENTS, &to) != 0 ||
      list_arg(t, a, "fail", false, MAX_RECIPIENTS, &fail) != 0)
    return 0;
  if (rtq__ex_int_arg(t, "delay_ms", 100, 0, 60000, &delay_ms) != 0 ||
      rtq__ex_str_arg(t, "subject", "Hello from rtq", subject, sizeof subject) != 0)
    return 0;

  rtq_args *failed = rtq_args_new_array();
  if (failed == NULL) return RTQ_ENOMEM;
  size_t total = rtq_args_count(to), sent = 0, nfailed = 0;
  char msg[160];
  for (size_t i = 0; i < total; i++) {
    /* The pause stands for the SMTP round trip; it wakes on a cancel. */
    bool stop = delay_ms > 0 ? rtq_task_sleep_ms(t, (uint64_t)delay_ms) != 0 : rtq_task_cancelled(t);
    if (stop) {
      rtq_args_free(failed);
      return 0; /* cancelled or timed out: the worker records which */
    }
    const char *addr;
    size_t len;
    str_at(to, i, &addr, &len); /* checked above */
    if (deliver(fail, addr, len)) {
      sent++;
    } else {
      nfailed++;
      if (nfailed <= MAX_LISTED) rtq_args_push_strn(failed, addr, len);
    }
    snprintf(msg, sizeof msg, "%zu/%zu recipients (%zu failed), last %.*s", i + 1, total, nfailed,
             (int)(len > 80 ? 80 : len), addr);
    rtq_task_progress(t, (double)(i + 1) * 100.0 / (double)total, msg);
  }

  rtq_args *r = rtq_args_new();
  int rc = r == NULL ? RTQ_ENOMEM : 0;
  if (rc == 0) rc = rtq_args_set_int(r, "total_recipients", (int64_t)total);
  if (rc == 0) rc = rtq_args_set_int(r, "sent_count", (int64_t)sent);
  if (rc == 0) rc = rtq_args_set_int(r, "failed_count", (int64_t)nfailed);
  if (rc == 0) rc = rtq_args_set_str(r, "subject", subject);
  if (rc == 0) {
    rc = rtq_args_set_child(r, "failed", failed); /* takes failed, also on error */
    failed = NULL;
  }
  if (rc == 0) rc = rtq_task_set_result(t, r);
  rtq_args_free(failed);
  rtq_args_free(r);
  return rc;
}

int rtq__ex_register_email(rtq_worker *w) {
  return rtq_worker_register(w, "examples.send_emails", send_emails, NULL);
}
