/* Character classes of the text formats lib/ parses (HTTP, URLs, hex):
 * one table, one lookup per byte. Inside lib/, and the CLI (bench), which
 * links the static archive; not exported by libsockit.so. */
#ifndef SOCKIT_CHARS_INT_H
#define SOCKIT_CHARS_INT_H

#include <stdbool.h>
#include <stddef.h>

enum {
    SK__CH_TCHAR = 1 << 0, /* RFC 9110 tchar: a token's byte (header names, methods) */
    SK__CH_TEXT = 1 << 1,  /* HTAB / SP / VCHAR / obs-text: field values, reasons */
    SK__CH_HEX = 1 << 2,   /* HEXDIG, either case */
};

extern const unsigned char sk__char_class[256];
extern const unsigned char sk__hex_value[256]; /* 0..15, or 0xff */

static inline bool sk__is(unsigned char c, unsigned cls)
{
    return sk__char_class[c] & cls;
}

/* A hex digit's value, or -1. */
static inline int sk__hex_digit(unsigned char c)
{
    return sk__hex_value[c] < 16 ? sk__hex_value[c] : -1;
}

/* Decodes 2*n hex digits of hex into out[0..n). Returns 0, or -1 at a byte
 * that is not one. */
int sk__hex_decode(const char *hex, unsigned char *out, size_t n);

#endif
