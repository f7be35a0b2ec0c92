/* SPDX-License-Identifier: MIT */
/*
 * Symbol lookup in an ELF file (the guest's vmlinux) through libelf.
 *
 * libelf is loaded at run time (dlopen of libelf.so.1, Debian's libelf1), so the
 * package builds without libelf-dev; a machine without libelf1 gets a clear
 * error instead of a build failure.
 */
#ifndef HARNESS_ELF_H
#define HARNESS_ELF_H

/* Errors besides -errno from open(2). */
#define HARNESS_ELF_NO_LIBELF (-1000) /* libelf.so.1 not found */
#define HARNESS_ELF_NOT_ELF (-1001)   /* not an ELF file */
#define HARNESS_ELF_NO_SYMTAB (-1002) /* no symbol table (stripped) */

/*
 * For each of the n names, sets found[i] to 1 if `path` defines a symbol of
 * that name (any binding, any type, section index not SHN_UNDEF), else 0.
 * Returns 0, -errno, or one of the codes above.
 */
int harness_elf_find_symbols(const char *path, const char *const *names, int n,
			     int *found);

#endif
