/* test_sign.c - HMAC-SHA256, key files and the task and outcome
 * signatures (sign.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "rtq/common.h"
#include "sign.h"

static void hex_of(const unsigned char *b, size_t n, char *out) {
  for (size_t i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", b[i]);
}

/* RFC 4231 section 4: test cases 1-4, 6 and 7 (5 is a truncated MAC). */
static void test_sign_rfc4231_vectors(void **state) {
  (void)state;
  unsigned char k20b[20], k20a[20], k25[25], k131[131], d50d[50], d50c[50];
  memset(k20b, 0x0b, sizeof k20b);
  memset(k20a, 0xaa, sizeof k20a);
  for (int i = 0; i < 25; i++) k25[i] = (unsigned char)(i + 1);
  memset(k131, 0xaa, sizeof k131);
  memset(d50d, 0xdd, sizeof d50d);
  memset(d50c, 0xcd, sizeof d50c);
  static const char big[] =
      "This is a test using a larger than block-size key and a larger than block-size data. The key needs to "
      "be hashed before being used by the HMAC algorithm.";
  static const char big_key[] = "Test Using Larger Than Block-Size Key - Hash Key First";
  const struct {
    const void *k;
    size_t kl;
    const void *d;
    size_t dl;
    const char *mac;
  } v[] = {
      {k20b, 20, "Hi There", 8, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
      {"Jefe", 4, "what do ya want for nothing?", 28,
       "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
      {k20a, 20, d50d, 50, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
      {k25, 25, d50c, 50, "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
      {k131, 131, big_key, sizeof big_key - 1, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
      {k131, 131, big, sizeof big - 1, "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
  };
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
    unsigned char mac[32];
    char h[65];
    assert_int_equal(rtq_hmac_sha256(v[i].k, v[i].kl, v[i].d, v[i].dl, mac), 0);
    hex_of(mac, 32, h);
    assert_string_equal(h, v[i].mac);
  }
}

/* ---- key files ---- */

static char dir[64];

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/rtq-test-sign-XXXXXX");
  return mkdtemp(dir) != NULL ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  return system(cmd) == 0 ? 0 : -1;
}

#define SECRET_A "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define SECRET_B "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"

static const char *write_file(const char *name, const char *text, mode_t mode) {
  static char path[128];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  assert_int_equal(chmod(path, mode), 0);
  return path;
}

static rtq_sign_keys *load_ok(const char *name, const char *text) {
  char err[256] = "";
  rtq_sign_keys *k = NULL;
  int rc = rtq_sign_keys_load(write_file(name, text, 0600), &k, err, sizeof err);
  if (rc != 0) fail_msg("load %s: %s", name, err);
  return k;
}

static void load_fails(const char *text, mode_t mode, const char *why) {
  char err[256] = "";
  rtq_sign_keys *k = (rtq_sign_keys *)1;
  const char *path = write_file("bad.keys", text, mode);
  assert_int_equal(rtq_sign_keys_load(path, &k, err, sizeof err), RTQ_EINVAL);
  assert_null(k);
  if (strstr(err, why) == NULL) fail_msg("error \"%s\" does not say \"%s\"", err, why);
  assert_non_null(strstr(err, path));
  assert_null(strstr(err, "00112233")); /* never the secret */
  assert_null(strstr(err, "ffeeddcc"));
}

static void test_sign_key_file_reads_kids_and_comments(void **state) {
  (void)state;
  rtq_sign_keys *k = load_ok("good.keys", "# producers\n\n  k2:" SECRET_B "  \r\nk1:" SECRET_A "\n");
  assert_string_equal(rtq_sign_kid(k), "k2");
  rtq_sign_keys_free(k);
}

static void test_sign_key_file_errors(void **state) {
  (void)state;
  load_fails("k1:" SECRET_A "\n", 0640, "group or others");
  load_fails("k1:" SECRET_A "\n", 0604, "group or others");
  load_fails("k1:00112233\n", 0600, "shorter than 32 bytes");
  load_fails("bad id:" SECRET_A "\n", 0600, "line 1: the key id may hold only");
  load_fails(":" SECRET_A "\n", 0600, "the key id must be");
  load_fails("# c\nk1:" SECRET_A "0\n", 0600, "line 2: the secret is not hex");
  load_fails("k1:" SECRET_A "\nk2:zz" SECRET_B "\n", 0600, "line 2: the secret is not hex");
  load_fails("k1:" SECRET_A "\nk1:" SECRET_B "\n", 0600, "listed twice");
  load_fails("k1 " SECRET_A "\n", 0600, "expected kid:hex");
  load_fails("# nothing\n\n", 0600, "no key in it");
  char err[256];
  rtq_sign_keys *k = NULL;
  char missing[128];
  snprintf(missing, sizeof missing, "%s/none.keys", dir);
  assert_int_equal(rtq_sign_keys_load(missing, &k, err, sizeof err), RTQ_EIO);
  assert_non_null(strstr(err, missing));
}

/* ---- signatures ---- */

static const rtq_sign_task task = {.id = "T1", .queue = "q", .name = "pay", .args = "\x81\xa2to\xa3" "bob",
                                   .args_len = 8, .to = "5000", .mr = "", .rt = "", .bo = ""};

static void test_sign_task_covers_the_canonical_bytes(void **state) {
  (void)state;
  rtq_sign_keys *k = load_ok("p.keys", "p1:" SECRET_A "\n");
  char sig[RTQ_SIGN_SIZE];
  assert_int_equal(rtq_sign_task_sig(k, &task, sig), 0);
  /* The same HMAC computed over the bytes PROTOCOL.md section 9 lists. */
  static const char msg[] = "rtq2\0T1\0q\0pay\0\x81\xa2to\xa3" "bob\0" "5000\0\0\0";
  unsigned char secret[32], mac[32];
  for (int i = 0; i < 32; i++) secret[i] = (unsigned char)strtoul((char[]){SECRET_A[2 * i], SECRET_A[2 * i + 1], 0}, NULL, 16);
  assert_int_equal(rtq_hmac_sha256(secret, 32, msg, sizeof msg - 1, mac), 0);
  char want[RTQ_SIGN_SIZE] = "p1:";
  hex_of(mac, 32, want + 3);
  assert_string_equal(sig, want);
  assert_int_equal(rtq_sign_task_check(k, &task, sig), 0);
  /* Every covered value matters. */
  rtq_sign_task t = task;
  t.id = "T2";
  assert_int_equal(rtq_sign_task_check(k, &t, sig), RTQ_EUNVERIFIED);
  t = task, t.queue = "other";
  assert_int_equal(rtq_sign_task_check(k, &t, sig), RTQ_EUNVERIFIED);
  t = task, t.args_len = 7;
  assert_int_equal(rtq_sign_task_check(k, &t, sig), RTQ_EUNVERIFIED);
  t = task, t.bo = "1";
  assert_int_equal(rtq_sign_task_check(k, &t, sig), RTQ_EUNVERIFIED);
  /* Missing, malformed or tampered signatures. */
  assert_int_equal(rtq_sign_task_check(k, &task, NULL), RTQ_EUNVERIFIED);
  assert_int_equal(rtq_sign_task_check(k, &task, ""), RTQ_EUNVERIFIED);
  assert_int_equal(rtq_sign_task_check(k, &task, "p1:00"), RTQ_EUNVERIFIED);
  char bad[RTQ_SIGN_SIZE];
  memcpy(bad, sig, sizeof bad);
  bad[10] = bad[10] == '0' ? '1' : '0';
  assert_int_equal(rtq_sign_task_check(k, &task, bad), RTQ_EUNVERIFIED);
  memcpy(bad, sig, sizeof bad);
  bad[1] = '9'; /* kid p9: not listed */
  assert_int_equal(rtq_sign_task_check(k, &task, bad), RTQ_EUNVERIFIED);
  rtq_sign_keys_free(k);
}

static void test_sign_rotation_old_kid_verifies_while_listed(void **state) {
  (void)state;
  rtq_sign_keys *old = load_ok("old.keys", "p1:" SECRET_A "\n");
  rtq_sign_keys *both = load_ok("both.keys", "p2:" SECRET_B "\np1:" SECRET_A "\n");
  rtq_sign_keys *new_only = load_ok("new.keys", "p2:" SECRET_B "\n");
  char s_old[RTQ_SIGN_SIZE], s_new[RTQ_SIGN_SIZE];
  assert_int_equal(rtq_sign_task_sig(old, &task, s_old), 0);
  assert_int_equal(rtq_sign_task_sig(both, &task, s_new), 0);
  assert_memory_equal(s_new, "p2:", 3);
  assert_int_equal(rtq_sign_task_check(both, &task, s_old), 0);
  assert_int_equal(rtq_sign_task_check(both, &task, s_new), 0);
  assert_int_equal(rtq_sign_task_check(new_only, &task, s_old), RTQ_EUNVERIFIED);
  rtq_sign_keys_free(old);
  rtq_sign_keys_free(both);
  rtq_sign_keys_free(new_only);
}

static void test_sign_outcome_covers_status_attempt_and_values(void **state) {
  (void)state;
  rtq_sign_keys *k = load_ok("w.keys", "w1:" SECRET_B "\n");
  rtq_sign_outcome o = {.id = "T1", .queue = "q", .attempt = "1", .status = "completed",
                        .r = {"\xa2ok", 3}, .ec = {"OLD", 3}, .task_sig = "p1:ab", .started = "1700000000000"};
  char sig[RTQ_SIGN_SIZE];
  assert_int_equal(rtq_sign_outcome_sig(k, &o, sig), 0);
  assert_int_equal(rtq_sign_outcome_check(k, &o, sig), 0);
  /* A completed outcome covers its result only: a last error may stay. */
  rtq_sign_outcome x = o;
  x.ec = (rtq_sign_bytes){"NEW", 3};
  assert_int_equal(rtq_sign_outcome_check(k, &x, sig), 0);
  x = o, x.r = (rtq_sign_bytes){"\xa2no", 3};
  assert_int_equal(rtq_sign_outcome_check(k, &x, sig), RTQ_EUNVERIFIED);
  x = o, x.attempt = "2";
  assert_int_equal(rtq_sign_outcome_check(k, &x, sig), RTQ_EUNVERIFIED);
  x = o, x.status = "failed";
  assert_int_equal(rtq_sign_outcome_check(k, &x, sig), RTQ_EUNVERIFIED);
  /* It belongs to one task (its sg) and one run (its start b): copied onto
   * another task of the same id, or another run, it does not verify. */
  x = o, x.task_sig = "p1:cd";
  assert_int_equal(rtq_sign_outcome_check(k, &x, sig), RTQ_EUNVERIFIED);
  x = o, x.task_sig = NULL;
  assert_int_equal(rtq_sign_outcome_check(k, &x, sig), RTQ_EUNVERIFIED);
  x = o, x.started = "1700000000001";
  assert_int_equal(rtq_sign_outcome_check(k, &x, sig), RTQ_EUNVERIFIED);
  /* A failure covers its error fields. */
  rtq_sign_outcome f = {.id = "T1", .queue = "q", .attempt = "1", .status = "failed", .ec = {"E", 1},
                        .em = {"boom", 4}};
  assert_int_equal(rtq_sign_outcome_sig(k, &f, sig), 0);
  x = f, x.em = (rtq_sign_bytes){"boo", 3};
  assert_int_equal(rtq_sign_outcome_check(k, &x, sig), RTQ_EUNVERIFIED);
  x = f, x.ec = (rtq_sign_bytes){"Eb", 2}, x.em = (rtq_sign_bytes){"oom", 3}; /* no shifting bytes across */
  assert_int_equal(rtq_sign_outcome_check(k, &x, sig), RTQ_EUNVERIFIED);
  rtq_sign_keys_free(k);
}

/* A signature made for a task never passes as an outcome's, even under
 * one secret: the signed bytes start with the role. */
static void test_sign_roles_do_not_cross(void **state) {
  (void)state;
  rtq_sign_keys *k = load_ok("same.keys", "k:" SECRET_A "\n");
  rtq_sign_task t = {.id = "T1", .queue = "q", .name = "1", .to = "completed"};
  rtq_sign_outcome o = {.id = "T1", .queue = "q", .attempt = "1", .status = "completed"};
  char ts[RTQ_SIGN_SIZE], os[RTQ_SIGN_SIZE];
  assert_int_equal(rtq_sign_task_sig(k, &t, ts), 0);
  assert_int_equal(rtq_sign_outcome_sig(k, &o, os), 0);
  assert_int_equal(rtq_sign_outcome_check(k, &o, ts), RTQ_EUNVERIFIED);
  assert_int_equal(rtq_sign_task_check(k, &t, os), RTQ_EUNVERIFIED);
  rtq_sign_keys_free(k);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sign_rfc4231_vectors),
      cmocka_unit_test(test_sign_key_file_reads_kids_and_comments),
      cmocka_unit_test(test_sign_key_file_errors),
      cmocka_unit_test(test_sign_task_covers_the_canonical_bytes),
      cmocka_unit_test(test_sign_rotation_old_kid_verifies_while_listed),
      cmocka_unit_test(test_sign_outcome_covers_status_attempt_and_values),
      cmocka_unit_test(test_sign_roles_do_not_cross),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
