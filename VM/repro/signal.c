// SPDX-License-Identifier: GPL-2.0-only
/*
 * signal.c - the SIGBUS handler of a logical process and what it recorded
 *
 * The handler (SA_SIGINFO, SA_RESTART) appends what each SIGBUS carried to
 * a log of the thread that ran it; after each op the log is reported as
 * observation lines ("sig p1.t0 SIGBUS AO addr=0x... lsb=12") and emptied.
 */
#include "repro.h"

static __thread volatile sig_atomic_t my_nsig;
static __thread struct signal_record my_sig[MAX_SIGNALS];

static void on_sigbus(int signo, siginfo_t *si, void *uc)
{
	(void)signo;
	(void)uc;
	if (my_nsig < MAX_SIGNALS) {
		my_sig[my_nsig].code = si->si_code;
		my_sig[my_nsig].addr = (unsigned long)si->si_addr;
		my_sig[my_nsig].lsb = si->si_addr_lsb;
		my_nsig++;
	}
}

/* The process's SIGBUS disposition: 1 handler, 0 default, 2 ignore. */
long set_sigbus(long how, long unused1, long unused2, long unused3)
{
	struct sigaction sa = { .sa_flags = SA_SIGINFO | SA_RESTART };

	(void)unused1;
	(void)unused2;
	(void)unused3;
	if (how == 1)
		sa.sa_sigaction = on_sigbus;
	else
		sa.sa_handler = how ? SIG_IGN : SIG_DFL;
	return sigaction(SIGBUS, &sa, NULL) ? -errno : 0;
}

/* Moves the calling thread's log to rec; the number of records. */
int signals_take(struct signal_record *rec)
{
	int n = my_nsig;

	if (rec)
		memcpy(rec, my_sig, sizeof(my_sig));
	my_nsig = 0;
	return n;
}

/* Observation lines for n records of thread `name` (ordered by key). */
void signals_report(const char *name, int key,
		    const struct signal_record *rec, int n)
{
	int k;

	for (k = 0; k < n; k++) {
		char code[16];

		/* 4 AR, 5 AO; others (SI_KERNEL, 128: C5.4) by number. */
		if (rec[k].code == 4 || rec[k].code == 5)
			snprintf(code, sizeof(code), "%s",
				 rec[k].code == 4 ? "AR" : "AO");
		else
			snprintf(code, sizeof(code), "code=%d", rec[k].code);
		obs_line("sig %s SIGBUS %s addr=0x%lx lsb=%d", name, code,
			 rec[k].addr, rec[k].lsb);
		obs_key(key);
	}
}
