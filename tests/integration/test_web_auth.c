/*
 * test_web_auth.c - rtq-web's --basic-auth-file and the dead-letter
 * actions of its API, on the real binary over loopback HTTP against a
 * real redis-server.
 *
 * Basic auth: users hashed with bcrypt and sha512crypt (libxcrypt, as
 * htpasswd -B and openssl passwd -6 make them); a good login, a wrong
 * password, an unknown user, malformed headers; WWW-Authenticate: Basic
 * on each 401, the page itself included; actions with Basic credentials
 * only from the server's own origin; a file others may write, a plain
 * text or MD5 line refused at start-up; a non-loopback --listen without
 * either credential file refused, with a basic-auth file served.
 *
 * Dead letters: POST /api/dead/<index>/requeue (with the task id the page
 * saw), /api/dead/requeue and /api/dead/purge, authenticated like cancel
 * and retry, refused by --read-only.
 */
#include <crypt.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "rtq/client.h"
#include "test_v2_play.h"
#include "test_web_util.h"

#define AUTH "Authorization: Bearer " WEB_TOKEN "\r\n"

static int status_of(int port, const char *method, const char *path, const char *headers) {
  http_resp r;
  http_req(port, method, path, headers, NULL, &r);
  int st = r.status;
  http_resp_free(&r);
  return st;
}

/* A crypt hash of password with a fresh salt of method prefix. */
static void make_hash(const char *prefix, unsigned long cost, const char *password, char *out,
                      size_t cap) {
  char salt[CRYPT_GENSALT_OUTPUT_SIZE];
  assert_non_null(crypt_gensalt_rn(prefix, cost, NULL, 0, salt, sizeof salt));
  struct crypt_data *d = calloc(1, sizeof *d);
  const char *h = crypt_r(password, salt, d);
  assert_true(h != NULL && h[0] == '$');
  snprintf(out, cap, "%s", h);
  free(d);
}

/* Writes text to a file of the test's dir with mode; returns its path. */
static const char *write_file(const char *name, const char *text, mode_t mode) {
  static char path[4][512];
  static int k;
  char *p = path[k++ % 4];
  snprintf(p, 512, "%s/%s", rtq_test_redis_dir(rtq_test_redis_default()), name);
  FILE *f = fopen(p, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  assert_int_equal(chmod(p, mode), 0);
  return p;
}

/* "Authorization: Basic base64(user:pass)\r\n" into out. */
static const char *basic(const char *user, const char *pass, char *out, size_t cap) {
  static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  char plain[256];
  int n = snprintf(plain, sizeof plain, "%s:%s", user, pass);
  int o = snprintf(out, cap, "Authorization: Basic ");
  for (int i = 0; i < n; i += 3) {
    unsigned v = (unsigned char)plain[i] << 16;
    if (i + 1 < n) v |= (unsigned char)plain[i + 1] << 8;
    if (i + 2 < n) v |= (unsigned char)plain[i + 2];
    out[o++] = abc[v >> 18];
    out[o++] = abc[v >> 12 & 63];
    out[o++] = i + 1 < n ? abc[v >> 6 & 63] : '=';
    out[o++] = i + 2 < n ? abc[v & 63] : '=';
  }
  snprintf(out + o, cap - (size_t)o, "\r\n");
  return out;
}

/* The users file: alice (bcrypt), bob (sha512crypt). */
static const char *users_file(mode_t mode) {
  char a[128], b[160], text[512];
  make_hash("$2b$", 5, "alice-pw", a, sizeof a);
  make_hash("$6$", 5000, "bob-pw", b, sizeof b);
  snprintf(text, sizeof text, "# rtq-web users\nalice:%s\n\nbob:%s\n", a, b);
  return write_file("users", text, mode);
}

/* Runs rtq-web with args to its exit; returns the exit status and leaves
 * its output in log. */
static int exit_status(const char *const *args, char *log, size_t cap) {
  static int n;
  char bin[512];
  assert_non_null(rtq_test_bin_path("web/rtq-web", bin, sizeof bin));
  snprintf(log, cap, "%s/refused-%d.log", rtq_test_redis_dir(rtq_test_redis_default()), n++);
  const char *argv[16] = {bin, "--redis", rtq_test_redis_url()};
  int k = 3;
  for (int i = 0; args[i] != NULL && k < 15; i++) argv[k++] = args[i];
  argv[k] = NULL;
  rtq_test_spawn_options o = {.path = bin, .argv = argv, .output_path = log};
  pid_t pid = rtq_test_spawn_ex(&o);
  int status = 0;
  assert_int_equal(rtq_test_wait_exit(pid, 10000, &status), 0);
  assert_true(WIFEXITED(status));
  return WEXITSTATUS(status);
}

static void assert_log_has(const char *log, const char *needle) {
  char *text = cli_slurp(log);
  if (strstr(text, needle) == NULL) fail_msg("log lacks \"%s\": %s", needle, text);
  free(text);
}

static void test_web_auth_basic_logins(void **state) {
  (void)state;
  web_srv s;
  const char *args[] = {"--basic-auth-file", users_file(0600), NULL};
  web_start(&s, args);
  char h[512], h2[1024]; /* h2: h and one or two more lines */

  /* Without a login, the page itself asks for one. */
  http_resp r;
  http_get(s.port, "/", &r);
  assert_int_equal(r.status, 401);
  char *wa = http_header(&r, "WWW-Authenticate");
  assert_non_null(wa);
  assert_string_equal(wa, "Basic realm=\"rtq\", charset=\"UTF-8\"");
  free(wa);
  http_resp_free(&r);
  assert_int_equal(status_of(s.port, "GET", "/api/stats", NULL), 401);
  assert_int_equal(status_of(s.port, "GET", "/metrics", NULL), 401);
  assert_int_equal(status_of(s.port, "GET", "/api/info", NULL), 401);

  /* Good logins, with either hash method. */
  assert_int_equal(status_of(s.port, "GET", "/", basic("alice", "alice-pw", h, sizeof h)), 200);
  assert_int_equal(status_of(s.port, "GET", "/api/stats", h), 200);
  assert_int_equal(status_of(s.port, "GET", "/metrics", basic("bob", "bob-pw", h, sizeof h)), 200);
  json_t *info = http_json(s.port, "/api/info", h, 200);
  assert_string_equal(json_string_value(json_object_get(info, "auth")), "basic");
  assert_true(json_is_true(json_object_get(info, "actions")));
  json_decref(info);

  /* A wrong password and an unknown user: 401 alike, asking again. */
  http_req(s.port, "GET", "/api/stats", basic("alice", "bob-pw", h, sizeof h), NULL, &r);
  assert_int_equal(r.status, 401);
  wa = http_header(&r, "WWW-Authenticate");
  assert_non_null(wa);
  assert_non_null(strstr(wa, "Basic"));
  free(wa);
  http_resp_free(&r);
  assert_int_equal(status_of(s.port, "GET", "/api/stats", basic("alice", "", h, sizeof h)), 401);
  assert_int_equal(status_of(s.port, "GET", "/api/stats", basic("carol", "alice-pw", h, sizeof h)), 401);
  assert_int_equal(status_of(s.port, "GET", "/api/stats", basic("Alice", "alice-pw", h, sizeof h)), 401);
  /* The hash itself is not a password. */
  assert_int_equal(status_of(s.port, "GET", "/api/stats", basic("alice", "$2b$", h, sizeof h)), 401);

  /* Malformed: not base64, no colon, bad padding, empty; 4xx and the
   * server lives on. */
  static const char *const bad[] = {
      "Authorization: Basic !!!notbase64!!!\r\n", "Authorization: Basic bm9jb2xvbg==\r\n",
      "Authorization: Basic YWxpY2U6YWxpY2UtcHc\r\n", "Authorization: Basic =\r\n",
      "Authorization: Basic \r\n", "Authorization: Basic YW=jZTph\r\n"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_int_equal(status_of(s.port, "GET", "/api/stats", bad[i]), 400);
  /* No token is configured: a Bearer header is no login. */
  assert_int_equal(status_of(s.port, "GET", "/api/stats", AUTH), 401);
  assert_int_equal(status_of(s.port, "GET", "/api/stats", basic("bob", "bob-pw", h, sizeof h)), 200);

  /* Actions: a cookie alone is nothing; Basic from another site is
   * refused (a browser sends a cached login on its own); from the
   * server's own page, or a client that sends no Origin, it runs. */
  char id[RTQ_TASK_ID_SIZE], path[256];
  tw_create("rtq.echo", "idle", "{}", 0, id);
  snprintf(path, sizeof path, "/api/tasks/%s/cancel", id);
  assert_int_equal(status_of(s.port, "POST", path, "Cookie: session=alice\r\n"), 401);
  basic("alice", "alice-pw", h, sizeof h);
  snprintf(h2, sizeof h2, "%sOrigin: http://evil.example\r\n", h);
  assert_int_equal(status_of(s.port, "POST", path, h2), 403);
  snprintf(h2, sizeof h2, "%sSec-Fetch-Site: cross-site\r\n", h);
  assert_int_equal(status_of(s.port, "POST", path, h2), 403);
  snprintf(h2, sizeof h2, "%sOrigin: null\r\n", h);
  assert_int_equal(status_of(s.port, "POST", path, h2), 403);
  rtq_task *t = NULL;
  assert_int_equal(rtq_get_task(tw_client, id, &t), 0);
  assert_int_equal(t->status, RTQ_STATUS_PENDING);
  rtq_task_free(t);
  snprintf(h2, sizeof h2, "%sOrigin: http://127.0.0.1:%d\r\nSec-Fetch-Site: same-origin\r\n", h,
           s.port);
  assert_int_equal(status_of(s.port, "POST", path, h2), 200);
  assert_int_equal(rtq_get_task(tw_client, id, &t), 0);
  assert_int_equal(t->status, RTQ_STATUS_CANCELLED);
  rtq_task_free(t);
  snprintf(path, sizeof path, "/api/tasks/%s/retry", id);
  assert_int_equal(status_of(s.port, "POST", path, h), 200);
  web_stop(&s);
}

static void test_web_auth_file_rules(void **state) {
  (void)state;
  char log[512], a[128], text[512];
  /* Others may write it: refused. Others may read it: a warning. */
  assert_int_equal(exit_status((const char *const[]){"--basic-auth-file", users_file(0620), NULL},
                               log, sizeof log),
                   2);
  assert_log_has(log, "chmod go-w");
  web_srv s;
  const char *args[] = {"--basic-auth-file", users_file(0644), NULL};
  web_start(&s, args);
  web_stop(&s);
  assert_log_has(s.log, "may be read by other users");

  /* Plain text, MD5 (htpasswd's default), a malformed line, no user. */
  snprintf(a, sizeof a, "$1$saltsalt$0123456789abcdefghijkl");
  static const char *const bodies[] = {"alice:alice-pw\n", "alice:$apr1$abcdefgh$0123456789abcdefghijkl\n",
                                       NULL, "no colon here\n", "# only a comment\n"};
  for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
    if (bodies[i] == NULL) snprintf(text, sizeof text, "alice:%s\n", a);
    const char *f = write_file("bad-users", bodies[i] != NULL ? bodies[i] : text, 0600);
    assert_int_equal(exit_status((const char *const[]){"--basic-auth-file", f, NULL}, log, sizeof log),
                     2);
    assert_log_has(log, "--basic-auth-file");
  }
  assert_int_equal(
      exit_status((const char *const[]){"--basic-auth-file", "/nonexistent/users", NULL}, log, sizeof log),
      2);

  /* A non-loopback address needs one of the two files. */
  assert_int_equal(exit_status((const char *const[]){"--listen", "0.0.0.0:0", NULL}, log, sizeof log),
                   2);
  assert_log_has(log, "without --auth-token-file or --basic-auth-file");
  const char *open_args[] = {"--listen", "0.0.0.0:0", "--basic-auth-file", users_file(0600), NULL};
  web_start(&s, open_args);
  char h[512];
  assert_int_equal(status_of(s.port, "GET", "/api/stats", basic("alice", "alice-pw", h, sizeof h)), 200);
  assert_int_equal(status_of(s.port, "GET", "/api/stats", NULL), 401);
  web_stop(&s);
}

static json_t *post_json(int port, const char *path, const char *headers, int status) {
  http_resp r;
  http_req(port, "POST", path, headers, NULL, &r);
  if (r.status != status) fail_msg("POST %s: %d, wanted %d: %s", path, r.status, status, r.body);
  json_t *v = json_loads(r.body, 0, NULL);
  if (v == NULL) fail_msg("POST %s: not JSON: %s", path, r.body);
  http_resp_free(&r);
  return v;
}

/* The dead letters of both queues. */
static long long dead_total(v2_play *p) {
  return rtq_test_cmd_int(p->c, "LLEN", rtq_keys2_dead(&p->k, "mail").s, NULL) +
         rtq_test_cmd_int(p->c, "LLEN", rtq_keys2_dead(&p->k, "video").s, NULL);
}

static void test_web_auth_dead_actions(void **state) {
  (void)state;
  /* d-00 and d-01 of mail and v-00 of video, each dead-lettered by the
   * worker that ran it (so each ended failed), and a letter that is no
   * record. The API lists the queues in order, each newest first:
   * 0 d-01, 1 d-00, 2 the junk, 3 v-00. */
  v2_play p;
  v2_play_init(&p);
  v2_create_n(&p, "mail", "d-", 2); /* d-00, d-01 */
  v2_create_n(&p, "video", "v-", 1);
  assert_int_equal(v2_take(&p, "mail", "w-test", 2), 2);
  assert_int_equal(v2_take(&p, "video", "w-test", 1), 1);
  v2_deadletter(&p, "mail", "w-test", "d-00", "BAD_SIGNATURE");
  v2_deadletter(&p, "mail", "w-test", "d-01", "BAD_SIGNATURE");
  v2_deadletter(&p, "video", "w-test", "v-00", "BAD_SIGNATURE");
  rtq_key2 vdead = rtq_keys2_dead(&p.k, "video");
  freeReplyObject(rtq_test_command(p.c, "LPUSH", vdead.s, "not a record \xc1", NULL));
  rtq_conn *c = p.c;

  /* Read-only: the actions are gone. */
  web_srv s;
  const char *ro[] = {"--auth-token-file", web_token_file(), "--read-only", NULL};
  web_start(&s, ro);
  assert_int_equal(status_of(s.port, "POST", "/api/dead/1/requeue", AUTH), 403);
  assert_int_equal(status_of(s.port, "POST", "/api/dead/purge", AUTH), 403);
  web_stop(&s);
  assert_int_equal(dead_total(&p), 4);

  const char *args[] = {"--auth-token-file", web_token_file(), NULL};
  web_start(&s, args);
  /* Authenticated like cancel and retry; GET is no action. */
  assert_int_equal(status_of(s.port, "POST", "/api/dead/1/requeue", NULL), 401);
  assert_int_equal(status_of(s.port, "POST", "/api/dead/1/requeue", "Cookie: t=" WEB_TOKEN "\r\n"), 401);
  assert_int_equal(status_of(s.port, "GET", "/api/dead/1/requeue", AUTH), 405);
  assert_int_equal(status_of(s.port, "POST", "/api/dead/x/requeue", AUTH), 400);
  assert_int_equal(status_of(s.port, "POST", "/api/dead/1/requeue?bogus=1", AUTH), 400);
  assert_int_equal(status_of(s.port, "POST", "/api/dead/99/requeue", AUTH), 404);
  assert_int_equal(dead_total(&p), 4);

  /* The letter that is no record: refused, kept. */
  json_t *v = post_json(s.port, "/api/dead/2/requeue", AUTH, 409);
  assert_non_null(strstr(json_string_value(json_object_get(v, "error")), "cannot be requeued"));
  json_decref(v);
  /* Index 3 is v-00: the page's id must match. */
  assert_int_equal(status_of(s.port, "POST", "/api/dead/3/requeue?id=d-01", AUTH), 409);
  char *rid = NULL;
  assert_int_equal(rtq_dead_requeue_if(tw_client, 3, "d-01", NULL, &rid), RTQ_ESTATE);
  assert_null(rid);
  assert_non_null(strstr(rtq_client_errstr(tw_client), "no longer task d-01"));
  assert_int_equal(dead_total(&p), 4); /* nothing moved */
  v = post_json(s.port, "/api/dead/3/requeue?id=v-00", AUTH, 200);
  assert_string_equal(json_string_value(json_object_get(v, "id")), "v-00");
  assert_string_equal(json_string_value(json_object_get(v, "status")), "pending");
  json_decref(v);
  rtq_task *t = NULL;
  assert_int_equal(rtq_get_task(tw_client, "v-00", &t), 0);
  assert_int_equal(t->status, RTQ_STATUS_PENDING);
  assert_string_equal(t->queue, "video");
  rtq_task_free(t);
  assert_int_equal(dead_total(&p), 3);

  /* All of one queue, then purge. */
  v = post_json(s.port, "/api/dead/requeue?queue=mail", AUTH, 200);
  assert_int_equal(json_integer_value(json_object_get(v, "requeued")), 2);
  assert_int_equal(json_integer_value(json_object_get(v, "refused")), 0);
  json_decref(v);
  rtq_key2 mail = rtq_keys2_queue(&p.k, "mail");
  assert_int_equal(rtq_test_cmd_int(c, "LLEN", mail.s, NULL), 2);
  v = post_json(s.port, "/api/dead/purge", AUTH, 200);
  assert_int_equal(json_integer_value(json_object_get(v, "purged")), 1);
  json_decref(v);
  assert_int_equal(dead_total(&p), 0);
  web_stop(&s);
  v2_play_destroy(&p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_web_auth_basic_logins, tw_setup, tw_teardown),
      cmocka_unit_test_setup_teardown(test_web_auth_file_rules, tw_setup, tw_teardown),
      cmocka_unit_test_setup_teardown(test_web_auth_dead_actions, tw_setup, tw_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
