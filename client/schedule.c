/*
 * schedule.c - periodic tasks (client.h, "periodic tasks").
 *
 * Three keys under the namespace's tag (keys2.h): {ns}:schedules maps a
 * schedule id to its definition, a JSON object {cron, name, queue, args,
 * timeout_ms, tz, paused, created_at}, written only by the calls an
 * operator makes (add, pause, resume); {ns}:schedules:due scores each
 * unpaused schedule by its next run; {ns}:schedules:last holds the due
 * time of the run last enqueued, written by
 * the scheduler. Keeping the scheduler's writes out of the definition means
 * a pause never races with a run being recorded. Each call's writes go in
 * one MULTI/EXEC (rtq__client_multi), so a reader never sees a part of a
 * change, and a process that dies between them never leaves a definition
 * that is unpaused but never scored.
 *
 * Exactly once: the run of a schedule due at ms T is the task
 * "cron:<id>:<T>". The scheduler creates it first and records it after; a
 * scheduler that dies in between, or two that run at once, compute the same
 * T from the same last run and create the same id, which the create script
 * turns into "exists already". Runs missed while no scheduler ran are skipped
 * except the latest (cron.h, rtq_cron_due).
 */
#include "client_internal.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cron.h"
#include "log.h"

/* More schedules than this are not read by one list call. */
#define LIST_MAX 10000
#define DEF_MAX 65536

/* The three keys, under the namespace's tag: {ns}:schedules... */
static rtq_key2 key_defs(const rtq_client *c) { return rtq_keys2_schedules(&c->keys2); }
static rtq_key2 key_due(const rtq_client *c) { return rtq_keys2_schedules_due(&c->keys2); }
static rtq_key2 key_last(const rtq_client *c) { return rtq_keys2_schedules_last(&c->keys2); }

static int check_id(rtq_client *c, const char *id) {
  if (id == NULL || rtq_validate_name(id) != 0 || strlen(id) > RTQ_SCHEDULE_ID_MAX) {
    rtq__client_err(c, "invalid schedule id: expected 1..%d of A-Z a-z 0-9 . _ : -", RTQ_SCHEDULE_ID_MAX);
    return RTQ_EINVAL;
  }
  return 0;
}

static int redis_time(rtq_client *c, uint64_t *now) {
  rtq_conn *conn;
  int rc = rtq__pool_get(c, &conn);
  if (rc != 0) return rc;
  if ((rc = rtq_conn_time_ms(conn, now)) != 0) rtq__client_conn_err(c, conn, rc, "redis");
  rtq__pool_put(c, conn);
  return rc;
}

/* The definition of id: a JSON object, NULL when there is none. */
static int read_def(rtq_client *c, const char *id, json_t **def) {
  rtq_key2 k = key_defs(c);
  redisReply *r = NULL;
  *def = NULL;
  int rc = rtq__client_words(c, &r, 3, (const char *[]){"HGET", k.s, id});
  if (rc != 0) return rc;
  if (r->type == REDIS_REPLY_STRING) {
    *def = json_loadb(r->str, r->len, JSON_ALLOW_NUL, NULL);
    if (*def == NULL || !json_is_object(*def)) {
      json_decref(*def);
      *def = NULL;
      rtq__client_err(c, "schedule %s: its stored definition is not a JSON object", id);
      rc = RTQ_EDECODE;
    }
  } else {
    rtq__client_err(c, "no schedule %s", id);
    rc = RTQ_ENOTFOUND;
  }
  freeReplyObject(r);
  return rc;
}

static const char *str_of(const json_t *def, const char *field) {
  const char *s = json_string_value(json_object_get(def, field));
  return s != NULL ? s : "";
}

static uint64_t num_of(const json_t *def, const char *field) {
  json_int_t v = json_integer_value(json_object_get(def, field));
  return v > 0 ? (uint64_t)v : 0;
}

/* P:schedules:last holds "<ms>", the due time of the last run enqueued, or
 * "from:<ms>", the time add or resume set as the start of the count (no
 * run). Returns that time; *ran tells which (may be NULL). */
static uint64_t read_last(rtq_client *c, const char *id, bool *ran) {
  rtq_key2 k = key_last(c);
  redisReply *r = NULL;
  uint64_t last = 0;
  if (ran != NULL) *ran = false;
  if (rtq__client_words(c, &r, 3, (const char *[]){"HGET", k.s, id}) == 0) {
    if (r->type == REDIS_REPLY_STRING && r->len > 5 && strncmp(r->str, "from:", 5) == 0) {
      last = rtq__parse_u64(r->str + 5, r->len - 5);
    } else if (r->type == REDIS_REPLY_STRING) {
      last = rtq__parse_u64(r->str, r->len);
      if (ran != NULL) *ran = last > 0;
    }
    freeReplyObject(r);
  }
  return last;
}

/* The first run of id (definition def) after `after`. */
static int next_run(rtq_client *c, const char *id, const json_t *def, uint64_t after, int64_t *next) {
  rtq_cron cr;
  char why[256];
  int rc = rtq_cron_parse(str_of(def, "cron"), &cr, why, sizeof why);
  if (rc == 0) rc = rtq_cron_next(&cr, str_of(def, "tz"), (int64_t)num_of(def, "created_at"), (int64_t)after, next);
  if (rc != 0)
    rtq__client_err(c, "schedule %s: no next run (%s)", id, rc == RTQ_EINVAL && why[0] ? why : "none within 8 years");
  return rc;
}

/* The definition as stored: compact JSON of at most DEF_MAX bytes, the
 * caller's to free; NULL with rc set when it cannot be. */
static char *def_text(rtq_client *c, const char *id, const json_t *def, int *rc) {
  char *text = json_dumps(def, JSON_COMPACT | JSON_SORT_KEYS);
  *rc = text == NULL ? RTQ_ENOMEM : 0;
  if (text != NULL && strlen(text) > DEF_MAX) {
    rtq__client_err(c, "schedule %s: its definition is over %d bytes", id, DEF_MAX);
    *rc = RTQ_ETOOBIG;
    free(text);
    text = NULL;
  }
  return text;
}

/* The first run of id after `after`, as the text ZADD takes. */
static int next_text(rtq_client *c, const char *id, const json_t *def, uint64_t after, char at[24]) {
  int64_t next = 0;
  int rc = next_run(c, id, def, after, &next);
  if (rc == 0) snprintf(at, 24, "%lld", (long long)next);
  return rc;
}

/* Scores id in {ns}:schedules:due by its first run after `after`. */
static int set_next(rtq_client *c, const char *id, const json_t *def, uint64_t after) {
  char at[24];
  int rc = next_text(c, id, def, after, at);
  rtq_key2 k = key_due(c);
  return rc != 0 ? rc : rtq__client_words(c, NULL, 4, (const char *[]){"ZADD", k.s, at, id});
}

int rtq_schedule_add(rtq_client *c, const char *id, const char *cron, const char *name, const rtq_args *args,
                     const rtq_schedule_options *opts) {
  rtq__client_clear_err(c);
  rtq_schedule_options o = {0};
  if (opts != NULL) o = *opts;
  const char *queue = o.queue != NULL ? o.queue : c->default_queue;
  rtq_cron cr;
  char why[256];
  int rc = check_id(c, id);
  if (rc != 0) return rc;
  if (cron == NULL || rtq_cron_parse(cron, &cr, why, sizeof why) != 0) {
    rtq__client_err(c, "invalid cron expression: %s", cron == NULL ? "none given" : why);
    return RTQ_EINVAL;
  }
  if ((rc = rtq__check_name(c, "task name", name)) != 0 || (rc = rtq__check_name(c, "queue", queue)) != 0)
    return rc;
  if (o.tz != NULL && o.tz[0] != '\0' && !rtq_cron_zone_known(o.tz)) {
    rtq__client_err(c, "unknown time zone \"%.64s\" (expected a name of the tz database, e.g. Europe/Berlin)", o.tz);
    return RTQ_EINVAL;
  }
  if (o.timeout_ms > RTQ_TASK_MAX_TIMEOUT_MS) {
    rtq__client_err(c, "timeout over %llu ms", (unsigned long long)RTQ_TASK_MAX_TIMEOUT_MS);
    return RTQ_ERANGE;
  }
  char *args_text = NULL;
  json_t *args_json = NULL;
  if (args != NULL && (rc = rtq_args_to_json(args, &args_text)) != 0) {
    rtq__client_err(c, "args cannot be written as JSON");
    return rc;
  }
  args_json = args_text != NULL ? json_loads(args_text, JSON_ALLOW_NUL, NULL) : json_object();
  free(args_text);
  if (!json_is_object(args_json)) {
    json_decref(args_json);
    rtq__client_err(c, "args must be a map");
    return RTQ_EINVAL;
  }
  uint64_t now = 0;
  json_t *old = NULL;
  if ((rc = redis_time(c, &now)) != 0 || ((rc = read_def(c, id, &old)) != 0 && rc != RTQ_ENOTFOUND)) {
    json_decref(args_json);
    return rc;
  }
  bool paused = old != NULL && json_is_true(json_object_get(old, "paused"));
  uint64_t created = old != NULL && num_of(old, "created_at") > 0 ? num_of(old, "created_at") : now;
  json_decref(old);
  json_t *def = json_pack("{s:s, s:s, s:s, s:o, s:I, s:s, s:b, s:I}", "cron", cron, "name", name, "queue", queue,
                          "args", args_json, "timeout_ms", (json_int_t)o.timeout_ms, "tz",
                          o.tz != NULL ? o.tz : "", "paused", paused, "created_at", (json_int_t)created);
  if (def == NULL) return RTQ_ENOMEM;
  rtq__client_clear_err(c);
  /* An expression that parses may still never run ("0 0 30 2 *"): refused
   * before anything is written, so an existing schedule stays as it was. */
  char at[24], nows[32];
  char *text = (rc = next_text(c, id, def, now, at)) == 0 ? def_text(c, id, def, &rc) : NULL;
  json_decref(def);
  if (rc != 0) return rc;
  snprintf(nows, sizeof nows, "from:%llu", (unsigned long long)now);
  rtq_key2 defs = key_defs(c), due = key_due(c), last = key_last(c);
  /* One transaction, so a process that dies half way never leaves a
   * definition that is unpaused but never scored. */
  const char *const hset[] = {"HSET", defs.s, id, text, NULL}, *const hsetnx[] = {"HSETNX", last.s, id, nows, NULL},
                    *const zadd[] = {"ZADD", due.s, at, id, NULL};
  rc = rtq__client_multi(c, NULL, (const char *const *const[]){hset, hsetnx, paused ? NULL : zadd, NULL});
  free(text);
  return rc;
}

int rtq_schedule_remove(rtq_client *c, const char *id) {
  rtq__client_clear_err(c);
  int rc = check_id(c, id);
  if (rc != 0) return rc;
  rtq_key2 k = key_defs(c), due = key_due(c),
          last = key_last(c);
  const char *const hdel[] = {"HDEL", k.s, id, NULL}, *const zrem[] = {"ZREM", due.s, id, NULL},
                    *const hdel_last[] = {"HDEL", last.s, id, NULL};
  redisReply *r = NULL;
  /* The due entry goes even when the definition was already gone. */
  if ((rc = rtq__client_multi(c, &r, (const char *const *const[]){hdel, zrem, hdel_last, NULL})) != 0) return rc;
  bool had = r->elements > 0 && r->element[0]->type == REDIS_REPLY_INTEGER && r->element[0]->integer == 1;
  freeReplyObject(r);
  if (!had) {
    rtq__client_err(c, "no schedule %s", id);
    rc = RTQ_ENOTFOUND;
  }
  return rc;
}

int rtq_schedule_set_paused(rtq_client *c, const char *id, bool paused) {
  rtq__client_clear_err(c);
  int rc = check_id(c, id);
  json_t *def = NULL;
  uint64_t now = 0;
  if (rc != 0 || (rc = read_def(c, id, &def)) != 0 || (rc = redis_time(c, &now)) != 0) {
    json_decref(def);
    return rc;
  }
  json_object_set_new(def, "paused", json_boolean(paused));
  rtq_key2 defs = key_defs(c), due = key_due(c), last = key_last(c);
  char at[24] = "", nows[32];
  snprintf(nows, sizeof nows, "from:%llu", (unsigned long long)now);
  /* Runs due while paused are not made up: the next is after now. */
  char *text = paused || (rc = next_text(c, id, def, now, at)) == 0 ? def_text(c, id, def, &rc) : NULL;
  json_decref(def);
  if (rc != 0) return rc;
  const char *const hset[] = {"HSET", defs.s, id, text, NULL}, *const zrem[] = {"ZREM", due.s, id, NULL},
                    *const hset_last[] = {"HSET", last.s, id, nows, NULL},
                    *const zadd[] = {"ZADD", due.s, at, id, NULL};
  rc = rtq__client_multi(c, NULL,
                         paused ? (const char *const *const[]){hset, zrem, NULL}
                                : (const char *const *const[]){hset, hset_last, zadd, NULL});
  free(text);
  return rc;
}

/* ---- listing ---- */

static void fill(rtq_schedule *s, const char *id, const json_t *def) {
  snprintf(s->id, sizeof s->id, "%s", id);
  snprintf(s->cron, sizeof s->cron, "%s", str_of(def, "cron"));
  snprintf(s->name, sizeof s->name, "%s", str_of(def, "name"));
  snprintf(s->queue, sizeof s->queue, "%s", str_of(def, "queue"));
  snprintf(s->tz, sizeof s->tz, "%s", str_of(def, "tz"));
  json_t *args = json_object_get(def, "args"), *empty = args == NULL ? json_object() : NULL;
  s->args_json = json_dumps(args != NULL ? args : empty, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
  json_decref(empty);
  s->timeout_ms = num_of(def, "timeout_ms");
  s->paused = json_is_true(json_object_get(def, "paused"));
  s->created_at = num_of(def, "created_at");
}

static int by_id(const void *a, const void *b) {
  return strcmp(((const rtq_schedule *)a)->id, ((const rtq_schedule *)b)->id);
}

/* The score of id in zset key (0 when absent). */
static uint64_t score_of(rtq_client *c, rtq_key2 key, const char *id) {
  redisReply *r = NULL;
  uint64_t v = 0;
  if (rtq__client_words(c, &r, 3, (const char *[]){"ZSCORE", key.s, id}) == 0) {
    if (r->type == REDIS_REPLY_STRING) v = (uint64_t)strtod(r->str, NULL);
    freeReplyObject(r);
  }
  return v;
}

int rtq_schedule_list(rtq_client *c, rtq_schedule **out, size_t *n) {
  rtq__client_clear_err(c);
  *out = NULL;
  *n = 0;
  rtq_key2 k = key_defs(c), due = key_due(c);
  rtq_schedule *list = NULL;
  size_t count = 0, cap = 0;
  char cursor[32] = "0";
  int rc = 0;
  /* HSCAN in pages, so a large set of schedules never costs one long call. */
  do {
    redisReply *r = NULL;
    if ((rc = rtq__client_words(c, &r, 5, (const char *[]){"HSCAN", k.s, cursor, "COUNT", "200"})) != 0) break;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING ||
        r->element[1]->type != REDIS_REPLY_ARRAY) {
      freeReplyObject(r);
      rc = RTQ_EREDIS;
      break;
    }
    snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
    const redisReply *kv = r->element[1];
    for (size_t i = 0; i + 1 < kv->elements && count < LIST_MAX; i += 2) {
      const redisReply *key = kv->element[i], *val = kv->element[i + 1];
      if (key->type != REDIS_REPLY_STRING || val->type != REDIS_REPLY_STRING || check_id(c, key->str) != 0) continue;
      json_t *def = json_loadb(val->str, val->len, JSON_ALLOW_NUL, NULL);
      if (!json_is_object(def)) {
        json_decref(def);
        continue;
      }
      if (count == cap) {
        size_t ncap = cap == 0 ? 16 : cap * 2;
        rtq_schedule *grown = realloc(list, ncap * sizeof *grown);
        if (grown == NULL) {
          json_decref(def);
          rc = RTQ_ENOMEM;
          break;
        }
        list = grown, cap = ncap;
      }
      memset(&list[count], 0, sizeof list[count]);
      fill(&list[count++], key->str, def);
      json_decref(def);
    }
    freeReplyObject(r);
  } while (rc == 0 && strcmp(cursor, "0") != 0 && count < LIST_MAX);
  rtq__client_clear_err(c);
  for (size_t i = 0; rc == 0 && i < count; i++) {
    list[i].next_run_ms = list[i].paused ? 0 : score_of(c, due, list[i].id);
    bool ran = false;
    uint64_t last = read_last(c, list[i].id, &ran);
    list[i].last_run_ms = ran ? last : 0;
  }
  if (rc != 0) {
    rtq_schedules_free(list, count);
    return rc;
  }
  if (count > 0) qsort(list, count, sizeof *list, by_id);
  *out = list;
  *n = count;
  return 0;
}

void rtq_schedules_free(rtq_schedule *s, size_t n) {
  if (s == NULL) return;
  for (size_t i = 0; i < n; i++) free(s[i].args_json);
  free(s);
}

/* ---- the scheduler's step ---- */

/* Enqueues the run of schedule id owed at now, then records it. */
static int fire_one(rtq_client *c, const char *id, uint64_t now, size_t *fired) {
  rtq_key2 due = key_due(c), last = key_last(c);
  json_t *def = NULL;
  int rc = read_def(c, id, &def);
  if (rc == RTQ_ENOTFOUND || (rc == 0 && json_is_true(json_object_get(def, "paused")))) {
    /* Removed or paused since it was scored: nothing is owed. */
    json_decref(def);
    return rtq__client_words(c, NULL, 3, (const char *[]){"ZREM", due.s, id});
  }
  rtq_cron cr;
  char why[256] = "";
  int64_t at = 0;
  if (rc == 0 && (rc = rtq_cron_parse(str_of(def, "cron"), &cr, why, sizeof why)) == 0) {
    rc = rtq_cron_due(&cr, str_of(def, "tz"), (int64_t)num_of(def, "created_at"), (int64_t)read_last(c, id, NULL),
                      (int64_t)now, &at);
  }
  if (rc == RTQ_ENOTFOUND) {
    rc = set_next(c, id, def, now); /* scored early: score it again */
  } else if (rc == RTQ_EINVAL || rc == RTQ_EDECODE) {
    rtq_log(RTQ_LOG_ERROR, "schedule cannot run; it stays unscored until it is added again", "schedule", id,
            "error", why[0] ? why : rtq_client_errstr(c), NULL);
    rc = rtq__client_words(c, NULL, 3, (const char *[]){"ZREM", due.s, id});
  } else if (rc == 0) {
    char task_id[RTQ_TASK_ID_SIZE], ats[24];
    snprintf(ats, sizeof ats, "%lld", (long long)at);
    snprintf(task_id, sizeof task_id, "cron:%s:%s", id, ats);
    rtq_args *args = NULL;
    /* A definition edited by hand may lack args: none is an empty map. */
    json_t *stored = json_object_get(def, "args"), *empty = stored == NULL ? json_object() : NULL;
    char *args_text = json_dumps(stored != NULL ? stored : empty, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(empty);
    rc = args_text != NULL ? rtq_args_from_json(args_text, &args, why, sizeof why) : RTQ_ENOMEM;
    free(args_text);
    rtq_task_options o = {.queue = str_of(def, "queue"), .id = task_id, .timeout_ms = num_of(def, "timeout_ms")};
    int created = 0;
    if (rc == 0) rc = rtq_create_task(c, str_of(def, "name"), args, &o, NULL, &created);
    rtq_args_free(args);
    if (rc == RTQ_EINVAL || rc == RTQ_ERANGE || rc == RTQ_ETOOBIG || rc == RTQ_EDEPTH) {
      /* The definition itself cannot make a task: stop, do not retry it
       * every sweep. */
      rtq_log(RTQ_LOG_ERROR, "schedule cannot make its task; it stays unscored until it is added again",
              "schedule", id, "error", rtq_client_errstr(c), NULL);
      rc = rtq__client_words(c, NULL, 3, (const char *[]){"ZREM", due.s, id});
    } else if (rc == 0 || rc == RTQ_EREPLICAS) {
      if (rc == RTQ_EREPLICAS) /* created all the same */
        rtq_log(RTQ_LOG_WARNING, "schedule run created, but fewer replicas than asked acknowledged it", "task",
                task_id, "error", rtq_client_errstr(c), NULL);
      if (created && fired != NULL) (*fired)++;
      rtq_log(created ? RTQ_LOG_INFO : RTQ_LOG_DEBUG, created ? "schedule ran" : "schedule run existed already",
              "schedule", id, "task", task_id, NULL);
      char next[24];
      const char *const hset[] = {"HSET", last.s, id, ats, NULL}, *const zadd[] = {"ZADD", due.s, next, id, NULL};
      /* The run recorded and the next scored together, or neither. */
      if ((rc = next_text(c, id, def, now > (uint64_t)at ? now : (uint64_t)at, next)) == 0)
        rc = rtq__client_multi(c, NULL, (const char *const *const[]){hset, zadd, NULL});
    }
  }
  json_decref(def);
  return rc;
}

int rtq_schedule_fire_due(rtq_client *c, uint64_t now_ms, size_t max, size_t *fired) {
  rtq__client_clear_err(c);
  if (fired != NULL) *fired = 0;
  if (max == 0) return 0;
  rtq_key2 due = key_due(c);
  char nows[24], limit[24];
  snprintf(nows, sizeof nows, "%llu", (unsigned long long)now_ms);
  snprintf(limit, sizeof limit, "%zu", max);
  redisReply *r = NULL;
  int rc = rtq__client_words(c, &r, 7, (const char *[]){"ZRANGEBYSCORE", due.s, "-inf", nows, "LIMIT", "0", limit});
  if (rc != 0) return rc;
  int first = 0;
  for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
    const redisReply *e = r->element[i];
    if (e->type != REDIS_REPLY_STRING) continue;
    if (check_id(c, e->str) != 0) {
      /* Not a schedule id any call writes: drop it, or it is due forever. */
      (void)rtq__client_words(c, NULL, 3, (const char *[]){"ZREM", due.s, e->str});
      continue;
    }
    rc = fire_one(c, e->str, now_ms, fired);
    if (rc != 0 && first == 0) first = rc;
    if (rc == RTQ_ECONN) break;
  }
  freeReplyObject(r);
  return first;
}
