/*
 * cmd_queue.c - queue control: `rtq queue pause Q` and `rtq queue resume Q`
 * (client.h, rtq_queue_pause). `rtq stats` shows a paused queue.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int cmd_queue(cli *ctx, int argc, char **argv) {
  const char *pos[3];
  int npos;
  int rc = cli_parse(ctx, argc, argv, NULL, 0, pos, 3, &npos);
  if (rc != CLI_OK) return rc;
  const char *verb = npos > 0 ? pos[0] : "";
  bool pause = strcmp(verb, "pause") == 0;
  if (!pause && strcmp(verb, "resume") != 0) {
    cli_errorf("queue needs pause or resume (rtq queue pause Q, rtq queue resume Q)");
    return CLI_USAGE;
  }
  if (npos != 2) {
    cli_errorf("queue %s needs one queue name", verb);
    return CLI_USAGE;
  }
  if ((rc = cli_name("queue", pos[1])) != CLI_OK || (rc = cli_connect(ctx)) != CLI_OK) return rc;
  int err = pause ? rtq_queue_pause(ctx->client, pos[1]) : rtq_queue_resume(ctx->client, pos[1]);
  if (err != 0) return cli_fail(ctx, err, pause ? "queue pause" : "queue resume");
  if (ctx->json) return cli_print_json(json_pack("{s:s, s:b}", "queue", pos[1], "paused", pause));
  printf("queue %s %s\n", pos[1], pause ? "paused: workers claim nothing from it; its backlog stays"
                                        : "resumed");
  return CLI_OK;
}
