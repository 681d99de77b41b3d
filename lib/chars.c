/* The character-class table behind lib/chars_int.h. */
#include <stddef.h>

#include "chars_int.h"

#define T SK__CH_TCHAR
#define X SK__CH_TEXT
#define H SK__CH_HEX

/* Built once at compile time: the ASCII rows, then obs-text (0x80..0xFF). */
#define ROW16(a) a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a
const unsigned char sk__char_class[256] = {
    ['\t'] = X, [' '] = X,
    ['!'] = T | X, ['"'] = X, ['#'] = T | X, ['$'] = T | X, ['%'] = T | X, ['&'] = T | X,
    ['\''] = T | X, ['('] = X, [')'] = X, ['*'] = T | X, ['+'] = T | X, [','] = X,
    ['-'] = T | X, ['.'] = T | X, ['/'] = X,
    ['0'] = T | X | H, ['1'] = T | X | H, ['2'] = T | X | H, ['3'] = T | X | H,
    ['4'] = T | X | H, ['5'] = T | X | H, ['6'] = T | X | H, ['7'] = T | X | H,
    ['8'] = T | X | H, ['9'] = T | X | H,
    [':'] = X, [';'] = X, ['<'] = X, ['='] = X, ['>'] = X, ['?'] = X, ['@'] = X,
    ['A'] = T | X | H, ['B'] = T | X | H, ['C'] = T | X | H, ['D'] = T | X | H,
    ['E'] = T | X | H, ['F'] = T | X | H, ['G'] = T | X, ['H'] = T | X, ['I'] = T | X,
    ['J'] = T | X, ['K'] = T | X, ['L'] = T | X, ['M'] = T | X, ['N'] = T | X, ['O'] = T | X,
    ['P'] = T | X, ['Q'] = T | X, ['R'] = T | X, ['S'] = T | X, ['T'] = T | X, ['U'] = T | X,
    ['V'] = T | X, ['W'] = T | X, ['X'] = T | X, ['Y'] = T | X, ['Z'] = T | X,
    ['['] = X, ['\\'] = X, [']'] = X, ['^'] = T | X, ['_'] = T | X, ['`'] = T | X,
    ['a'] = T | X | H, ['b'] = T | X | H, ['c'] = T | X | H, ['d'] = T | X | H,
    ['e'] = T | X | H, ['f'] = T | X | H, ['g'] = T | X, ['h'] = T | X, ['i'] = T | X,
    ['j'] = T | X, ['k'] = T | X, ['l'] = T | X, ['m'] = T | X, ['n'] = T | X, ['o'] = T | X,
    ['p'] = T | X, ['q'] = T | X, ['r'] = T | X, ['s'] = T | X, ['t'] = T | X, ['u'] = T | X,
    ['v'] = T | X, ['w'] = T | X, ['x'] = T | X, ['y'] = T | X, ['z'] = T | X,
    ['{'] = X, ['|'] = T | X, ['}'] = X, ['~'] = T | X,
    [0x80] = ROW16(X), ROW16(X), ROW16(X), ROW16(X), ROW16(X), ROW16(X), ROW16(X), ROW16(X),
};

#define N 0xff /* not a hex digit */
#define HEX_ROW N, N, N, N, N, N, N, N, N, N, N, N, N, N, N, N
const unsigned char sk__hex_value[256] = {
    HEX_ROW, HEX_ROW, HEX_ROW,
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, N, N, N, N, N, N,     /* 0x30 */
    N, 10, 11, 12, 13, 14, 15, N, N, N, N, N, N, N, N, N, /* 0x40 */
    HEX_ROW,
    N, 10, 11, 12, 13, 14, 15, N, N, N, N, N, N, N, N, N, /* 0x60 */
    HEX_ROW, HEX_ROW, HEX_ROW, HEX_ROW, HEX_ROW, HEX_ROW, HEX_ROW, HEX_ROW, HEX_ROW,
};

int sk__hex_decode(const char *hex, unsigned char *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int hi = sk__hex_digit((unsigned char)hex[2 * i]);
        int lo = hi < 0 ? -1 : sk__hex_digit((unsigned char)hex[2 * i + 1]);
        if (lo < 0)
            return -1;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}
