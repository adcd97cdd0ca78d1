/* consumer.c - a program outside the tree that uses the installed rtq:
 * public headers only, linked through pkg-config or find_package(rtq). */
#include <stdio.h>
#include <string.h>

#include <rtq/common.h>
#include <rtq/version.h>

int main(void) {
  const char *msg = rtq_strerror(RTQ_ENOTFOUND);
  const char *name = rtq_err_name(RTQ_ENOTFOUND);
  if (strcmp(msg, "no such task") != 0 || strcmp(name, "RTQ_ENOTFOUND") != 0) {
    fprintf(stderr, "consumer: unexpected %s / %s\n", msg, name);
    return 1;
  }
  printf("rtq %s: %s\n", RTQ_VERSION_STRING, msg);
  return 0;
}
