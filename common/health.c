/* health.c - the liveness file and the --health command; see health.h. */
#include "health.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "rtq/common.h"

/* Largest --max-age: a day, like every other duration flag. */
#define MAX_AGE_LIMIT_MS 86400000L

static int fail(char *errbuf, size_t errcap, const char *fmt, const char *arg) __attribute__((format(printf, 3, 0)));

static int fail(char *errbuf, size_t errcap, const char *fmt, const char *arg) {
  if (errbuf != NULL && errcap > 0) snprintf(errbuf, errcap, fmt, arg);
  return RTQ_EINVAL;
}

static int set_path(rtq_health_args *h, const char *v, char *errbuf, size_t errcap) {
  size_t n = strlen(v);
  if (n == 0) return fail(errbuf, errcap, "%s: empty health file path", "--health-file");
  if (n >= sizeof h->path)
    return fail(errbuf, errcap, "--health-file is longer than %s bytes", "511");
  memcpy(h->path, v, n + 1);
  return 0;
}

/*
 * Whether argv[*i] is the flag name (alone or as name=value); on a match
 * *value points at its value (the next argument, consumed by moving *i on)
 * or stays NULL for a flag that takes none. Returns 1 on a match, 0 when it
 * is another argument, -1 when the value is missing.
 */
static int match(int argc, char **argv, int *i, const char *name, bool takes_value,
                 const char **value) {
  const char *a = argv[*i];
  size_t n = strlen(name);
  *value = NULL;
  if (strncmp(a, name, n) != 0) return 0;
  if (a[n] == '\0') {
    if (!takes_value) return 1;
    if (*i + 1 >= argc) return -1;
    *value = argv[++*i];
    return 1;
  }
  if (a[n] == '=' && takes_value) {
    *value = a + n + 1;
    return 1;
  }
  return 0;
}

int rtq_health_take_args(rtq_health_args *h, int *argc, char **argv, const char *default_path,
                         char *errbuf, size_t errcap) {
  memset(h, 0, sizeof *h);
  h->max_age_ms = RTQ_HEALTH_MAX_AGE_MS;
  const char *env = getenv("RTQ_HEALTH_FILE");
  h->path_given = env != NULL && env[0] != '\0';
  int rc = set_path(h, h->path_given ? env : default_path, errbuf, errcap);
  if (rc != 0) return rc;
  bool max_age_given = false;
  int out = 1, i = 1;
  for (; i < *argc; i++) {
    const char *v;
    int m;
    if (strcmp(argv[i], "--") == 0) break;
    if ((m = match(*argc, argv, &i, "--health", false, &v)) == 1) {
      h->check = true;
    } else if ((m = match(*argc, argv, &i, "--health-file", true, &v)) != 0) {
      if (m < 0) return fail(errbuf, errcap, "%s needs a path", "--health-file");
      if ((rc = set_path(h, v, errbuf, errcap)) != 0) return rc;
      h->path_given = true;
    } else if ((m = match(*argc, argv, &i, "--max-age", true, &v)) != 0) {
      if (m < 0) return fail(errbuf, errcap, "%s needs a duration", "--max-age");
      if (rtq_parse_duration_ms(v, 1, MAX_AGE_LIMIT_MS, &h->max_age_ms) != 0)
        return fail(errbuf, errcap, "invalid --max-age %s: expected e.g. 500ms, 15s, 1m", v);
      max_age_given = true;
    } else {
      argv[out++] = argv[i];
    }
  }
  for (; i < *argc; i++) argv[out++] = argv[i]; /* "--" and what follows */
  argv[out] = NULL;
  *argc = out;
  if (max_age_given && !h->check) return fail(errbuf, errcap, "%s is only for --health", "--max-age");
  return 0;
}

int rtq_health_reset(const char *path, char *errbuf, size_t errcap) {
  int fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0644);
  const struct timespec epoch[2] = {{0, 0}, {0, 0}};
  int rc = fd >= 0 ? futimens(fd, epoch) : -1;
  int e = errno;
  if (fd >= 0) close(fd);
  if (rc == 0) return 0;
  if (errbuf != NULL && errcap > 0)
    snprintf(errbuf, errcap, "health file %s: %s", path, strerror(e));
  return RTQ_EIO;
}

int rtq_health_touch(const char *path) {
  if (utimensat(AT_FDCWD, path, NULL, AT_SYMLINK_NOFOLLOW) == 0) return 0;
  if (errno != ENOENT) return RTQ_EIO;
  /* Removed under us (a /tmp cleaner): create it again, fresh. */
  int fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0644);
  if (fd < 0) return RTQ_EIO;
  int rc = futimens(fd, NULL);
  int e = errno;
  close(fd);
  errno = e;
  return rc == 0 ? 0 : RTQ_EIO;
}

int rtq_health_check(const char *path, long max_age_ms, long *age_ms) {
  struct stat st;
  *age_ms = 0;
  if (lstat(path, &st) != 0) return errno == ENOENT ? RTQ_ENOTFOUND : RTQ_EIO;
  if (st.st_mtim.tv_sec == 0 && st.st_mtim.tv_nsec == 0) return RTQ_ESTATE;
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  long long ms = ((long long)now.tv_sec - (long long)st.st_mtim.tv_sec) * 1000 +
                 (now.tv_nsec - st.st_mtim.tv_nsec) / 1000000;
  if (ms < 0) ms = 0; /* touched after our clock read */
  *age_ms = ms > MAX_AGE_LIMIT_MS * 1000 ? MAX_AGE_LIMIT_MS * 1000 : (long)ms;
  return ms <= max_age_ms ? 0 : RTQ_ETIMEDOUT;
}

int rtq_health_command(const char *prog, const char *what, const rtq_health_args *h) {
  long age;
  int rc = rtq_health_check(h->path, h->max_age_ms, &age);
  switch (rc) {
    case 0:
      printf("%s: healthy: last %s %.1f s ago (%s)\n", prog, what, (double)age / 1000, h->path);
      return 0;
    case RTQ_ETIMEDOUT:
      printf("%s: unhealthy: last %s %.1f s ago, more than %.1f s (%s)\n", prog, what,
             (double)age / 1000, (double)h->max_age_ms / 1000, h->path);
      break;
    case RTQ_ESTATE:
      printf("%s: unhealthy: no %s yet since the process started (%s)\n", prog, what, h->path);
      break;
    case RTQ_ENOTFOUND:
      printf("%s: unhealthy: no health file %s (is the process running, with this --health-file?)\n",
             prog, h->path);
      break;
    default:
      printf("%s: unhealthy: cannot read health file %s: %s\n", prog, h->path, strerror(errno));
      break;
  }
  return 1;
}

int rtq_health_start(const rtq_health_args *h, const char *prog, const char **path_out) {
  char err[RTQ_HEALTH_PATH_MAX + 128];
  *path_out = NULL;
  if (rtq_health_reset(h->path, err, sizeof err) == 0) {
    *path_out = h->path;
    return 0;
  }
  if (h->path_given) {
    fprintf(stderr, "%s: %s (see --health-file)\n", prog, err);
    return 2;
  }
  rtq_log(RTQ_LOG_WARNING, "running without a health file; --health will fail (set --health-file)",
          "error", err, NULL);
  return 0;
}

int rtq_health_cli(rtq_health_args *h, const char *prog, const char *what, const char *default_path,
                   int *argc, char **argv) {
  char err[256];
  if (rtq_health_take_args(h, argc, argv, default_path, err, sizeof err) != 0) {
    fprintf(stderr, "%s: %s\n(see %s --help)\n", prog, err, prog);
    return 2;
  }
  if (h->check) return rtq_health_command(prog, what, h);
  return -1;
}
