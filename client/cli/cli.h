/*
 * cli.h - what the files of the `rtq` command-line tool share: the run
 * context, option parsing, exit codes and output helpers. The commands are
 * thin: every Redis access goes through the public API in rtq/client.h.
 */
#ifndef RTQ_CLI_H
#define RTQ_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "rtq/client.h"

/* Exit codes (docs/CLIENT.md). */
enum {
  CLI_OK = 0,
  CLI_ENDED = 1,    /* the task ended other than completed; a task state refused */
  CLI_USAGE = 2,    /* usage or invalid input */
  CLI_NOTFOUND = 3,
  CLI_REDIS = 4,    /* Redis unreachable or a Redis error */
  CLI_TIMEOUT = 5,
  CLI_REPLICAS = 6, /* enqueued, but fewer replicas than --wait-replicas acknowledged it */
  CLI_UNVERIFIED = 7, /* --result-keys: the task's end carries no valid signature */
  CLI_INTERRUPTED = 130 /* Ctrl-C (SIGINT) while waiting */
};

/* One run of the tool. */
typedef struct cli {
  const char *redis_url;  /* --redis; NULL: RTQ_REDIS_URL or the default */
  const char *redis_url_file; /* --redis-url-file; NULL: RTQ_REDIS_URL_FILE or none */
  const char *ns;         /* --namespace; NULL: RTQ_NAMESPACE or "rtq" */
  bool json;              /* --json */
  rtq_client *client;     /* set by cli_connect */
  /* The other settings a client uses (README "Configuration"); NULL: the
   * RTQ_* variable or the default. */
  const char *log_level;            /* --log-level */
  const char *task_result_ttl;      /* --task-result-ttl */
  const char *enable_task_history;  /* --enable-task-history */
  const char *wait_replicas;        /* --wait-replicas */
  const char *wait_timeout;         /* --wait-timeout */
  const char *protocol;             /* --protocol: 1 or 2 */
  const char *signing_key_file;     /* --signing-key-file: sign the tasks created */
  const char *result_keys;          /* --result-keys: verify the outcomes read */
  const char *task_keys;            /* --task-keys: the producers' keys, for ends they sign */
  int wait_replicas_n;              /* as resolved by cli_connect */
} cli;

/* An option of a command. value is NULL until given; a flag without a
 * value is set to "". */
typedef enum { OPT_FLAG, OPT_VALUE, OPT_OPTIONAL } cli_opt_kind;

typedef struct cli_opt {
  const char *name;       /* without the dashes: "queue" */
  cli_opt_kind kind;      /* OPT_OPTIONAL takes a value only as --name=value */
  const char *value;
} cli_opt;

/*
 * Parses argv (the words after the command name): the command's options
 * (opts, n of them, may be 0), the global ones (--redis, --namespace,
 * --json) anywhere, "--" ending options. Positionals go to pos (capacity
 * maxpos, count in *npos). Prints the error and returns CLI_USAGE on a bad
 * word, else CLI_OK.
 */
int cli_parse(cli *ctx, int argc, char **argv, cli_opt *opts, size_t n, const char **pos,
              int maxpos, int *npos);

/* Error output on stderr: one line "rtq: <text>", or with --json one
 * object {"error":{"code":"RTQ_E...","message":"<text>"}}. cli_errorf is a
 * usage or input error (code RTQ_EINVAL); cli_error_code names the code. */
void cli_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cli_error_code(const char *code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A note that is not an error: "rtq: <text>", or {"warning":{"message"}}. */
void cli_warnf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* One warning per line of a listing's or stats' skipped-queue notes. */
void cli_warn_skipped(const char *notes);
/* Chooses the error format; main calls it once, before any error. */
void cli_set_json_errors(bool on);
/* Prints "rtq: <what>: <detail>" for an API error and returns the exit code
 * it maps to. */
int cli_fail(cli *ctx, int rc, const char *what);
/* Exit code for an RTQ_E* code. */
int cli_exit_code(int rc);

/* The wait_replicas the connected client uses (0: no WAIT). */
int cli_wait_replicas(const cli *ctx);
/* Connects ctx->client. Returns CLI_OK or an exit code after printing. */
int cli_connect(cli *ctx);
/* 2 when arg is a global option whose value is the next word, 1 when it is
 * one that stands alone ("--json", "--redis=URL"), 0 when it is none. */
int cli_global_words(const char *arg);
/* Prints the settings the client uses ("name=value" lines, as
 * --print-config shows them). Returns CLI_OK, or CLI_USAGE after printing
 * an invalid flag or RTQ_* variable. */
int cli_print_settings(const cli *ctx);

/* The longest duration any option takes. */
#define CLI_MAX_DURATION_MS 31536000000ull /* 365 days */
/* Parses a duration with rtq_parse_duration_ms (the parser every rtq binary
 * uses: "30" and "1.5" are seconds; "1500ms", "2s", "5m", "1h") into ms,
 * within [min_ms, max_ms]. Prints and returns CLI_USAGE when it is not one. */
int cli_duration(const char *opt, const char *s, uint64_t min_ms, uint64_t max_ms, uint64_t *ms);
/* Parses a decimal integer in [lo, hi]; prints and returns CLI_USAGE. */
int cli_integer(const char *opt, const char *s, long long lo, long long hi, long long *out);
/* Checks a task id, name or queue given on the command line. */
int cli_name(const char *what, const char *s);

/* From now on, SIGINT prints that task id goes on (a line, or a JSON error
 * {"code":"INTERRUPTED","message","id"} with --json) on stderr and exits
 * CLI_INTERRUPTED at once. id NULL: exits quietly (watch, which follows
 * many tasks). */
void cli_on_interrupt(const cli *ctx, const char *id);

/* Output. */
/* The task, human-readable or as one JSON object line; with_rate adds the
 * rate and ETA of a running task (cli_status_rate; JSON "rate", "eta_s",
 * null when unknown). */
int cli_print_task(cli *ctx, const rtq_task *t, bool with_rate);
/* Rate (%/s) and ETA (s, from t1) of a task whose progress went from p0 at
 * t0_ms to p1 at t1_ms. 0 when the samples say nothing (no time passed or
 * no progress made), else 1. */
int cli_rate_eta(double p0, uint64_t t0_ms, double p1, uint64_t t1_ms, double *rate,
                 double *eta_s);
/* The same for a running task read now: from started_at (progress 0) to
 * its progress at Redis TIME. 0 when not running, no progress yet, or TIME
 * failed. ctx NULL: 0. */
int cli_status_rate(cli *ctx, const rtq_task *t, double *rate, double *eta_s);
/* "2.5%/s" (buf 16 bytes); "eta 1h02m", "eta 3m05s", "eta 12s" (32). */
const char *cli_rate(double rate, char buf[16]);
const char *cli_eta(double s, char buf[32]);
/* Prints a jansson value as one compact line on stdout; takes the
 * reference. CLI_REDIS (out of memory) when it cannot. */
int cli_print_json(json_t *v);
/* The task as a jansson object (new reference, NULL when out of memory). */
json_t *cli_task_json(const rtq_task *t);
/* "2026-11-25T12:00:00.123Z", or "-" for 0. buf holds 32 bytes. */
/* Task-supplied text made safe for a terminal (output.c): controls become
 * spaces ('\n' kept with multiline), bad UTF-8 U+FFFD; cut to fit cap.
 * Returns the length written. cli_clean_dup: malloc'd, never cut; NULL
 * when out of memory. */
size_t cli_clean(char *dst, size_t cap, const char *src, bool multiline);
char *cli_clean_dup(const char *src, bool multiline);
const char *cli_time(uint64_t ms, char buf[32]);
/* "42%" or "42.5%". buf holds 16 bytes. */
const char *cli_percent(double p, char buf[16]);

/* Exit code of a finished task: CLI_OK when completed, else CLI_ENDED. */
int cli_task_exit(const rtq_task *t);

/* The commands: argv holds the words after the command name. */
int cmd_enqueue(cli *ctx, int argc, char **argv);
int cmd_status(cli *ctx, int argc, char **argv);
int cmd_cancel(cli *ctx, int argc, char **argv);
int cmd_wait(cli *ctx, int argc, char **argv);
int cmd_retry(cli *ctx, int argc, char **argv);
int cmd_list(cli *ctx, int argc, char **argv);
int cmd_watch(cli *ctx, int argc, char **argv);
int cmd_stats(cli *ctx, int argc, char **argv);
int cmd_workers(cli *ctx, int argc, char **argv);
int cmd_dead(cli *ctx, int argc, char **argv);
int cmd_schedule(cli *ctx, int argc, char **argv);
int cmd_queue(cli *ctx, int argc, char **argv);
int cmd_tasks(cli *ctx, int argc, char **argv);

#endif
