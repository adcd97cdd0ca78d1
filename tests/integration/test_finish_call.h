/*
 * test_finish_call.h - the fixed part of a finish.lua call, for the tests
 * that play a worker by hand: the 11 shared keys and the 7 shared values
 * (common/lua/finish.lua's header). The caller appends each task's values.
 */
#ifndef RTQ_TEST_FINISH_CALL_H
#define RTQ_TEST_FINISH_CALL_H

#include <stdbool.h>

#include "argv.h"
#include "keys.h"
#include "scripts.h"

/* Resets a and starts it as finish.lua (EVAL when use_eval) for worker
 * wid; ttl is the default result TTL in seconds, history "1" or "0". */
static inline void tf_finish_head(rtq_argv *a, const rtq_keys *k, const char *wid, const char *ttl,
                                  const char *history, bool use_eval) {
  const rtq_key keys[11] = {rtq_keys_processing(k, wid),
                            rtq_keys_status(k, RTQ_STATUS_RUNNING),
                            rtq_keys_deadlines(k),
                            rtq_keys_history(k),
                            rtq_keys_stats(k),
                            rtq_keys_status(k, RTQ_STATUS_PENDING),
                            rtq_keys_delayed(k),
                            rtq_keys_status(k, RTQ_STATUS_COMPLETED),
                            rtq_keys_status(k, RTQ_STATUS_FAILED),
                            rtq_keys_status(k, RTQ_STATUS_CANCELLED),
                            rtq_keys_status(k, RTQ_STATUS_TIMEOUT)};
  rtq_script_argv(a, RTQ_SCRIPT_FINISH, 11, use_eval);
  for (int i = 0; i < 11; i++) rtq_argv_add(a, keys[i].s, keys[i].len);
  rtq_argv_add_str(a, wid);
  rtq_argv_add_str(a, ttl);
  rtq_argv_add_str(a, history);
  const rtq_key shared[4] = {rtq_keys_chan_events(k), rtq_keys_task_prefix(k),
                             rtq_keys_cancel_prefix(k), rtq_keys_chan_task_prefix(k)};
  for (int i = 0; i < 4; i++) rtq_argv_add(a, shared[i].s, shared[i].len);
}

#endif
