/*
 * config.h - the task-manager settings shared by every binary.
 *
 *   setting               default                     env var
 *   max_concurrent_tasks  50                          RTQ_MAX_CONCURRENT_TASKS
 *   default_timeout       300 (s)                     RTQ_DEFAULT_TIMEOUT
 *   task_result_ttl       86400 (s)                   RTQ_TASK_RESULT_TTL
 *   enable_task_history   true                        RTQ_ENABLE_TASK_HISTORY
 *   log_level             INFO                        RTQ_LOG_LEVEL
 *   cleanup_interval      3600 (s)                    RTQ_CLEANUP_INTERVAL
 *   max_task_history      10000                       RTQ_MAX_TASK_HISTORY
 *   redis_url             redis://127.0.0.1:6379/0    RTQ_REDIS_URL
 *   redis_url_file        (none)                      RTQ_REDIS_URL_FILE
 *   namespace             rtq                         RTQ_NAMESPACE
 *   wait_replicas         0 (no WAIT)                 RTQ_WAIT_REPLICAS
 *   wait_timeout          1000 (ms)                   RTQ_WAIT_TIMEOUT
 *   protocol              2                           RTQ_PROTOCOL
 *
 * Precedence: defaults < environment < command-line flags. Binaries set
 * from flags with rtq_config_set(), which takes the same names (and the
 * flag spelling with dashes).
 */
#ifndef RTQ_CONFIG_H
#define RTQ_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "log.h"

/* Value type. */
typedef struct rtq_config {
  int max_concurrent_tasks;   /* 1..10000 */
  int default_timeout;        /* s, 1..31536000 */
  int task_result_ttl;        /* s, 1..31536000 */
  bool enable_task_history;
  rtq_log_level log_level;
  int cleanup_interval;       /* s, 1..86400 */
  int max_task_history;       /* 0..100000000 */
  char redis_url[512];
  char redis_url_file[1024];  /* setting it reads the file into redis_url */
  char ns[65];
  int wait_replicas;          /* 0..64: after each create or finish, WAIT for
                               * this many replicas (0: never WAIT) */
  int wait_timeout;           /* ms, 1..60000: how long that WAIT may take */
  int protocol;               /* 1 or 2: the wire protocol (docs/PROTOCOL.md,
                               * docs/PROTOCOL.md) every process of a
                               * namespace must share; rtq_proto_check */
} rtq_config;

/* Fills the defaults above (c is the caller's storage). */
void rtq_config_defaults(rtq_config *c);

/*
 * Sets one setting by name ("max_concurrent_tasks" or "max-concurrent-tasks")
 * from text. Returns 0; RTQ_ENOTFOUND for an unknown name; RTQ_EINVAL for an
 * invalid value, with errbuf saying e.g.
 *   "invalid max_concurrent_tasks \"abc\": expected an integer 1..10000".
 * Booleans accept true/false/1/0/yes/no/on/off. Names match in any case.
 * On error c is unchanged. A redis_url error never repeats the URL (it may
 * hold a password); other errors quote the value, cut to 64 bytes.
 * redis_url_file reads the file at once (rtq_config_read_url_file) and
 * sets redis_url from it; its errors name the path, never the content.
 */
int rtq_config_set(rtq_config *c, const char *name, const char *value, char *errbuf, size_t errcap);

/* Applies every RTQ_<NAME> variable present in the environment. Stops at
 * the first invalid one: RTQ_EINVAL with errbuf naming the variable
 * ("RTQ_DEFAULT_TIMEOUT: invalid default_timeout ..."); the variables
 * before it stay applied. Reads the environment: not safe against a
 * concurrent setenv. */
int rtq_config_from_env(rtq_config *c, char *errbuf, size_t errcap);
/* The same, leaving out the settings named in skip (NULL-terminated; may be
 * NULL): a library given the URL by its caller does not read the
 * variables that would only be overridden. */
int rtq_config_from_env_except(rtq_config *c, const char *const *skip, char *errbuf, size_t errcap);

/*
 * Reads a Redis URL from the file at path into out (cap bytes): one line,
 * its trailing newline (LF or CRLF) stripped. Logs a warning when others
 * may read or write the file. Returns 0; RTQ_EIO (cannot open or read it)
 * or RTQ_EINVAL (not a regular file, empty, too long, several lines, a NUL
 * byte), with errbuf naming the path and the reason, never the content.
 * The URL itself is not parsed here.
 */
int rtq_config_read_url_file(const char *path, char *out, size_t cap, char *errbuf, size_t errcap);

/*
 * Writes "name=value" lines for the settings named in names (a
 * NULL-terminated list, in that order; unknown names are skipped), the
 * values as a flag would take them back, the password of redis_url shown
 * as "***". Every binary's --print-config prints its settings with this.
 */
void rtq_config_print(const rtq_config *c, const char *const *names, FILE *f);

/*
 * Overwrites, in place, the password of every URL among argv[1..argc)
 * ("--redis=redis://u:pass@h" or a separate "redis://u:pass@h") with '*',
 * so /proc/<pid>/cmdline and ps no longer show it. Call it once the flags
 * are parsed and their values copied: the strings change under any
 * pointer into argv. Until then the password is visible, which is why
 * RTQ_REDIS_URL (readable only by the process's user) is the better place.
 */
void rtq_config_hide_secrets(int argc, char **argv);
/* The same for one string. */
void rtq_config_hide_secret(char *arg);

/*
 * Parses a duration flag into ms: a number with an optional unit, "ms",
 * "s", "m" or "h"; a bare number is seconds, as in the settings above
 * ("1.5" = 1500 ms, "250ms", "2m"). Every binary reads duration flags with
 * this, so one spelling means the same everywhere. Returns 0, RTQ_EINVAL
 * (not a duration) or RTQ_ERANGE (outside min_ms..max_ms).
 */
int rtq_parse_duration_ms(const char *s, long min_ms, long max_ms, long *out);

#endif
