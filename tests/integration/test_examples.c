/*
 * test_examples.c - the example handlers (examples.so) and the example
 * producer, end to end: a real redis-server, a real rtq-worker loading the
 * plugin, tasks created through the client library, small inputs, and the
 * results checked against the files on disk.
 *
 *   file processing  every byte read in 1 KiB chunks; an empty file; a
 *                    missing file (FILE_NOT_FOUND); a folder (NOT_A_FILE)
 *   bulk email       sent and failed counts, the failed addresses; no
 *                    recipients (INVALID_ARGUMENT)
 *   data export      CSV and JSON contents and record counts; INVALID_FORMAT
 *                    writes nothing; a cancelled export leaves no file
 *   producer         `start` prints an id at once; `demo` ends as expected
 *
 * The worker and the producer are the built binaries under $RTQ_BIN_DIR.
 * Their output goes to the server's temp dir (RTQ_TEST_VERBOSE=1 shows it).
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "harness.h"
#include "rtq/client.h"

#define WAIT_MS 20000

static rtq_client *cl;
static pid_t worker;
static char dir[256];     /* inputs and export folders */

static const char *out_path(const char *name, char *buf, size_t cap) {
  const char *verbose = getenv("RTQ_TEST_VERBOSE");
  if (verbose != NULL && verbose[0] == '1') return NULL;
  snprintf(buf, cap, "%s/%s", rtq_test_redis_dir(rtq_test_redis_default()), name);
  return buf;
}

static int group_setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "%s/rtq-examples.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  if (mkdtemp(dir) == NULL) fail_msg("mkdtemp %s failed", dir);
  const char *url = rtq_test_redis_url();
  char bin[512], plugin[512], log[512];
  if (rtq_test_bin_path("worker/rtq-worker", bin, sizeof bin) == NULL ||
      rtq_test_bin_path("examples/examples.so", plugin, sizeof plugin) == NULL)
    fail_msg("RTQ_BIN_DIR is not set (run through ctest)");
  if (access(plugin, R_OK) != 0) fail_msg("%s is not built", plugin);
  const char *argv[] = {bin, "--redis", url, "--plugin", plugin, "--demo-handlers",
                        "--concurrency", "8", "--shutdown-grace", "1s", NULL};
  /* TMPDIR: where an export without output_dir (the producer's demo) goes. */
  char tmpdir[300];
  snprintf(tmpdir, sizeof tmpdir, "TMPDIR=%s", dir);
  const char *env[] = {tmpdir, NULL};
  rtq_test_spawn_options so = {.path = bin, .argv = argv, .env = env,
                               .output_path = out_path("worker.log", log, sizeof log)};
  worker = rtq_test_spawn_ex(&so);
  if (worker <= 0) fail_msg("cannot start %s", bin);
  rtq_client_options o;
  memset(&o, 0, sizeof o);
  o.redis_url = url;
  if (rtq_client_new(&o, &cl) != 0) fail_msg("client: %s", rtq_client_errstr(NULL));
  return 0;
}

static void remove_tree(const char *path) {
  DIR *d = opendir(path);
  struct dirent *e;
  char sub[1024];
  while (d != NULL && (e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
    struct stat st;
    if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode)) remove_tree(sub);
    else unlink(sub);
  }
  if (d != NULL) closedir(d);
  rmdir(path);
}

static int group_teardown(void **state) {
  (void)state;
  int status = 0;
  int rc = rtq_test_terminate(worker, SIGTERM, 10000, &status);
  rtq_client_free(cl);
  remove_tree(dir);
  /* The worker must shut down cleanly, within its grace. */
  return rc == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* ---- helpers --------------------------------------------------------- */

/* Creates a task from JSON arguments and returns its id in id. */
static void start(const char *name, const char *json, char id[RTQ_TASK_ID_SIZE]) {
  rtq_args *a = NULL;
  char err[128];
  if (rtq_args_from_json(json, &a, err, sizeof err) != 0) fail_msg("bad JSON %s: %s", json, err);
  int rc = rtq_create_task(cl, name, a, NULL, id, NULL);
  rtq_args_free(a);
  if (rc != 0) fail_msg("create %s: %s", name, rtq_client_errstr(cl));
}

/* Waits for the task to end; the caller frees it. */
static rtq_task *finish(const char *id) {
  rtq_task *t = NULL;
  int rc = rtq_wait_for_task(cl, id, WAIT_MS, &t);
  if (rc != 0) fail_msg("wait %s: %s (%s)", id, rtq_err_name(rc), rtq_client_errstr(cl));
  return t;
}

/* The result of a completed task as a jansson object (the caller decrefs). */
static json_t *result_of(const rtq_task *t) {
  if (t->status != RTQ_STATUS_COMPLETED)
    fail_msg("task %s ended %s: %s %s", t->id, rtq_status_name(t->status),
             t->error_code ? t->error_code : "", t->error_message ? t->error_message : "");
  char *text = NULL;
  assert_int_equal(rtq_task_result_json(t, &text), 0);
  json_t *r = json_loads(text, 0, NULL);
  free(text);
  assert_true(json_is_object(r));
  return r;
}

static long long int_field(json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  if (!json_is_integer(v)) fail_msg("result field %s is not an integer", key);
  return (long long)json_integer_value(v);
}

static const char *str_field(json_t *o, const char *key) {
  const char *s = json_string_value(json_object_get(o, key));
  if (s == NULL) fail_msg("result field %s is not a string", key);
  return s;
}

static void assert_failed_with(const rtq_task *t, const char *code) {
  assert_int_equal(t->status, RTQ_STATUS_FAILED);
  assert_non_null(t->error_code);
  assert_string_equal(t->error_code, code);
  assert_non_null(t->error_message);
}

/* The error details of t as JSON text; the caller frees it. */
static char *details_of(const rtq_task *t) {
  char *text = NULL;
  assert_int_equal(rtq_task_error_details_json(t, &text), 0);
  return text;
}

static void write_file(const char *path, size_t size) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  for (size_t i = 0; i < size; i++) fputc((int)(i * 7 % 251), f);
  assert_int_equal(fclose(f), 0);
}

/* The whole file as a malloc'd string; *len its size. */
static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) fail_msg("cannot open %s", path);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  assert_non_null(buf);
  assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
  buf[n] = '\0';
  fclose(f);
  *len = (size_t)n;
  return buf;
}

/* A fresh, empty folder under dir. */
static void subdir(const char *name, char *buf, size_t cap) {
  snprintf(buf, cap, "%s/%s", dir, name);
  assert_int_equal(mkdir(buf, 0755), 0);
}

static int count_entries(const char *path) {
  DIR *d = opendir(path);
  assert_non_null(d);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

/* ---- file processing ------------------------------------------------- */

static void test_examples_file_reads_every_byte(void **state) {
  (void)state;
  char path[512], json[700], id[RTQ_TASK_ID_SIZE];
  snprintf(path, sizeof path, "%s/input.bin", dir);
  write_file(path, 5000); /* four full chunks and one of 904 bytes */
  snprintf(json, sizeof json, "{\"file_path\": \"%s\"}", path);
  start("examples.process_file", json, id);
  rtq_task *t = finish(id);
  json_t *r = result_of(t);
  assert_string_equal(str_field(r, "file_path"), path);
  assert_int_equal(int_field(r, "file_size"), 5000);
  assert_int_equal(int_field(r, "processed_bytes"), 5000);
  assert_int_equal(int_field(r, "chunks"), 5);
  assert_string_equal(str_field(r, "status"), "processed");
  assert_true(t->progress == 100.0);
  assert_non_null(t->progress_message);
  assert_string_equal(t->progress_message, "5000/5000 bytes");
  json_decref(r);
  rtq_task_free(t);
}

static void test_examples_file_empty_file(void **state) {
  (void)state;
  char path[512], json[700], id[RTQ_TASK_ID_SIZE];
  snprintf(path, sizeof path, "%s/empty.bin", dir);
  write_file(path, 0);
  snprintf(json, sizeof json, "{\"file_path\": \"%s\"}", path);
  start("examples.process_file", json, id);
  rtq_task *t = finish(id);
  json_t *r = result_of(t);
  assert_int_equal(int_field(r, "file_size"), 0);
  assert_int_equal(int_field(r, "processed_bytes"), 0);
  assert_int_equal(int_field(r, "chunks"), 0);
  json_decref(r);
  rtq_task_free(t);
}

static void test_examples_file_missing_fails_file_not_found(void **state) {
  (void)state;
  char path[512], json[700], id[RTQ_TASK_ID_SIZE];
  snprintf(path, sizeof path, "%s/no-such-file", dir);
  snprintf(json, sizeof json, "{\"file_path\": \"%s\"}", path);
  start("examples.process_file", json, id);
  rtq_task *t = finish(id);
  assert_failed_with(t, "FILE_NOT_FOUND");
  assert_non_null(strstr(t->error_message, path));
  char *d = details_of(t);
  assert_non_null(strstr(d, "no-such-file"));
  free(d);
  rtq_task_free(t);
}

static void test_examples_file_folder_fails_not_a_file(void **state) {
  (void)state;
  char json[700], id[RTQ_TASK_ID_SIZE];
  snprintf(json, sizeof json, "{\"file_path\": \"%s\"}", dir);
  start("examples.process_file", json, id);
  rtq_task *t = finish(id);
  assert_failed_with(t, "NOT_A_FILE");
  rtq_task_free(t);
}

/* ---- bulk email ------------------------------------------------------- */

static void test_examples_email_counts_sent_and_failed(void **state) {
  (void)state;
  char id[RTQ_TASK_ID_SIZE];
  start("examples.send_emails",
        "{\"recipients\": [\"a@example.com\", \"b@bounce.example\", \"c@example.com\","
        " \"not-an-address\", \"d@bounce.example\"],"
        " \"fail\": [\"b@bounce.example\", \"d@bounce.example\"], \"delay_ms\": 5}",
        id);
  rtq_task *t = finish(id);
  json_t *r = result_of(t);
  assert_int_equal(int_field(r, "total_recipients"), 5);
  assert_int_equal(int_field(r, "sent_count"), 2);
  assert_int_equal(int_field(r, "failed_count"), 3);
  json_t *failed = json_object_get(r, "failed");
  assert_int_equal(json_array_size(failed), 3);
  assert_string_equal(json_string_value(json_array_get(failed, 0)), "b@bounce.example");
  assert_string_equal(json_string_value(json_array_get(failed, 1)), "not-an-address");
  assert_string_equal(json_string_value(json_array_get(failed, 2)), "d@bounce.example");
  assert_true(t->progress == 100.0);
  json_decref(r);
  rtq_task_free(t);
}

static void test_examples_email_without_recipients_fails(void **state) {
  (void)state;
  char id[RTQ_TASK_ID_SIZE];
  start("examples.send_emails", "{\"fail\": []}", id);
  rtq_task *t = finish(id);
  assert_failed_with(t, "INVALID_ARGUMENT");
  rtq_task_free(t);
  start("examples.send_emails", "{\"recipients\": [\"a@example.com\", 42]}", id);
  t = finish(id);
  assert_failed_with(t, "INVALID_ARGUMENT");
  rtq_task_free(t);
}

/* ---- data export ------------------------------------------------------ */

static void test_examples_export_csv_contents(void **state) {
  (void)state;
  char out[512], json[700], id[RTQ_TASK_ID_SIZE];
  subdir("csv", out, sizeof out);
  snprintf(json, sizeof json, "{\"format\": \"csv\", \"records\": 250, \"output_dir\": \"%s\"}", out);
  start("examples.export_data", json, id);
  rtq_task *t = finish(id);
  json_t *r = result_of(t);
  char expect[700];
  snprintf(expect, sizeof expect, "%s/export-%s.csv", out, id);
  assert_string_equal(str_field(r, "filename"), expect);
  assert_string_equal(str_field(r, "format"), "csv");
  assert_int_equal(int_field(r, "total_records"), 250);

  size_t len;
  char *text = read_file(expect, &len);
  assert_int_equal(int_field(r, "bytes"), (long long)len);
  int lines = 0;
  for (size_t i = 0; i < len; i++) lines += text[i] == '\n';
  assert_int_equal(lines, 251); /* the header and one line per record */
  assert_true(strncmp(text, "id,name,email,score,active\n1,User 1,user1@example.com,37,true\n", 62) == 0);
  assert_non_null(strstr(text, "\n250,User 250,user250@example.com,50,true\n"));
  assert_int_equal(count_entries(out), 1); /* no .part left behind */
  free(text);
  json_decref(r);
  rtq_task_free(t);
}

static void test_examples_export_json_contents(void **state) {
  (void)state;
  char out[512], json[700], id[RTQ_TASK_ID_SIZE];
  subdir("json", out, sizeof out);
  snprintf(json, sizeof json, "{\"format\": \"json\", \"records\": 150, \"output_dir\": \"%s\"}", out);
  start("examples.export_data", json, id);
  rtq_task *t = finish(id);
  json_t *r = result_of(t);
  assert_int_equal(int_field(r, "total_records"), 150);
  json_error_t err;
  json_t *doc = json_load_file(str_field(r, "filename"), 0, &err);
  if (doc == NULL) fail_msg("export is not JSON: %s (line %d)", err.text, err.line);
  assert_int_equal(json_array_size(doc), 150);
  json_t *last = json_array_get(doc, 149);
  assert_int_equal(json_integer_value(json_object_get(last, "id")), 150);
  assert_string_equal(json_string_value(json_object_get(last, "email")), "user150@example.com");
  assert_int_equal(json_integer_value(json_object_get(last, "score")), 150 * 37 % 100);
  assert_true(json_is_false(json_object_get(last, "active")));
  /* Progress was reported every 100 records and ended at 100 %. */
  assert_true(t->progress == 100.0);
  assert_string_equal(t->progress_message, "150/150 records");
  json_decref(doc);
  json_decref(r);
  rtq_task_free(t);
}

static void test_examples_export_invalid_format_writes_nothing(void **state) {
  (void)state;
  char out[512], json[700], id[RTQ_TASK_ID_SIZE];
  subdir("xml", out, sizeof out);
  snprintf(json, sizeof json, "{\"format\": \"xml\", \"records\": 10, \"output_dir\": \"%s\"}", out);
  start("examples.export_data", json, id);
  rtq_task *t = finish(id);
  assert_failed_with(t, "INVALID_FORMAT");
  char *d = details_of(t);
  json_t *details = json_loads(d, 0, NULL);
  assert_string_equal(json_string_value(json_object_get(details, "format")), "xml");
  assert_int_equal(json_array_size(json_object_get(details, "supported")), 2);
  assert_int_equal(count_entries(out), 0);
  json_decref(details);
  free(d);
  rtq_task_free(t);
}

static bool has_progress(const char *id) {
  rtq_task *t = NULL;
  bool yes = rtq_get_task(cl, id, &t) == 0 && t->status == RTQ_STATUS_RUNNING && t->progress > 0;
  rtq_task_free(t);
  return yes;
}

static void test_examples_export_cancelled_leaves_no_file(void **state) {
  (void)state;
  char out[512], json[700], id[RTQ_TASK_ID_SIZE];
  subdir("cancel", out, sizeof out);
  snprintf(json, sizeof json,
           "{\"format\": \"csv\", \"records\": 100000, \"delay_ms\": 50, \"output_dir\": \"%s\"}", out);
  start("examples.export_data", json, id);
  RTQ_TEST_WAIT_FOR(has_progress(id), WAIT_MS);
  assert_int_equal(count_entries(out), 1); /* the .part file being written */
  int requested = 0;
  assert_int_equal(rtq_cancel_task(cl, id, &requested), 0);
  assert_int_equal(requested, 1);
  rtq_task *t = finish(id);
  assert_int_equal(t->status, RTQ_STATUS_CANCELLED);
  assert_true(t->progress < 100.0);
  /* The handler removes its .part file on its way out. */
  RTQ_TEST_WAIT_FOR(count_entries(out) == 0, 5000);
  rtq_task_free(t);
}

/* ---- the producer ----------------------------------------------------- */

/* Runs rtq-example-producer with args (NULL-terminated, after the binary
 * and --redis URL); its stdout goes to out. Returns its exit status. */
static int run_producer(const char *out, int timeout_ms, const char *const *args) {
  char bin[512];
  assert_non_null(rtq_test_bin_path("examples/rtq-example-producer", bin, sizeof bin));
  const char *argv[16] = {bin, "--redis", rtq_test_redis_url()};
  size_t n = 3;
  for (size_t i = 0; args[i] != NULL && n < 15; i++) argv[n++] = args[i];
  argv[n] = NULL;
  unlink(out);
  rtq_test_spawn_options so = {.path = bin, .argv = argv, .output_path = out};
  pid_t pid = rtq_test_spawn_ex(&so);
  assert_true(pid > 0);
  int status = 0;
  if (rtq_test_wait_exit(pid, timeout_ms, &status) != 0) {
    rtq_test_terminate(pid, SIGKILL, 1000, NULL);
    fail_msg("%s did not exit within %d ms", bin, timeout_ms);
  }
  assert_true(WIFEXITED(status));
  return WEXITSTATUS(status);
}

static void test_examples_producer_start_prints_id(void **state) {
  (void)state;
  char out[512], exp_dir[512], json[700];
  snprintf(out, sizeof out, "%s/start.out", dir);
  subdir("producer", exp_dir, sizeof exp_dir);
  snprintf(json, sizeof json, "{\"records\": 20, \"output_dir\": \"%s\"}", exp_dir);
  const char *args[] = {"start", "export", json, NULL};
  assert_int_equal(run_producer(out, 10000, args), 0);
  size_t len;
  char *text = read_file(out, &len);
  while (len > 0 && text[len - 1] == '\n') text[--len] = '\0';
  assert_int_equal(rtq_validate_name(text), 0);
  rtq_task *t = finish(text);
  json_t *r = result_of(t);
  assert_int_equal(int_field(r, "total_records"), 20);
  json_decref(r);
  rtq_task_free(t);
  free(text);

  const char *bad[] = {"start", "fax", NULL};
  assert_int_equal(run_producer(out, 10000, bad), 2);
}

static void test_examples_producer_demo_ends_as_expected(void **state) {
  (void)state;
  char out[512], input[512];
  snprintf(out, sizeof out, "%s/demo.out", dir);
  snprintf(input, sizeof input, "%s/demo.bin", dir);
  write_file(input, 16 * 1024);
  const char *args[] = {"demo", "--file", input, "--timeout", "40", NULL};
  int rc = run_producer(out, 60000, args);
  size_t len;
  char *text = read_file(out, &len);
  if (rc != 0) fail_msg("demo exited %d:\n%s", rc, text);
  assert_non_null(strstr(text, "demo: 3 completed, 1 cancelled, 1 timeout, 0 failed, 0 unfinished: as expected"));
  free(text);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_examples_file_reads_every_byte),
      cmocka_unit_test(test_examples_file_empty_file),
      cmocka_unit_test(test_examples_file_missing_fails_file_not_found),
      cmocka_unit_test(test_examples_file_folder_fails_not_a_file),
      cmocka_unit_test(test_examples_email_counts_sent_and_failed),
      cmocka_unit_test(test_examples_email_without_recipients_fails),
      cmocka_unit_test(test_examples_export_csv_contents),
      cmocka_unit_test(test_examples_export_json_contents),
      cmocka_unit_test(test_examples_export_invalid_format_writes_nothing),
      cmocka_unit_test(test_examples_export_cancelled_leaves_no_file),
      cmocka_unit_test(test_examples_producer_start_prints_id),
      cmocka_unit_test(test_examples_producer_demo_ends_as_expected),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
