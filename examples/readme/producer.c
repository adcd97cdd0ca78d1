/* Enqueue a task, wait for it, print its result.
 * Build: cc -o producer producer.c $(pkg-config --cflags --libs rtq) */
#include <stdio.h>
#include <stdlib.h>
#include <rtq/client.h>

int main(void) {
  rtq_client *c;
  if (rtq_client_new(NULL, &c) != 0) {           /* RTQ_REDIS_URL or 127.0.0.1:6379 */
    fprintf(stderr, "%s\n", rtq_client_errstr(NULL));
    return 1;
  }
  rtq_args *args = rtq_args_new();
  rtq_args_set_str(args, "name", "world");
  char id[RTQ_TASK_ID_SIZE];
  int rc = rtq_create_task(c, "hello", args, NULL, id, NULL);
  rtq_args_free(args);
  rtq_task *t = NULL;
  if (rc == 0) rc = rtq_wait_for_task(c, id, 30000, &t); /* 30 s */
  char *json = NULL;
  if (rc == 0 && rtq_task_result_json(t, &json) == 0)
    printf("%s %s %s\n", id, rtq_status_name(t->status), json);
  else fprintf(stderr, "%s\n", rtq_client_errstr(c));
  free(json);
  rtq_task_free(t);
  rtq_client_free(c);
  return rc == 0 ? 0 : 1;
}
