// SPDX-License-Identifier: GPL-2.0-only
/*
 * /init of the harness guest: PID 1, static, no shell on the way to the agent.
 *
 * A shell script doing the same took about 0.3 s of a 1.4 s boot under TCG (every
 * mount, cat and insmod a fork and exec); this does it with system calls:
 *
 *   mount proc, sysfs, devtmpfs, tracefs, debugfs, tmpfs on /tmp; no core dumps;
 *   console log level 7 (WARNINGs and memory-failure lines reach the serial port,
 *   where the host scans them); load /shim.ko with every "harness_shim.NAME=VALUE"
 *   of the kernel command line as a module parameter; enable the tracepoint
 *   ras:memory_failure_event; find the virtio-serial port named "ctl" (up to 2 s);
 *   run "/agent /dev/PORT" as a child (PID 1 cannot be killed by SIGBUS, and the
 *   agent's status is reported); reap orphans; power off when the agent exits.
 *
 * With "harness.shell=1" on the command line it runs "/bin/sh /init.sh" instead
 * (the interactive shell of `harness vm shell`, which prints its facts).
 *
 * Console lines written here start with "harness: ", as /init.sh's do.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void say(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	if (write(STDOUT_FILENO, "harness: ", 9) < 0 || write(STDOUT_FILENO, line, n) < 0)
		return;
}

/* The whole of a small file, NUL-terminated; "" if it cannot be read. */
static const char *slurp(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = -1;

	if (fd >= 0) {
		n = read(fd, buf, size - 1);
		close(fd);
	}
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static int put(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -EIO;
}

static void mount_fs(const char *type, const char *dir, const char *data)
{
	if (mount(type, dir, type, MS_NOSUID, data) && errno != EBUSY)
		say("cannot mount %s on %s: %s", type, dir, strerror(errno));
}

/* "harness_shim.a=1 harness_shim.b=x" of the command line -> "a=1 b=x". */
static void shim_params(const char *cmdline, char *out, size_t size)
{
	static const char prefix[] = "harness_shim.";
	const char *p = cmdline;
	size_t used = 0;

	out[0] = '\0';
	while (*p) {
		size_t len;

		while (*p == ' ' || *p == '\n')
			p++;
		len = strcspn(p, " \n");
		if (len > sizeof(prefix) - 1 && !strncmp(p, prefix, sizeof(prefix) - 1)) {
			size_t plen = len - (sizeof(prefix) - 1);

			if (used + plen + 2 < size) {
				if (used)
					out[used++] = ' ';
				memcpy(out + used, p + sizeof(prefix) - 1, plen);
				used += plen;
				out[used] = '\0';
			}
		}
		p += len;
	}
}

static const char *load_shim(const char *cmdline)
{
	char params[256];
	int fd = open("/shim.ko", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return "absent";
	shim_params(cmdline, params, sizeof(params));
	if (syscall(SYS_finit_module, fd, params, 0)) {
		say("insmod /shim.ko %s failed: %s", params, strerror(errno));
		close(fd);
		return "failed";
	}
	close(fd);
	return "loaded";
}

/* /dev/vportNpM of the virtio-serial port named "ctl", or NULL. */
static const char *find_port(char *out, size_t size)
{
	DIR *d = opendir("/sys/class/virtio-ports");
	struct dirent *e;
	const char *found = NULL;

	if (!d)
		return NULL;
	while (!found && (e = readdir(d))) {
		char path[300], name[64];

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/class/virtio-ports/%s/name", e->d_name);
		if (!strcmp(slurp(path, name, sizeof(name)), "ctl\n")) {
			snprintf(out, size, "/dev/%s", e->d_name);
			found = out;
		}
	}
	closedir(d);
	return found;
}

/*
 * QEMU runs with -no-reboot: a reset ends it.  (Power off needs ACPI, which the
 * mf world boots without.)
 */
static void power_off(void)
{
	sync();
	reboot(RB_AUTOBOOT);
	for (;;)
		pause();
}

int main(void)
{
	static const struct rlimit no_core = { 0, 0 };
	char cmdline[1024], uptime[64], port[300];
	const char *shim, *ctl = NULL;
	struct timespec step = { 0, 5 * 1000 * 1000 };
	struct utsname u;
	pid_t agent;
	int i, status;

	mount_fs("proc", "/proc", NULL);
	mount_fs("sysfs", "/sys", NULL);
	mount_fs("devtmpfs", "/dev", NULL);
	mount_fs("tracefs", "/sys/kernel/tracing", NULL);
	mount_fs("debugfs", "/sys/kernel/debug", NULL);
	mount_fs("tmpfs", "/tmp", "mode=1777");
	setrlimit(RLIMIT_CORE, &no_core);
	slurp("/proc/cmdline", cmdline, sizeof(cmdline));

	if (strstr(cmdline, "harness.shell=1")) {
		execl("/bin/sh", "sh", "/init.sh", (char *)NULL);
		say("cannot run /bin/sh /init.sh: %s", strerror(errno));
		power_off();
	}

	/*
	 * "quiet" keeps the boot fast (a serial console is slow under TCG); from here
	 * on warnings and everything above reach the console.
	 */
	put("/proc/sys/kernel/printk", "7");
	uname(&u);
	say("init %s up %.*s s", u.release,
	    (int)strcspn(slurp("/proc/uptime", uptime, sizeof(uptime)), " "), uptime);

	shim = load_shim(cmdline);
	if (put("/sys/kernel/tracing/events/ras/memory_failure_event/enable", "1"))
		say("cannot enable ras:memory_failure_event");

	/* Ports appear once the host side has announced them. */
	for (i = 0; i < 400 && !(ctl = find_port(port, sizeof(port))); i++)
		nanosleep(&step, NULL);
	if (!ctl) {
		say("no virtio-serial port named ctl (shim %s): agent not started", shim);
		power_off();
	}
	if (access("/agent", X_OK)) {
		say("no /agent in the initramfs (shim %s)", shim);
		power_off();
	}

	agent = fork();
	if (agent == 0) {
		execl("/agent", "agent", ctl, (char *)NULL);
		say("cannot run /agent: %s", strerror(errno));
		_exit(127);
	}
	/* Reap orphans too; stop when the agent is gone. */
	for (;;) {
		pid_t pid = wait(&status);

		if (pid < 0 && errno != EINTR)
			break;
		if (pid == agent) {
			if (WIFSIGNALED(status))
				say("agent killed by signal %d", WTERMSIG(status));
			else
				say("agent exited with status %d", WEXITSTATUS(status));
			break;
		}
	}
	power_off();
	return 0;
}
