// SPDX-License-Identifier: GPL-2.0-only
/*
 * check.c - what a step observed, compared with what the contract predicts
 *
 * Observations are lines of the harness's sequence format.  check() sorts
 * the step's lines into the canonical order (result, signals, process ends,
 * memory-failure events, notifications, sg tables, fdinfo, failures; lines of
 * one kind keep the order they came in) and matches them against the
 * expected lines: a line that starts "sig? " or "notify? " may be absent, a
 * token "$name" binds on first sight to what the kernel chose (a pid, an fd,
 * an IOVA base: "$iova1+0x2000/0x1000" binds iova1 to the address minus
 * 0x2000) and must match it afterwards.  Each step prints one KTAP line; a
 * "not ok" line is followed by the expected and the observed lines.
 */
#include "repro.h"

static char *lines[MAX_LINES];
static int keys[MAX_LINES];
static int nlines;
static struct ktap_totals own_totals;

/* The run's counts; guard() moves them where the guardian sees them too. */
struct ktap_totals *totals = &own_totals;

struct binding {
	char name[32];
	unsigned long long value;
};

static struct binding bindings[64];
static int nbindings;

/* Appends one observation line to the current step. */
void obs_line(const char *fmt, ...)
{
	va_list ap;

	if (nlines == MAX_LINES)
		return;
	va_start(ap, fmt);
	keys[nlines] = 0;
	if (vasprintf(&lines[nlines], fmt, ap) >= 0)
		nlines++;
	va_end(ap);
}

/* The op's own result: a value or an errno name. */
void obs_ret(long ret)
{
	const char *name = ret < 0 ? strerrorname_np((int)-ret) : NULL;

	if (name)
		obs_line("= -%s", name);
	else
		obs_line("= %ld", ret);
}

/* Rank of a line's kind in the canonical order. */
static int rank(const char *line)
{
	static const char *const kinds[] = { "=", "sig", "exit", "mf", "notify",
					     "sgt", "fdinfo", "failure" };
	size_t n = strcspn(line, " ?");
	unsigned int i;

	/* The importer's reports come with the notifications (C7.5, C6.7). */
	if (n == 8 && !strncmp(line, "importer", n))
		return 4;
	for (i = 0; i < ARRAY_SIZE(kinds); i++)
		if (strlen(kinds[i]) == n && !strncmp(line, kinds[i], n))
			return (int)i;
	return 8;
}

static int before(int a, int b)
{
	int ra = rank(lines[a]), rb = rank(lines[b]);

	return ra < rb || (ra == rb && keys[a] < keys[b]);
}

/* Stable: lines of one kind and key keep the order they came in. */
static void sort_lines(void)
{
	char *tmp;
	int a, b, k;

	for (a = 1; a < nlines; a++)
		for (b = a; b > 0 && before(b, b - 1); b--) {
			tmp = lines[b];
			lines[b] = lines[b - 1];
			lines[b - 1] = tmp;
			k = keys[b];
			keys[b] = keys[b - 1];
			keys[b - 1] = k;
		}
}

/* "$name+0xOFF" against a number: binds name on first sight; 1 if it fits. */
static int match_symbol(const char *want, size_t len, unsigned long long got)
{
	size_t n = strcspn(want, "+/ ");
	unsigned long long off = 0;
	char name[32];
	int i;

	if (n < len && want[n] == '+')
		off = strtoull(want + n + 1, NULL, 0);
	snprintf(name, sizeof(name), "%.*s", (int)n, want);
	for (i = 0; i < nbindings; i++)
		if (!strcmp(bindings[i].name, name))
			return bindings[i].value + off == got;
	if (nbindings == 64)
		return 0;
	snprintf(bindings[nbindings].name, sizeof(bindings[0].name), "%s", name);
	bindings[nbindings++].value = got - off;
	return 1;
}

/* One token: equal, or a symbol ("$x", "$x+0x10", "$x+0x10/0x1000"). */
static int match_token(const char *want, size_t wn, const char *got, size_t gn)
{
	const char *wl = memchr(want, '/', wn), *gl = memchr(got, '/', gn);

	if (want[0] != '$')
		return wn == gn && !memcmp(want, got, wn);
	if (!wl != !gl)
		return 0;
	if (wl && (wn - (wl - want) != gn - (gl - got) ||
		   memcmp(wl, gl, wn - (wl - want))))
		return 0;
	return match_symbol(want, wl ? (size_t)(wl - want) : wn,
			    strtoull(got, NULL, 0));
}

/* A line, token by token; "sig?"/"notify?" match "sig"/"notify". */
static int match_line(const char *want, const char *got)
{
	size_t wn = strcspn(want, " ?"), gn = strcspn(got, " ");

	if (wn != gn || strncmp(want, got, gn))
		return 0;
	want += strcspn(want, " ");
	got += gn;
	while (*want == ' ' && *got == ' ') {
		want++;
		got++;
		wn = strcspn(want, " ");
		gn = strcspn(got, " ");
		if (!match_token(want, wn, got, gn))
			return 0;
		want += wn;
		got += gn;
	}
	return !*want && !*got;
}

static int optional(const char *line)
{
	return line[strcspn(line, " ") - 1] == '?';
}

/* The expected lines ('\n'-separated) against the observed ones. */
static int matches(const char *expected)
{
	int g = 0, ok = 1;

	while (ok && *expected) {
		size_t n = strcspn(expected, "\n");
		char *want = strndup(expected, n);

		expected += n + (expected[n] == '\n');
		if (g < nlines && match_line(want, lines[g]))
			g++;
		else if (!optional(want))
			ok = 0;
		free(want);
	}
	return ok && g == nlines;
}

static void clear_lines(void)
{
	while (nlines)
		free(lines[--nlines]);
}

/* Prints '\n'-separated lines as KTAP diagnostics. */
static void print_lines(const char *text)
{
	while (*text) {
		int n = (int)strcspn(text, "\n");

		printf("#   %.*s\n", n, text);
		text += n + (text[n] == '\n');
	}
}

/* Prints the step's KTAP line; the observations are consumed. */
void check(int step, const char *op, const char *expected)
{
	int i, ok;

	sort_lines();
	ok = matches(expected);
	printf("%sok %d %s\n", ok ? "" : "not ", step, op);
	if (ok) {
		totals->passed++;
	} else {
		printf("# expected (contract):\n");
		print_lines(expected);
		printf("# observed (kernel):\n");
		for (i = 0; i < nlines; i++)
			printf("#   %s\n", lines[i]);
		totals->failed++;
	}
	fflush(stdout);
	clear_lines();
}

/* A step that could not run as it must: KTAP skip. */
void skip_step(int step, const char *op, const char *why)
{
	printf("ok %d %s # SKIP %s\n", step, op, why);
	fflush(stdout);
	clear_lines();
	totals->skipped++;
}

/* The totals line; kselftest's exit status: 0 pass, 1 fail, 4 skip. */
int finish(void)
{
	printf("# Totals: pass:%d fail:%d xfail:0 xpass:0 skip:%d error:0\n",
	       totals->passed, totals->failed, totals->skipped);
	return totals->failed ? 1 : totals->skipped ? 4 : 0;
}

/* Nothing can run here: KTAP skip, exit 4. */
void skip_all(const char *why)
{
	printf("1..0 # SKIP %s\n", why);
	exit(4);
}

/* The kernel cannot be trusted any more: the rest is not run. */
void bail_out(const char *why)
{
	printf("Bail out! %s\n", why);
	exit(finish());
}

/* Orders the last line among the lines of its kind (a thread, a process). */
void obs_key(int key)
{
	if (nlines)
		keys[nlines - 1] = key;
}

/* The kernel must carry the series: skip (exit 4) when it does not. */
void require_symbol(const char *symbol)
{
	char line[256];
	size_t n = strlen(symbol);
	FILE *f = fopen("/proc/kallsyms", "re");
	int found = 0;

	while (f && !found && fgets(line, sizeof(line), f)) {
		char *name = strrchr(line, ' ');

		found = name && !strncmp(name + 1, symbol, n) &&
			(name[n + 1] == '\n' || name[n + 1] == '\t');
	}
	if (f)
		fclose(f);
	if (!found)
		skip_all("the kernel does not have the series (no symbol in /proc/kallsyms)");
}
