/* condlog.c - log a condition, not every event of it (see condlog.h). */
#include "condlog.h"

#include <stddef.h>

rtq_condlog_line rtq_condlog_note(rtq_condlog *c, uint64_t now_ms, uint64_t n, uint64_t *count) {
  c->count += n;
  bool due = !c->logged || now_ms >= c->logged_at + c->every_ms;
  if (!due || (n == 0 && !c->on)) return RTQ_CONDLOG_NONE;
  rtq_condlog_line line = n == 0 ? RTQ_CONDLOG_END : c->on ? RTQ_CONDLOG_STILL : RTQ_CONDLOG_START;
  if (count != NULL) *count = c->count;
  c->on = n > 0;
  c->count = 0;
  c->logged = true;
  c->logged_at = now_ms;
  return line;
}
