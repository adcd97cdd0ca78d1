/*
 * http.h - the HTTP server around web_route (http.c).
 */
#ifndef RTQ_WEB_HTTP_H
#define RTQ_WEB_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "web.h"

typedef struct web_http web_http;

/* Serves w on the listening socket fd (taken over). 0 or RTQ_E*. */
int web_http_start(web_ctx *w, int fd, int max_connections, web_http **out);
/* Stops accepting, waits for every connection thread, closes. Call
 * web_hub_close first so that event streams end. NULL does nothing. */
void web_http_stop(web_http *h);

#endif
