/* Fast reading and writing of floats in CSV cells, for fedc predict's streaming (a few tens of
 * millions of cells per second per core).
 *
 * cli_parse_float reads what fedc_csv_load accepts in a cell, to the same float: a decimal number
 * [+-]digits[.digits][(e|E)[+-]digits] with blanks around it allowed, nothing else, finite, not
 * hexadecimal. Plain decimals take an exact fast path (Clinger, "How to read floating point
 * numbers accurately", PLDI 1990: up to 15 or 16 leading digits as an exact integer times an exact
 * power of ten within 10^+-22, one rounding to double, then to float unless that could round
 * twice); anything else (more digits that matter, large exponents, blanks) goes to strtof.
 *
 * cli_format_float writes a float with 9 significant digits in the form of printf's "%.9g"
 * (fixed notation for decimal exponents -4..8, else d.ddde+XX; trailing zeros dropped). Nine
 * digits identify every float, and the digits come from one or two correctly rounded double
 * operations, whose error (about 2e-16 relative) is far below the half unit in the last place of
 * a float (at least 3e-8 relative) that reading back tolerates: strtof gives back exactly the
 * float written, though the last digit may differ from printf's where the decimal value lies
 * within that error of a rounding boundary. Non-finite values are written as printf does. */
#ifndef FEDC_FASTNUM_H
#define FEDC_FASTNUM_H

#include <stddef.h>

/* Parses the cell [p, end) into *v. Returns 0, or -1 when the cell is not one finite decimal
 * number (empty, text, hexadecimal, NaN, infinite, beyond float range). */
int cli_parse_float(float *v, const char *p, const char *end);

/* The fast path alone: reads a plain decimal at p (no blanks) up to the first byte of [p, end)
 * that cannot continue it, into *v, and returns that position; NULL when the fast path cannot
 * decide (no digits, an exponent beyond 10^+-22 after scaling, digits beyond 16 that matter at a
 * rounding boundary): then the caller finds the cell's end and calls cli_parse_float. A number
 * followed by anything but the cell's end is the caller's to refuse. */
const char *cli_scan_float(float *v, const char *p, const char *end);

/* The longest text cli_format_float writes, without a terminator ("-1.23456789e-38"). */
#define CLI_FLOAT_CHARS 16

/* Writes v into out (at least CLI_FLOAT_CHARS bytes; no terminator) and returns the length. */
int cli_format_float(char *out, float v);

#endif
