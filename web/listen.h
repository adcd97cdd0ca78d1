/*
 * listen.h - binding the listening socket (listen.c).
 */
#ifndef RTQ_WEB_LISTEN_H
#define RTQ_WEB_LISTEN_H

#include <stdbool.h>
#include <stddef.h>

/* Binds and listens on spec ("HOST:PORT", "[V6]:PORT"; port 0 picks a free
 * one). *loopback tells whether the address is a loopback one; url gets
 * "http://ADDR:PORT/" with the port bound. 0, or -1 with a reason in why;
 * the caller closes *fd. */
int web_listen(const char *spec, bool *loopback, char *url, size_t ucap, int *fd, char *why,
               size_t wcap);

#endif
