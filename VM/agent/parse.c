// SPDX-License-Identifier: GPL-2.0-only
/*
 * Op lines (Corpora/README.md): tokens separated by spaces, numbers in
 * decimal or 0x hex, names [a-z][a-z0-9_-]*, threads P.tN, key=value.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"

/* Splits in place on runs of spaces; -E2BIG past MAX_TOKENS. */
int tokenize(char *line, struct tokens *t)
{
	char *p = line;

	t->n = 0;
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			return 0;
		if (t->n == MAX_TOKENS)
			return -E2BIG;
		t->tok[t->n++] = p;
		while (*p && *p != ' ' && *p != '\t')
			p++;
		if (*p)
			*p++ = '\0';
	}
}

bool valid_name(const char *s)
{
	size_t i, len = strlen(s);

	if (!len || len >= NAME_LEN || s[0] < 'a' || s[0] > 'z')
		return false;
	for (i = 1; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* Decimal or 0x hex, the whole string, no sign. */
int parse_u64(const char *s, uint64_t *v)
{
	const char *digits = s;
	int base = 10;
	char *end;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		digits = s + 2;
	}
	if (!*digits || *digits == '-' || *digits == '+' || *digits == ' ')
		return -EINVAL;
	errno = 0;
	*v = strtoull(digits, &end, base);
	if (errno || *end)
		return -EINVAL;
	return 0;
}

/* Like parse_u64 with an optional leading '-'. */
int parse_s64(const char *s, int64_t *v)
{
	bool neg = s[0] == '-';
	uint64_t u;

	if (parse_u64(s + neg, &u))
		return -EINVAL;
	if (neg ? u > (uint64_t)INT64_MAX + 1 : u > (uint64_t)INT64_MAX)
		return -EINVAL;
	*v = neg ? (int64_t)(0 - u) : (int64_t)u;
	return 0;
}

/* "p1.t3" -> "p1", 3. */
int parse_thread_ref(const char *s, char *proc, int *index)
{
	const char *dot = strrchr(s, '.');
	uint64_t n;
	size_t len;

	if (!dot || dot[1] != 't' || !dot[2])
		return -EINVAL;
	len = dot - s;
	if (len >= NAME_LEN)
		return -EINVAL;
	memcpy(proc, s, len);
	proc[len] = '\0';
	if (!valid_name(proc))
		return -EINVAL;
	/* Canonical decimal only: "t0", "t12", not "t01" or "t0x1". */
	if (dot[2] < '0' || dot[2] > '9' || (dot[2] == '0' && dot[3]) ||
	    parse_u64(dot + 2, &n) || n > 1000000)
		return -EINVAL;
	*index = (int)n;
	return 0;
}

/* The value of "key=value", or NULL if tok has another key. */
const char *kv_value(const char *tok, const char *key)
{
	size_t len = strlen(key);

	if (strncmp(tok, key, len) || tok[len] != '=')
		return NULL;
	return tok + len + 1;
}

int parse_kv_u64(const char *tok, const char *key, uint64_t *v)
{
	const char *val = kv_value(tok, key);

	return val ? parse_u64(val, v) : -EINVAL;
}

int parse_kv_s64(const char *tok, const char *key, int64_t *v)
{
	const char *val = kv_value(tok, key);

	return val ? parse_s64(val, v) : -EINVAL;
}
