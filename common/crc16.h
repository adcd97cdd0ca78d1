/*
 * crc16.h - Redis Cluster key slots.
 *
 * A key's slot is CRC16(key) mod 16384, where CRC16 is the XMODEM variant
 * (polynomial 0x1021, initial value 0, no reflection): CRC16("123456789")
 * is 0x31C3. When the key has a hash tag, only the tag is hashed: the
 * bytes between the first '{' and the first '}' after it, provided there
 * is at least one byte between them. "{}" or an unclosed '{' hash the
 * whole key, so "{}x" and "{x" are slots of their own.
 */
#ifndef RTQ_CRC16_H
#define RTQ_CRC16_H

#include <stddef.h>
#include <stdint.h>

#define RTQ_CLUSTER_SLOTS 16384

/* CRC16/XMODEM of p[0..n). */
uint16_t rtq_crc16(const void *p, size_t n);
/* The cluster slot (0..16383) of key[0..n), hash tags applied. */
int rtq_key_slot(const void *key, size_t n);

#endif
