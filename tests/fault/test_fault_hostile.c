/*
 * test_fault_hostile.c - hostile data put straight into a queue with raw
 * commands, as redis-cli would (issue 8, test 8). Queue entries that are
 * no task id: garbage bytes, dd ff 00 00 00, an id containing
 * `:*?[{\r\n`. Task hashes (pushed as ids) whose args are nested 100000
 * deep, 10 MB, or truncated msgpack, and one whose name no handler has.
 *
 * Each is dead-lettered in the queue's dead list ({ns:Q}:dead) with a
 * code and a reason; the worker survives, its resident memory does not
 * grow by 1 MB over three more rounds after a warm-up round, no key with
 * an odd character appears, and the next normal task completes.
 */
#include <msgpack.h>

#include "fault.h"

#define F8_ROUNDS 4  /* the first is the warm-up */
#define F8_BIG (10u * 1024u * 1024u)
#define F8_DEPTH 100000

/* A queue entry pushed as it is (args NULL), or a task hash of that id
 * and name with args (msgpack, as the create step stores them) whose id
 * is pushed. */
typedef struct payload {
  const char *what;
  const char *code;  /* expected dead-letter code */
  char *buf;         /* the entry, or the args */
  size_t len;
  const char *name;  /* a task hash: its handler name; NULL: a raw entry */
} payload;

static void pack_str(msgpack_packer *pk, const char *s) {
  size_t n = strlen(s);
  msgpack_pack_str(pk, n);
  msgpack_pack_str_body(pk, s, n);
}

static payload take(msgpack_sbuffer *sb, const char *what, const char *code, const char *name) {
  payload p = {.what = what, .code = code, .buf = sb->data, .len = sb->size, .name = name};
  sb->data = NULL; /* ownership moves to the payload */
  sb->size = sb->alloc = 0;
  return p;
}

static payload raw(const char *what, const void *bytes, size_t len) {
  payload p = {.what = what, .code = "BAD_ID", .buf = malloc(len), .len = len};
  assert_non_null(p.buf);
  memcpy(p.buf, bytes, len);
  return p;
}

/* The seven payloads. */
static int make_payloads(payload *out) {
  int n = 0;
  unsigned char garbage[64];
  uint32_t x = 12345;
  for (size_t i = 0; i < sizeof garbage; i++) {
    x = x * 1103515245u + 12345u;
    garbage[i] = (unsigned char)(x >> 16);
  }
  garbage[0] = 0xc1; /* never used by msgpack */
  garbage[9] = 0x00; /* no name holds a NUL */
  out[n++] = raw("garbage bytes", garbage, sizeof garbage);
  out[n++] = raw("dd ff 00 00 00", "\xdd\xff\x00\x00\x00", 5);
  out[n++] = raw("an id containing :*?[{\\r\\n", "fault8:*?[{\r\n", 13);

  msgpack_sbuffer sb;
  msgpack_packer pk;
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  for (int i = 0; i < F8_DEPTH; i++) {
    msgpack_pack_map(&pk, 1);
    pack_str(&pk, "a");
  }
  msgpack_pack_nil(&pk);
  out[n++] = take(&sb, "args nested 100000 deep", "BAD_TASK_RECORD", "rtq.noop");

  msgpack_pack_map(&pk, 1);
  pack_str(&pk, "blob");
  char *blob = calloc(1, F8_BIG);
  assert_non_null(blob);
  msgpack_pack_bin(&pk, F8_BIG);
  msgpack_pack_bin_body(&pk, blob, F8_BIG);
  free(blob);
  out[n++] = take(&sb, "10 MB of args", "PAYLOAD_TOO_LARGE", "rtq.noop");

  msgpack_pack_map(&pk, 1);
  pack_str(&pk, "text");
  pack_str(&pk, "the rest of these args never arrives, cut two thirds of the way");
  payload t = take(&sb, "truncated msgpack args", "BAD_TASK_RECORD", "rtq.echo");
  t.len = t.len * 2 / 3;
  out[n++] = t;

  msgpack_pack_map(&pk, 0);
  out[n++] = take(&sb, "an unknown task name", "UNKNOWN_TASK", "no.such.handler");
  msgpack_sbuffer_destroy(&sb);
  return n;
}

/* The id of payload j's task hash in round r. */
static void hash_id(int j, int r, char *buf, size_t cap) { snprintf(buf, cap, "fault8-h%d-r%d", j, r); }

static void lpush(fx *f, const void *entry, size_t len) {
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "LPUSH");
  rtq__argv_add_key2(&a, rtq_keys2_queue(&f->k, FX_QUEUE));
  rtq_argv_add(&a, entry, len);
  redisReply *r = rtq_test_command_argv(f->c, &a);
  assert_int_equal(r->type, REDIS_REPLY_INTEGER);
  freeReplyObject(r);
  rtq_argv_destroy(&a);
}

/* Puts payload j of round r in the queue: the entry, or a pending task
 * hash as the create step writes it (args over 64 bytes in the side hash,
 * xs set) and its id. */
static void push(fx *f, const payload *p, int j, int r) {
  if (p->name == NULL) {
    lpush(f, p->buf, p->len);
    return;
  }
  char id[64];
  hash_id(j, r, id, sizeof id);
  rtq_key2 t = rtq_keys2_task(&f->k, FX_QUEUE, id), x = rtq_keys2_side(&f->k, FX_QUEUE, id);
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "HSET");
  rtq__argv_add_key2(&a, p->len > 64 ? x : t);
  rtq_argv_add_str(&a, "x");
  rtq_argv_add(&a, p->buf, p->len);
  freeReplyObject(rtq_test_command_argv(f->c, &a));
  rtq_argv_destroy(&a);
  rtq_test_cmd_int(f->c, "HSET", t.s, "s", "pending", "n", p->name, "c", "1700000000000", NULL);
  if (p->len > 64) rtq_test_cmd_int(f->c, "HSET", t.s, "xs", "1", NULL);
  lpush(f, id, strlen(id));
}

/* A dead-letter record's fields. */
typedef struct dead_rec {
  char code[64];
  char reason[512];
  char id[64]; /* empty when the entry is no valid id */
  uint64_t size;
  const char *payload; /* a bin's bytes, into the record; NULL when not a bin */
  size_t payload_len;
} dead_rec;

static void copy_str(const msgpack_object *o, char *dst, size_t cap) {
  size_t n = o->type == MSGPACK_OBJECT_STR ? o->via.str.size : 0;
  if (n >= cap) n = cap - 1;
  if (n > 0) memcpy(dst, o->via.str.ptr, n);
  dst[n] = '\0';
}

static bool decode_dead(const char *buf, size_t len, dead_rec *d) {
  memset(d, 0, sizeof *d);
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  bool ok = msgpack_unpack_next(&u, buf, len, NULL) == MSGPACK_UNPACK_SUCCESS && u.data.type == MSGPACK_OBJECT_MAP;
  for (uint32_t i = 0; ok && i < u.data.via.map.size; i++) {
    const msgpack_object_kv *kv = &u.data.via.map.ptr[i];
    if (kv->key.type != MSGPACK_OBJECT_STR) continue;
    const char *k = kv->key.via.str.ptr;
    size_t kl = kv->key.via.str.size;
    if (kl == 4 && memcmp(k, "code", 4) == 0) copy_str(&kv->val, d->code, sizeof d->code);
    else if (kl == 6 && memcmp(k, "reason", 6) == 0) copy_str(&kv->val, d->reason, sizeof d->reason);
    else if (kl == 2 && memcmp(k, "id", 2) == 0) copy_str(&kv->val, d->id, sizeof d->id);
    else if (kl == 4 && memcmp(k, "size", 4) == 0 && kv->val.type == MSGPACK_OBJECT_POSITIVE_INTEGER)
      d->size = kv->val.via.u64;
    else if (kl == 7 && memcmp(k, "payload", 7) == 0 && kv->val.type == MSGPACK_OBJECT_BIN) {
      /* msgpack-c's unpacker points a bin into buf (no zone copy). */
      d->payload = kv->val.via.bin.ptr;
      d->payload_len = kv->val.via.bin.size;
    }
  }
  msgpack_unpacked_destroy(&u);
  return ok;
}

/* Every key in the db is made of name characters, ':' and the braces of
 * its hash tag only. */
static int odd_keys(fx *f) {
  int odd = 0;
  char cursor[32] = "0";
  for (int rounds = 0; rounds < 1000; rounds++) {
    redisReply *r = rtq_test_command(f->c, "SCAN", cursor, "COUNT", "1000", NULL);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
    const redisReply *keys = r->element[1];
    for (size_t i = 0; i < keys->elements; i++) {
      const redisReply *k = keys->element[i];
      for (size_t j = 0; j < k->len; j++) {
        char c = k->str[j];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == ':' || c == '-' || c == '{' || c == '}')) {
          odd++;
          break;
        }
      }
    }
    freeReplyObject(r);
    if (strcmp(cursor, "0") == 0) break;
  }
  return odd;
}

/* The worker's RSS, read again until it is within 1 MiB of base. */
typedef struct f8_rss {
  pid_t pid;
  long base, now;
} f8_rss;

static bool f8_settled(void *arg) {
  f8_rss *r = arg;
  long kb = rtq_test_rss_kb(r->pid);
  if (kb > 0) r->now = kb;
  return r->now - r->base < 1024;
}

static void test_fault_hostile_payloads_are_dead_lettered(void **state) {
  enum { NORMAL_PER_ROUND = 5 };
  fx *f = fx_new(state, "fault8", NULL);
  fx_events *ev = fx_events_start(f, F8_ROUNDS * NORMAL_PER_ROUND);
  fx_proc *w = fx_worker(f, "worker", "--concurrency", "4", NULL);
  payload p[8];
  int np = make_payloads(p);
  rtq_key2 dead = rtq_keys2_dead(&f->k, FX_QUEUE);
  long rss[F8_ROUNDS];

  for (int round = 0; round < F8_ROUNDS; round++) {
    for (int i = 0; i < np; i++) push(f, &p[i], i, round);
    RTQ_TEST_WAIT_FOR(fx_llen(f, dead) == (long long)np * (round + 1), 15000);
    /* The next normal tasks complete. */
    fx_enqueue(f, round * NORMAL_PER_ROUND, NORMAL_PER_ROUND, "rtq.echo", NULL, NULL);
    RTQ_TEST_WAIT_FOR(fx_events_terminal(ev) == (round + 1) * NORMAL_PER_ROUND, 10000);
    fx_check(f, fx_alive(w), "the worker survives round %d", round);
    rss[round] = rtq_test_rss_kb(w->pid);
    assert_true(rss[round] > 0);
  }
  assert_int_equal(fx_count_status(f, F8_ROUNDS * NORMAL_PER_ROUND, RTQ_STATUS_COMPLETED),
                   F8_ROUNDS * NORMAL_PER_ROUND);
  fx_events_assert_once(ev);
  assert_int_equal(fx_llen(f, rtq_keys2_queue(&f->k, FX_QUEUE)), 0);
  assert_int_equal(fx_llen(f, rtq_keys2_processing(&f->k, FX_QUEUE, w->id)), 0);

  /* Each payload's records carry its expected code and a reason. */
  redisReply *r = rtq_test_command(f->c, "LRANGE", dead.s, "0", "-1", NULL);
  assert_int_equal((int)r->elements, np * F8_ROUNDS);
  int matched[8] = {0};
  for (size_t i = 0; i < r->elements; i++) {
    dead_rec d;
    fx_check(f, decode_dead(r->element[i]->str, r->element[i]->len, &d), "dead-letter record %zu decodes", i);
    /* A raw entry is the record's payload; a task hash's record names
     * its id (and holds the id as the payload). */
    int which = -1;
    char id[64];
    for (int j = 0; j < np && which < 0; j++) {
      const char *entry = p[j].buf;
      size_t len = p[j].len;
      if (p[j].name != NULL) {
        int r8 = -1;
        for (int r = 0; r < F8_ROUNDS; r++) {
          hash_id(j, r, id, sizeof id);
          if (strcmp(d.id, id) == 0) r8 = r;
        }
        if (r8 < 0) continue;
        hash_id(j, r8, id, sizeof id);
        entry = id;
        len = strlen(id);
      } else if (d.payload_len != len || d.payload == NULL || memcmp(d.payload, entry, len) != 0) {
        continue;
      }
      fx_check(f, d.size == len && d.payload != NULL && d.payload_len == len && memcmp(d.payload, entry, len) == 0,
               "%s: payload is a bin of the entry", p[j].what);
      which = j;
    }
    fx_check(f, which >= 0, "record %zu (id \"%s\", size %llu) matches a payload", i, d.id,
             (unsigned long long)d.size);
    fx_check(f, strcmp(d.code, p[which].code) == 0, "%s: code %s, expected %s", p[which].what, d.code,
             p[which].code);
    fx_check(f, d.reason[0] != '\0', "%s: a reason", p[which].what);
    if (matched[which]++ == 0) fx_figure(f, "%s (%zu bytes) -> %s: %s", p[which].what, p[which].len, d.code, d.reason);
  }
  freeReplyObject(r);
  for (int j = 0; j < np; j++) assert_int_equal(matched[j], F8_ROUNDS);
  assert_int_equal(fx_stat(f, "default", "dead"), np * F8_ROUNDS);
  assert_int_equal(odd_keys(f), 0);

  /* A buffer of the last round (a reply reader's, the 10 MB args') is
   * handed back to the kernel by the worker's next ticks; on a loaded
   * machine those may come after the sample above. A leak never comes
   * back down, so the figure is the one once it has settled (5 s at most). */
  f8_rss r8 = {.pid = w->pid, .base = rss[0], .now = rss[F8_ROUNDS - 1]};
  if (!FX_SANITIZED) (void)rtq_test_wait_until(f8_settled, &r8, 5000);
  rss[F8_ROUNDS - 1] = r8.now;
  long growth = rss[F8_ROUNDS - 1] - rss[0];
  fx_figure(f,
            "%d hostile payloads x %d rounds: all %d dead-lettered with a code and a reason, the worker up "
            "throughout, the next normal task completed each round; worker RSS after the warm-up round %ld KiB, "
            "after %d more rounds %ld KiB (growth %ld KiB, limit 1024%s)",
            np, F8_ROUNDS, np * F8_ROUNDS, rss[0], F8_ROUNDS - 1, rss[F8_ROUNDS - 1], growth,
            FX_SANITIZED ? "; not checked under ASan" : "");
  /* ASan's quarantine keeps freed memory resident: no RSS figure there. */
  if (!FX_SANITIZED) fx_check(f, growth < 1024, "RSS grew by %ld KiB", growth);
  for (int j = 0; j < np; j++) free(p[j].buf);
  assert_int_equal(fx_stop(w, 10000), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_fault_hostile_payloads_are_dead_lettered, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
