// SPDX-License-Identifier: MIT
#include "harness_elf.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

/* The libelf ABI we use (libelf.h / gelf.h, stable across elfutils releases). */
typedef struct Elf Elf;
typedef struct Elf_Scn Elf_Scn;
typedef struct {
	void *d_buf;
	int d_type;
	unsigned int d_version;
	size_t d_size;
	int64_t d_off;
	size_t d_align;
} Elf_Data;
typedef struct { /* Elf64_Shdr */
	uint32_t sh_name, sh_type;
	uint64_t sh_flags, sh_addr, sh_offset, sh_size;
	uint32_t sh_link, sh_info;
	uint64_t sh_addralign, sh_entsize;
} GElf_Shdr;
typedef struct { /* Elf64_Sym */
	uint32_t st_name;
	unsigned char st_info, st_other;
	uint16_t st_shndx;
	uint64_t st_value, st_size;
} GElf_Sym;

#define EV_CURRENT 1
#define ELF_C_READ 1
#define SHT_SYMTAB 2
#define SHN_UNDEF 0

struct libelf {
	unsigned int (*version)(unsigned int);
	Elf *(*begin)(int, int, Elf *);
	int (*end)(Elf *);
	Elf_Scn *(*nextscn)(Elf *, Elf_Scn *);
	GElf_Shdr *(*getshdr)(Elf_Scn *, GElf_Shdr *);
	Elf_Data *(*getdata)(Elf_Scn *, Elf_Data *);
	GElf_Sym *(*getsym)(Elf_Data *, int, GElf_Sym *);
	char *(*strptr)(Elf *, size_t, size_t);
};

static int load_libelf(struct libelf *l)
{
	void *h = dlopen("libelf.so.1", RTLD_NOW | RTLD_LOCAL);

	if (!h)
		return HARNESS_ELF_NO_LIBELF;
	l->version = (unsigned int (*)(unsigned int))dlsym(h, "elf_version");
	l->begin = (Elf *(*)(int, int, Elf *))dlsym(h, "elf_begin");
	l->end = (int (*)(Elf *))dlsym(h, "elf_end");
	l->nextscn = (Elf_Scn *(*)(Elf *, Elf_Scn *))dlsym(h, "elf_nextscn");
	l->getshdr = (GElf_Shdr *(*)(Elf_Scn *, GElf_Shdr *))dlsym(h, "gelf_getshdr");
	l->getdata = (Elf_Data *(*)(Elf_Scn *, Elf_Data *))dlsym(h, "elf_getdata");
	l->getsym = (GElf_Sym *(*)(Elf_Data *, int, GElf_Sym *))dlsym(h, "gelf_getsym");
	l->strptr = (char *(*)(Elf *, size_t, size_t))dlsym(h, "elf_strptr");
	if (!l->version || !l->begin || !l->end || !l->nextscn || !l->getshdr ||
	    !l->getdata || !l->getsym || !l->strptr)
		return HARNESS_ELF_NO_LIBELF;
	return 0;
}

int harness_elf_find_symbols(const char *path, const char *const *names, int n,
			     int *found)
{
	struct libelf l;
	Elf_Scn *scn = NULL;
	Elf *elf;
	int fd, ret, i, have_symtab = 0;

	for (i = 0; i < n; i++)
		found[i] = 0;
	ret = load_libelf(&l);
	if (ret)
		return ret;
	l.version(EV_CURRENT);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	elf = l.begin(fd, ELF_C_READ, NULL);
	if (!elf) {
		close(fd);
		return HARNESS_ELF_NOT_ELF;
	}
	while ((scn = l.nextscn(elf, scn))) {
		GElf_Shdr shdr;
		Elf_Data *data;
		size_t k, count;

		if (!l.getshdr(scn, &shdr) || shdr.sh_type != SHT_SYMTAB || !shdr.sh_entsize)
			continue;
		have_symtab = 1;
		data = l.getdata(scn, NULL);
		if (!data)
			continue;
		count = shdr.sh_size / shdr.sh_entsize;
		for (k = 0; k < count; k++) {
			GElf_Sym sym;
			const char *name;

			if (!l.getsym(data, (int)k, &sym) || sym.st_shndx == SHN_UNDEF)
				continue;
			name = l.strptr(elf, shdr.sh_link, sym.st_name);
			if (!name)
				continue;
			for (i = 0; i < n; i++)
				if (!found[i] && !strcmp(name, names[i]))
					found[i] = 1;
		}
	}
	l.end(elf);
	close(fd);
	return have_symtab ? 0 : HARNESS_ELF_NO_SYMTAB;
}
