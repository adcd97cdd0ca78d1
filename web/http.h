/*
 * http.h - the HTTP server around web_route (http.c).
 */
#ifndef RTQ_WEB_HTTP_H
#define RTQ_WEB_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "web.h"

typedef struct web_http web_http;

/* Binds and listens on spec ("HOST:PORT", "[V6]:PORT"; port 0 picks a free
 * one). *loopback tells whether the address is a loopback one; url gets
 * "http://ADDR:PORT/" with the port bound. 0, or -1 with a reason in why. */
int web_http_listen(const char *spec, bool *loopback, char *url, size_t ucap, int *fd,
                    char *why, size_t wcap);
/* Serves w on the listening socket fd (taken over). 0 or RTQ_E*. */
int web_http_start(web_ctx *w, int fd, int max_connections, web_http **out);
/* Stops accepting, waits for every connection thread, closes. Call
 * web_hub_close first so that event streams end. NULL does nothing. */
void web_http_stop(web_http *h);

#endif
