// SPDX-License-Identifier: GPL-2.0-only
/*
 * The agent's "coverage" command: hands the guest kernel's gcov counts to
 * the host and zeroes them.
 *
 * A kernel built with CONFIG_GCOV_KERNEL (the coverage flavour, VM/build.sh
 * --coverage) has one .gcda file per instrumented object under
 * /sys/kernel/debug/gcov, at the object's absolute path in the build.  The
 * counters are global: every context that runs the code (system calls,
 * kernel workers, the machine-check path) counts in them.  Reading a file
 * gives a copy of its counters taken at open(); writing anything to it
 * zeroes them.  So each file is read and then zeroed at once: what the host
 * receives is what ran since the last "coverage" command (or the boot), and
 * summing the answers never counts a run twice.  A snapshot restore brings
 * back the counters of the moment the snapshot was taken, so the host asks
 * for the counts before it restores, and takes the snapshot just after a
 * "coverage" command (zero counters).
 *
 *   > coverage
 *   gcda root/.cache/harness/kernel/KEY/mm/memory-failure.gcda 20480 Z2NkYQ...
 *   .
 *
 * One "gcda PATH SIZE BASE64" line per file (PATH relative to the gcov
 * directory, SIZE in bytes before encoding), "error MESSAGE" lines for what
 * could not be read or zeroed, then ".".  Without the gcov directory: one
 * error line.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"

#define GCOV_DIR	"/sys/kernel/debug/gcov"

/* The answer being built; nftw() callbacks take no argument. */
static struct buf *gcov_out;

static const char b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void put_base64(struct buf *b, const unsigned char *p, size_t len)
{
	char quad[5] = { 0 };
	size_t i;

	for (i = 0; i < len; i += 3) {
		unsigned int v = p[i] << 16;
		size_t n = len - i < 3 ? len - i : 3;

		if (n > 1)
			v |= p[i + 1] << 8;
		if (n > 2)
			v |= p[i + 2];
		quad[0] = b64[(v >> 18) & 63];
		quad[1] = b64[(v >> 12) & 63];
		quad[2] = n > 1 ? b64[(v >> 6) & 63] : '=';
		quad[3] = n > 2 ? b64[v & 63] : '=';
		buf_printf(b, "%s", quad);
	}
}

/* The whole file (debugfs says size 0: read to the end). */
static int slurp_all(const char *path, unsigned char **data, size_t *len)
{
	size_t cap = 1 << 16;
	unsigned char *p = malloc(cap);
	ssize_t n;
	int fd;

	*len = 0;
	if (!p)
		return -ENOMEM;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		free(p);
		return -errno;
	}
	for (;;) {
		if (*len == cap) {
			unsigned char *q = realloc(p, 2 * cap);

			if (!q) {
				close(fd);
				free(p);
				return -ENOMEM;
			}
			p = q;
			cap *= 2;
		}
		n = read(fd, p + *len, cap - *len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = -errno;

			close(fd);
			free(p);
			return err;
		}
		if (!n)
			break;
		*len += n;
	}
	close(fd);
	*data = p;
	return 0;
}

static int one_file(const char *path, const struct stat *st, int type,
		    struct FTW *ftw)
{
	const char *rel = path + strlen(GCOV_DIR) + 1;
	size_t len = strlen(path), size;
	unsigned char *data = NULL;
	int ret;

	/* The .gcno entries are symbolic links (FTW_PHYS: not followed). */
	if (type != FTW_F || len < 5 || strcmp(path + len - 5, ".gcda"))
		return 0;
	ret = slurp_all(path, &data, &size);
	if (ret) {
		buf_printf(gcov_out, "error cannot read %s: %s\n", path,
			   strerror(-ret));
		return 0;
	}
	buf_printf(gcov_out, "gcda %s %zu ", rel, size);
	put_base64(gcov_out, data, size);
	buf_printf(gcov_out, "\n");
	free(data);
	ret = write_file(path, "0");
	if (ret)
		buf_printf(gcov_out, "error cannot zero %s: %s\n", path,
			   strerror(-ret));
	return 0;
}

void gcov_dump(struct agent *a)
{
	struct buf out = { 0 };

	gcov_out = &out;
	if (access(GCOV_DIR, R_OK))
		buf_printf(&out, "error no %s: %s (a kernel without CONFIG_GCOV_KERNEL?)\n",
			   GCOV_DIR, strerror(errno));
	else if (nftw(GCOV_DIR, one_file, 16, FTW_PHYS))
		buf_printf(&out, "error walking %s: %s\n", GCOV_DIR,
			   strerror(errno));
	buf_printf(&out, ".\n");
	write_all(a->out, out.data, out.len);
	free(out.data);
	gcov_out = NULL;
}
