/*
 * limits.c - a queue's fleet-wide rate and concurrency limits (client.h).
 *
 * The limits are a hash every worker's claim step reads (common/lua2,
 * prelude's gate_open): {ns:Q}:limit holds `rate` (tasks per second, plain
 * decimal text), `burst` and `conc` (whole numbers). Nothing else needs
 * telling: the next take or claim on the queue applies them. The gate
 * ignores a value that does not validate, so this file writes only values
 * it has checked against the same bounds, and reads back as "no limit"
 * what the gate would not apply.
 */
#include "client_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys2.h"

/* Checks queue, and clears the detail. */
static int begin(rtq_client *c, const char *queue) {
  rtq__client_clear_err(c);
  return rtq__check_name(c, "queue", queue);
}

/* The rate as the gate reads it: plain decimal digits with an optional
 * point, no sign or exponent; at most 6 decimals, trailing zeros cut. */
static void format_rate(double rate, char buf[32]) {
  snprintf(buf, 32, "%.6f", rate);
  char *dot = strchr(buf, '.');
  if (dot == NULL) return;
  char *end = buf + strlen(buf) - 1;
  while (end > dot && *end == '0') *end-- = '\0';
  if (end == dot) *end = '\0';
}

static int check_limits(rtq_client *c, const rtq_queue_limits *l, unsigned which) {
  if (l == NULL || which == 0 || (which & ~(RTQ_LIMIT_RATE | RTQ_LIMIT_CONCURRENCY)) != 0) {
    rtq__client_err(c, "limits: give RTQ_LIMIT_RATE, RTQ_LIMIT_CONCURRENCY or both, with the values");
    return RTQ_EINVAL;
  }
  if (which & RTQ_LIMIT_RATE) {
    if (isnan(l->rate)) {
      rtq__client_err(c, "rate limit: not a number");
      return RTQ_EINVAL;
    }
    if (l->rate != 0 && !(l->rate >= RTQ_LIMIT_MIN_RATE && l->rate <= RTQ_LIMIT_MAX_RATE)) {
      rtq__client_err(c, "rate limit %g per second: out of range, %g to %.0f (0: no rate limit)", l->rate,
                      RTQ_LIMIT_MIN_RATE, RTQ_LIMIT_MAX_RATE);
      return RTQ_ERANGE;
    }
    if (l->burst > RTQ_LIMIT_MAX) {
      rtq__client_err(c, "burst %u: out of range, 1 to %u (0: the rate rounded up)", l->burst, RTQ_LIMIT_MAX);
      return RTQ_ERANGE;
    }
    if (l->rate == 0 && l->burst != 0) {
      rtq__client_err(c, "a burst needs a rate limit");
      return RTQ_EINVAL;
    }
  }
  if ((which & RTQ_LIMIT_CONCURRENCY) && l->concurrency > RTQ_LIMIT_MAX) {
    rtq__client_err(c, "concurrency limit %u: out of range, 1 to %u (0: no limit)", l->concurrency, RTQ_LIMIT_MAX);
    return RTQ_ERANGE;
  }
  return 0;
}

RTQ_EXTERN int rtq_queue_limit_set(rtq_client *c, const char *queue, const rtq_queue_limits *l, unsigned which) {
  int rc = begin(c, queue);
  if (rc == 0) rc = check_limits(c, l, which);
  /* Registered, so that rtq stats lists the queue with its limits before
   * its first task. */
  if (rc == 0) rc = rtq__queues2_register(c, queue);
  if (rc != 0) return rc;
  rtq_key2 key = rtq_keys2_limit(&c->keys2, queue);
  /* One HSET of the values given and one HDEL of the limits removed; a
   * claim between the two sees a mix of old and new limits, which is no
   * worse than either. */
  const char *set[8] = {"HSET", key.s}, *del[5] = {"HDEL", key.s};
  int nset = 2, ndel = 2;
  char rate[32], burst[16], conc[16];
  if (which & RTQ_LIMIT_RATE) {
    if (l->rate != 0) {
      format_rate(l->rate, rate);
      set[nset++] = "rate";
      set[nset++] = rate;
    } else {
      del[ndel++] = "rate";
    }
    if (l->burst != 0) {
      snprintf(burst, sizeof burst, "%u", l->burst);
      set[nset++] = "burst";
      set[nset++] = burst;
    } else {
      del[ndel++] = "burst";
    }
  }
  if (which & RTQ_LIMIT_CONCURRENCY) {
    if (l->concurrency != 0) {
      snprintf(conc, sizeof conc, "%u", l->concurrency);
      set[nset++] = "conc";
      set[nset++] = conc;
    } else {
      del[ndel++] = "conc";
    }
  }
  if (nset > 2 && (rc = rtq__client_words(c, NULL, nset, set)) != 0) return rc;
  if (ndel > 2) rc = rtq__client_words(c, NULL, ndel, del);
  return rc;
}

RTQ_EXTERN int rtq_queue_limit_clear(rtq_client *c, const char *queue) {
  int rc = begin(c, queue);
  if (rc != 0) return rc;
  /* The leases ({ns:Q}:slots) stay: each goes with its task's end, and a
   * concurrency limit set again meanwhile must count those still running. */
  rtq_key2 kl = rtq_keys2_limit(&c->keys2, queue), kb = rtq_keys2_bucket(&c->keys2, queue);
  return rtq__client_words(c, NULL, 3, (const char *[]){"DEL", kl.s, kb.s});
}

/* A reply element as text of at most 31 bytes, else "". */
static const char *text(const redisReply *r, char buf[32]) {
  buf[0] = '\0';
  if (r != NULL && r->type == REDIS_REPLY_STRING && r->len < 32 && memchr(r->str, '\0', r->len) == NULL)
    memcpy(buf, r->str, r->len + 1);
  return buf;
}

/* The gate's decimal(): digits, an optional point and digits, within
 * [lo, hi]; -1 when it is not one. */
static double read_decimal(const char *s, double lo, double hi) {
  size_t i = 0, digits = 0;
  while (s[i] >= '0' && s[i] <= '9') i++, digits++;
  if (digits == 0) return -1;
  if (s[i] == '.') {
    i++;
    while (s[i] >= '0' && s[i] <= '9') i++;
  }
  if (s[i] != '\0') return -1;
  double v = strtod(s, NULL);
  return v >= lo && v <= hi ? v : -1;
}

/* The gate's opt_whole() for a limit: 1..RTQ_LIMIT_MAX, else 0. */
static uint32_t read_whole(const char *s) {
  if (s[0] == '\0' || strlen(s) > 15 || strspn(s, "0123456789") != strlen(s)) return 0;
  unsigned long long v = strtoull(s, NULL, 10);
  return v >= 1 && v <= RTQ_LIMIT_MAX ? (uint32_t)v : 0;
}

/* The default burst: the rate rounded up, at least 1 (without libm). */
static double rate_ceil(double rate) {
  uint64_t u = (uint64_t)rate;
  if ((double)u < rate) u++;
  return u < 1 ? 1 : (double)u;
}

void rtq__limits2_from_reply(const redisReply *r, rtq_queue_limits *out) {
  char v[3][32];
  memset(out, 0, sizeof *out);
  for (int i = 0; i < 3; i++)
    text(r != NULL && r->type == REDIS_REPLY_ARRAY && (size_t)i < r->elements ? r->element[i] : NULL, v[i]);
  double rate = read_decimal(v[0], RTQ_LIMIT_MIN_RATE, RTQ_LIMIT_MAX_RATE);
  if (rate > 0) {
    out->rate = rate;
    out->burst = read_whole(v[1]);
  }
  out->concurrency = read_whole(v[2]);
}

/* HMGET key f1 f2 f3 into three texts. */
static int hmget3(rtq_client *c, const char *key, const char *f1, const char *f2, const char *f3,
                  char out[3][32]) {
  redisReply *r = NULL;
  int n = f3 != NULL ? 5 : 4;
  int rc = rtq__client_words(c, &r, n, (const char *[]){"HMGET", key, f1, f2, f3});
  if (rc != 0) return rc;
  for (int i = 0; i < 3; i++) text(r->type == REDIS_REPLY_ARRAY && (size_t)i < r->elements ? r->element[i] : NULL, out[i]);
  freeReplyObject(r);
  return 0;
}

RTQ_EXTERN int rtq_queue_limit_get(rtq_client *c, const char *queue, rtq_queue_limits *out,
                                   rtq_queue_limit_usage *usage) {
  if (out != NULL) memset(out, 0, sizeof *out);
  if (usage != NULL) *usage = (rtq_queue_limit_usage){.tokens = -1};
  int rc = begin(c, queue);
  if (rc != 0) return rc;
  if (out == NULL) {
    rtq__client_err(c, "out is NULL");
    return RTQ_EINVAL;
  }
  rtq_key2 kl = rtq_keys2_limit(&c->keys2, queue);
  redisReply *r = NULL;
  if ((rc = rtq__client_words(c, &r, 5, (const char *[]){"HMGET", kl.s, "rate", "burst", "conc"})) != 0) return rc;
  rtq__limits2_from_reply(r, out);
  freeReplyObject(r);
  double rate = out->rate;
  if (usage == NULL) return 0;
  char v[3][32];
  uint64_t now;
  if ((rc = rtq_client_time_ms(c, &now)) != 0) return rc;
  if (rate > 0) {
    /* As the gate refills: from the stored tokens (a full bucket when
     * there are none yet) at `rate` since the last refill, up to burst. */
    double burst = out->burst ? out->burst : rate_ceil(rate);
    rtq_key2 kb = rtq_keys2_bucket(&c->keys2, queue);
    if ((rc = hmget3(c, kb.s, "t", "ts", NULL, v)) != 0) return rc;
    double t = read_decimal(v[0], 0, burst);
    /* A refill time that is not plain digits, or lies ahead, counts as
     * now (as the gate reads it). */
    uint64_t ts = v[1][0] && strspn(v[1], "0123456789") == strlen(v[1]) ? strtoull(v[1], NULL, 10) : now;
    if (t < 0) t = burst;
    if (ts > now) ts = now;
    double refilled = t + (double)(now - ts) * rate / 1000.0;
    usage->tokens = refilled < burst ? refilled : burst;
    usage->burst = (uint32_t)burst;
  }
  rtq_key2 ks = rtq_keys2_slots(&c->keys2, queue);
  char min[32];
  snprintf(min, sizeof min, "(%llu", (unsigned long long)now);
  if ((rc = rtq__client_words(c, &r, 4, (const char *[]){"ZCOUNT", ks.s, min, "+inf"})) != 0) return rc;
  usage->running = r->type == REDIS_REPLY_INTEGER && r->integer > 0 ? (uint64_t)r->integer : 0;
  freeReplyObject(r);
  return 0;
}
