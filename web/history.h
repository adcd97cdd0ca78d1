/*
 * history.h - the thread that keeps the throughput history recorded
 * (history.c; the history itself is librtq's rtq_throughput_*).
 */
#ifndef RTQ_WEB_HISTORY_H
#define RTQ_WEB_HISTORY_H

#include "rtq/client.h"

typedef struct web_history web_history;

/* Records now and every 10 s on c (borrowed). 0 or RTQ_E*. */
int web_history_start(rtq_client *c, web_history **out);
/* Stops the thread and frees. NULL does nothing. */
void web_history_stop(web_history *h);

#endif
