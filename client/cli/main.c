/*
 * main.c - `rtq`: global options, the command table and dispatch.
 *
 *   rtq [--redis URL] [--namespace NS] [--json] COMMAND [ARGS...]
 *
 * Global options may also follow the command. Exit codes are listed in
 * cli.h and docs/CLIENT.md; every error is one line on stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "log.h"
#include "rtq/version.h"

static const struct command {
  const char *name;
  int (*run)(cli *ctx, int argc, char **argv);
  const char *usage;
} commands[] = {
    {"enqueue", cmd_enqueue,
     "enqueue NAME [ARGS_JSON] [--queue Q] [--timeout S] [--delay S] [--retries N]\n"
     "          [--result-ttl S] [--id ID] [--wait[=S]]"},
    {"status", cmd_status, "status ID [--queue Q]"},
    {"list", cmd_list, "list [--status S[,S..]] [--queue Q] [--name N] [--limit N] [--offset N] [--after ID]"},
    {"cancel", cmd_cancel, "cancel ID [--queue Q]"},
    {"wait", cmd_wait, "wait ID [--queue Q] [--timeout S]"},
    {"watch", cmd_watch, "watch [ID...] [--timeout S]"},
    {"stats", cmd_stats, "stats"},
    {"workers", cmd_workers, "workers"},
    {"retry", cmd_retry, "retry ID [--queue Q]"},
    {"dead", cmd_dead, "dead list [--limit N] [--offset N] | dead show INDEX | dead requeue INDEX|--all [--queue Q] | dead purge [--queue Q]"},
    {"queue", cmd_queue,
     "queue pause Q | queue resume Q | queue purge Q\n"
     "          | queue limit Q [--rate R/s [--burst N]] [--concurrency N] | queue limit Q --clear"},
    {"tasks", cmd_tasks, "tasks delete --status S[,S..] [--queue Q] [--older-than S]"},
    {"schedule", cmd_schedule,
     "schedule add ID CRON NAME [ARGS_JSON] [--queue Q] [--timeout S] [--tz ZONE]\n"
     "          | schedule list | schedule remove ID | schedule pause ID | schedule resume ID"},
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f) {
  fprintf(f,
          "usage: rtq [--redis URL] [--namespace NS] [--json] COMMAND ...\n"
          "\n"
          "commands:\n");
  for (size_t i = 0; i < NCOMMANDS; i++) fprintf(f, "  %s\n", commands[i].usage);
  fprintf(f,
          "\n"
          "Global options (before or after the command; '_' may stand for '-'):\n"
          "  --redis URL, --redis-url URL   (RTQ_REDIS_URL; default redis://127.0.0.1:6379/0)\n"
          "  --redis-url-file FILE          read that URL from FILE (RTQ_REDIS_URL_FILE)\n"
          "  --namespace NS                 (RTQ_NAMESPACE; default rtq)\n"
          "  --log-level LEVEL              DEBUG, INFO, WARNING, ERROR (RTQ_LOG_LEVEL; WARNING)\n"
          "  --task-result-ttl SECONDS      TTL of a task cancelled while pending\n"
          "                                 (RTQ_TASK_RESULT_TTL; 86400)\n"
          "  --enable-task-history BOOL     index a task cancelled while pending in the\n"
          "                                 history (RTQ_ENABLE_TASK_HISTORY; true)\n"
          "  --wait-replicas N              enqueue: wait for N replicas to acknowledge the task\n"
          "                                 (RTQ_WAIT_REPLICAS; 0: no wait)\n"
          "  --wait-timeout MS              that wait's timeout in ms (RTQ_WAIT_TIMEOUT; 1000)\n"
          "  --protocol N                   wire protocol: 2, the only one (RTQ_PROTOCOL;\n"
          "                                 1 is refused)\n"
          "  --signing-key-file FILE        sign the tasks created with the first\n"
          "                                 key of FILE (kid:hex lines; docs/SECURITY.md)\n"
          "  --result-keys FILE             the workers' keys; an end without a valid\n"
          "                                 signature of a key allowed for its status is reported\n"
          "                                 unverified (exit 7)\n"
          "  --task-keys FILE               with --result-keys: the producers' keys, for\n"
          "                                 the ends producers and the broker sign (default: the\n"
          "                                 --signing-key-file)\n"
          "  --json                         every command prints JSON\n"
          "  --print-config                 print these settings, then exit\n"
          "A rate is tasks per second (100/s, 0.5/s) or per minute or hour (600/m, 30/h);\n"
          "--rate off and --concurrency off remove one limit; queue limit Q alone shows them.\n"
          "Durations (S) are seconds (30, 1.5) or a number with a unit: 1500ms, 2s, 5m, 1h.\n"
          "Exit codes: 0 ok, 1 task ended other than completed (or its state refused the\n"
          "command), 2 usage or invalid input, 3 not found, 4 redis error, 5 timed out,\n"
          "6 enqueued but fewer replicas than --wait-replicas acknowledged it,\n"
          "7 the task's end is unverified (--result-keys: no valid signature),\n"
          "130 interrupted (Ctrl-C) while waiting; the task goes on.\n");
}

/* The library logs on stderr; a command-line tool shows warnings and
 * errors only, unless RTQ_LOG_LEVEL asks for more. */
static void set_log_level(void) {
  rtq_log_level l = RTQ_LOG_WARNING;
  const char *env = getenv("RTQ_LOG_LEVEL");
  if (env != NULL && rtq_log_level_parse(env, &l) != 0) l = RTQ_LOG_WARNING;
  rtq_log_set_level(l);
}

/* --json anywhere before "--" asks for JSON errors as well; it is found
 * before parsing so that an error in a word before it is JSON too. */
static bool wants_json(int argc, char **argv) {
  for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
    if (strncmp(argv[i], "--json", 6) == 0 && (argv[i][6] == '\0' || argv[i][6] == '=')) return true;
  return false;
}

int main(int argc, char **argv) {
  cli ctx;
  memset(&ctx, 0, sizeof ctx);
  set_log_level();
  cli_set_json_errors(wants_json(argc, argv));
  /* Global options before the command; the commands accept them after
   * it as well (cli_parse). */
  int i = 1;
  bool print_config = false;
  for (; i < argc && argv[i][0] == '-'; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      return CLI_OK;
    }
    if (strcmp(a, "--version") == 0) {
      printf("rtq %s\n", RTQ_VERSION_STRING);
      return CLI_OK;
    }
    if (strcmp(a, "--print-config") == 0) {
      print_config = true;
      continue;
    }
    /* Reuse the command parser for one global option (and its value). */
    const char *pos[1];
    int npos = 0, take = 1;
    if (cli_global_words(a) == 2 && i + 1 < argc) take = 2;
    int rc = cli_parse(&ctx, take, argv + i, NULL, 0, pos, 0, &npos);
    if (rc != CLI_OK) return rc;
    i += take - 1;
  }
  if (print_config) return cli_print_settings(&ctx);
  if (i >= argc) {
    if (wants_json(argc, argv))
      cli_errorf("no command given (try rtq --help)");
    else
      usage(stderr);
    return CLI_USAGE;
  }
  for (size_t c = 0; c < NCOMMANDS; c++) {
    if (strcmp(argv[i], commands[c].name) == 0) {
      int rc = commands[c].run(&ctx, argc - i - 1, argv + i + 1);
      rtq_client_free(ctx.client);
      return rc;
    }
  }
  cli_errorf("unknown command \"%.64s\" (try rtq --help)", argv[i]);
  return CLI_USAGE;
}
