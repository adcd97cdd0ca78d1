/*
 * interrupt.c - Ctrl-C while the tool waits for a task.
 *
 * Stopping the wait does not stop the task: it lives in Redis and its
 * worker carries on. So SIGINT prints which task goes on (the id is all a
 * person has after `enqueue --wait`) and exits 130, as a shell reports a
 * command ended by SIGINT. The message is built before the handler is
 * installed; the handler itself only calls write(2) and _exit(2), which
 * are async-signal-safe, so it is correct whatever the waiting thread was
 * doing (inside hiredis, malloc or stdio).
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static char message[768];
static size_t message_len;

static void on_sigint(int sig) {
  (void)sig;
  if (message_len > 0) {
    ssize_t n = write(STDERR_FILENO, message, message_len);
    (void)n;
  }
  _exit(CLI_INTERRUPTED);
}

void cli_on_interrupt(const cli *ctx, const char *id) {
  int n = 0;
  /* Ids are names (A-Z a-z 0-9 . _ : -): nothing to escape in JSON. */
  if (id == NULL)
    n = 0;
  else if (ctx->json)
    n = snprintf(message, sizeof message,
                 "{\"error\":{\"code\":\"INTERRUPTED\",\"message\":\"interrupted; task %s goes "
                 "on (rtq status %s)\",\"id\":\"%s\"}}\n",
                 id, id, id);
  else
    n = snprintf(message, sizeof message,
                 "rtq: interrupted; task %s goes on (rtq status %s)\n", id, id);
  message_len = n > 0 && (size_t)n < sizeof message ? (size_t)n : 0;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
}
