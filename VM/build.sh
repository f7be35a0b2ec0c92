#!/usr/bin/env bash
# Build the harness guest: kernel (with VM/harness.config), shim module, agent,
# and an uncompressed initramfs.  Everything is cached by content hash under
# the cache directory; an unchanged second run only recomputes the keys.
#
# Usage: VM/build.sh [--kernel-src PATH] [--cache DIR] [--jobs N]
#
# stdout: one line at the end, "guest: <dir>" (bzImage, vmlinux,
#         initramfs.cpio, manifest).
# stderr: progress lines prefixed "build: ".
# Exit:   0 ok, 1 build failure (log path and tail printed),
#         2 usage error or unusable --kernel-src tree,
#         3 environment missing (packages, kernel source download).
#
# See VM/README.md for the cache layout and the keys.

set -euo pipefail

VM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly VM_DIR
readonly FRAGMENT=$VM_DIR/harness.config
readonly SELF=$VM_DIR/build.sh
readonly DEB_PACKAGE=linux-source-7.3
readonly DEB_SUITES=(
	"deb http://deb.debian.org/debian trixie-backports main"
	"deb http://deb.debian.org/debian sid main"
)

KERNEL_SRC=
CACHE=${HARNESS_CACHE:-$HOME/.cache/harness}
# One job more than cores: a job waiting on the disk or on make leaves no core idle.
JOBS=$(($(nproc) + 1))
T0=$(date +%s.%N)

say() { printf 'build: %s\n' "$*" >&2; }
die() { local code=$1; shift; printf 'build: error: %s\n' "$*" >&2; exit "$code"; }

elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f s", b - a }'; }

usage() {
	cat <<EOF
Usage: VM/build.sh [--kernel-src PATH] [--cache DIR] [--jobs N]

Build the harness guest (kernel, shim module, agent, initramfs).

  --kernel-src PATH  build this kernel tree (out of tree, the tree stays
                     untouched; it must be clean: 'make mrproper')
                     instead of Debian's $DEB_PACKAGE
  --cache DIR        cache directory (default \${HARNESS_CACHE:-\$HOME/.cache/harness},
                     here: $CACHE)
  --jobs N           parallel make jobs (default: $(nproc) + 1)

Prints "guest: <dir>" on stdout when done.
Example: VM/build.sh --kernel-src ~/src/linux --jobs 2
EOF
}

while (($#)); do
	case $1 in
	--kernel-src) (($# >= 2)) || die 2 "--kernel-src needs a PATH"; KERNEL_SRC=$2; shift 2 ;;
	--kernel-src=*) KERNEL_SRC=${1#*=}; shift ;;
	--cache) (($# >= 2)) || die 2 "--cache needs a DIR"; CACHE=$2; shift 2 ;;
	--cache=*) CACHE=${1#*=}; shift ;;
	--jobs | -j) (($# >= 2)) || die 2 "--jobs needs a number"; JOBS=$2; shift 2 ;;
	--jobs=*) JOBS=${1#*=}; shift ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; die 2 "unknown argument: $1" ;;
	esac
done
[[ $JOBS =~ ^[1-9][0-9]*$ ]] || die 2 "--jobs: not a positive number: $JOBS"
[[ -f $FRAGMENT ]] || die 1 "config fragment missing: $FRAGMENT"

# The guest is x86_64 and built with the host compiler.
export ARCH=x86_64
unset CROSS_COMPILE KBUILD_OUTPUT KCONFIG_CONFIG LOCALVERSION 2>/dev/null || true
export LC_ALL=C

sha() { sha256sum | cut -c1-16; }

# (Not "readelf | grep -q": with pipefail, grep's early exit can fail the pipe.)
is_dynamic() { local h; h=$(readelf -l "$1" 2>/dev/null) && [[ $h == *INTERP* ]]; }

# ---------------------------------------------------------------------------
# 1. Packages

check_packages() {
	local -A need=(
		[make]=make [gcc]=gcc [flex]=flex [bison]=bison [bc]=bc
		[perl]=perl [cpio]=cpio [xz]=xz-utils [dpkg-deb]=dpkg
		[readelf]=binutils [flock]=util-linux
		[lz4]=lz4 # compresses the bzImage (CONFIG_KERNEL_LZ4)
	)
	local missing=() cmd
	for cmd in "${!need[@]}"; do
		command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
	done
	[[ -f /usr/include/libelf.h && -f /usr/include/gelf.h ]] || missing+=(libelf-dev)
	[[ -f /usr/include/openssl/ssl.h ]] || missing+=(libssl-dev)
	[[ -f /usr/lib/x86_64-linux-gnu/libc.a ]] || missing+=(libc6-dev)
	# The initramfs needs a static busybox (the dynamic one has no libc
	# in the guest).
	if ! [[ -x /bin/busybox ]] || is_dynamic /bin/busybox; then
		missing+=(busybox-static)
	fi
	((${#missing[@]} == 0)) && return 0

	mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
	local cmdline="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
	if ((EUID != 0)); then
		say "missing packages: ${missing[*]}"
		die 3 "run as root: $cmdline"
	fi
	say "installing missing packages: ${missing[*]}"
	apt-get update >&2 || die 3 "apt-get update failed; fix apt, then: $cmdline"
	apt-get install -y --no-install-recommends "${missing[@]}" >&2 ||
		die 3 "apt-get install failed; fix apt, then: $cmdline"
}

# ---------------------------------------------------------------------------
# 2. Kernel source: sets SRC and SRC_ID

# Private apt state: the system's /etc/apt is never read or changed.
apt_private() {
	local d=$CACHE/apt
	apt-get -o Dir::Etc::sourcelist="$d/sources.list" \
		-o Dir::Etc::sourceparts=/dev/null \
		-o Dir::State::Lists="$d/lists" \
		-o Dir::Cache="$d/cache" "$@"
}

newest_deb() {
	local f
	f=$(find "$CACHE/apt" -maxdepth 1 -name "${DEB_PACKAGE}_*_all.deb" -printf '%f\n' 2>/dev/null |
		sort -V | tail -n1)
	[[ -n $f ]] && printf '%s\n' "$CACHE/apt/$f"
}

fetch_deb() {
	local d=$CACHE/apt deb
	deb=$(newest_deb) && { printf '%s\n' "$deb"; return; }
	say "downloading $DEB_PACKAGE (trixie-backports/sid, private apt state in $d)"
	mkdir -p "$d/lists/partial" "$d/cache/archives/partial"
	[[ -f $d/sources.list ]] || printf '%s\n' "${DEB_SUITES[@]}" >"$d/sources.list"
	apt_private update >"$d/update.log" 2>&1 ||
		die 3 "apt-get update (private state) failed, see $d/update.log"
	(cd "$d" && apt_private download "$DEB_PACKAGE") >"$d/download.log" 2>&1 ||
		die 3 "apt-get download $DEB_PACKAGE failed, see $d/download.log"
	deb=$(newest_deb) || die 3 "no ${DEB_PACKAGE}_*.deb in $d after download, see $d/download.log"
	printf '%s\n' "$deb"
}

prepare_debian_source() {
	local deb name tmp
	deb=$(fetch_deb)
	name=$(basename "$deb")
	SRC=$CACHE/src/$DEB_PACKAGE
	SRC_ID="deb:$name"
	if [[ -f $SRC/.harness-extracted && $(<"$SRC/.harness-extracted") == "$name" ]]; then
		return
	fi
	say "extracting $name into $SRC"
	local t
	t=$(date +%s.%N)
	tmp=$CACHE/src/.extract.$$
	rm -rf "$tmp" && mkdir -p "$tmp"
	if ! (dpkg-deb --fsys-tarfile "$deb" | tar -xO "./usr/src/$DEB_PACKAGE.tar.xz" |
		xz -dT"$JOBS" | tar -x -C "$tmp"); then
		rm -rf "$tmp"
		die 3 "could not extract $deb (corrupt download? delete it and rerun)"
	fi
	[[ -f $tmp/$DEB_PACKAGE/Makefile ]] || die 1 "$deb did not contain $DEB_PACKAGE/Makefile"
	rm -rf "$SRC"
	mv "$tmp/$DEB_PACKAGE" "$SRC"
	rmdir "$tmp"
	printf '%s\n' "$name" >"$SRC/.harness-extracted"
	say "extracted in $(elapsed "$t")"
}

prepare_user_source() {
	[[ -d $KERNEL_SRC ]] || die 2 "--kernel-src: no such directory: $KERNEL_SRC"
	SRC=$(cd "$KERNEL_SRC" && pwd -P)
	[[ -f $SRC/Makefile && -f $SRC/Kconfig && -d $SRC/arch/x86 ]] ||
		die 2 "--kernel-src: $SRC does not look like a Linux source tree"
	local f
	for f in .config include/config include/generated arch/x86/include/generated; do
		[[ -e $SRC/$f ]] && die 2 "--kernel-src: $SRC is not clean ($f exists): out-of-tree builds need a clean tree; run 'make -C $SRC mrproper' (it deletes $SRC/.config: save it first)"
	done
	if git -C "$SRC" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		# HEAD plus every local change: tracked diffs and untracked files.
		local head dirty
		head=$(git -C "$SRC" rev-parse HEAD)
		dirty=$({
			git -C "$SRC" status --porcelain
			git -C "$SRC" diff HEAD --binary
			git -C "$SRC" ls-files -o --exclude-standard -z |
				(cd "$SRC" && xargs -0r sha256sum)
		} | sha)
		SRC_ID="git:$SRC@$head+$dirty"
	else
		local v
		v=$(make -s -C "$SRC" kernelversion 2>/dev/null) || v=unknown
		SRC_ID="tree:$SRC@$v+$(stat -c %Y "$SRC/Makefile")"
	fi
}

# ---------------------------------------------------------------------------
# 3. Kernel: sets OBJ and KEY

fail_step() { # step log
	say "$1 failed; full log: $2"
	tail -n 30 "$2" | sed 's/^/build: | /' >&2
	exit 1
}

run_logged() { # step log cmd...
	local step=$1 log=$2
	shift 2
	"$@" >>"$log" 2>&1 || fail_step "$step" "$log"
}

kernel_make() { make -C "$SRC" O="$OBJ" "$@"; }

build_kernel() {
	local compiler
	compiler=$(gcc --version)
	compiler=${compiler%%$'\n'*}
	KEY=$(printf '%s\n%s\n' "$SRC_ID" "$compiler" | cat - "$FRAGMENT" | sha)
	OBJ=$CACHE/kernel/$KEY
	mkdir -p "$OBJ"
	if [[ -f $OBJ/.harness-built && $(<"$OBJ/.harness-built") == "$KEY" ]]; then
		say "kernel $KEY up to date"
		return
	fi

	local log=$OBJ/build.log t
	t=$(date +%s.%N)
	# Appended to: an interrupted or failed run keeps the earlier output.
	printf '=== build.sh %s: kernel %s from %s\n' "$(date -u +%FT%TZ)" "$KEY" "$SRC_ID" >>"$log"
	say "kernel $KEY: configuring $SRC ($SRC_ID) into $OBJ"
	run_logged "configure (allnoconfig + $FRAGMENT)" "$log" \
		kernel_make -j"$JOBS" KCONFIG_ALLCONFIG="$FRAGMENT" allnoconfig

	# Kconfig silently drops symbols whose dependencies are unmet.
	local line missing=()
	while IFS= read -r line; do
		grep -qxF -- "$line" "$OBJ/.config" || missing+=("$line")
	done < <(grep -E '^CONFIG_[A-Za-z0-9_]+=' "$FRAGMENT")
	if ((${#missing[@]})); then
		local m
		for m in "${missing[@]}"; do
			say "  not in .config: $m (have: $(grep -E "^(# )?${m%%=*}[= ]" "$OBJ/.config" || echo 'not offered'))"
		done
		die 1 "${#missing[@]} symbol(s) of $FRAGMENT did not land in $OBJ/.config (unmet dependencies?)"
	fi

	# bzImage is what QEMU boots (VM/harness.config says why not vmlinux);
	# vmlinux is where the harness checks the series' symbols.  `modules` even
	# without =m symbols: it runs modpost on vmlinux and writes Module.symvers,
	# which the out-of-tree shim needs to resolve its symbols.
	# scripts/unifdef for the agent's uapi headers (install_uapi), in the same
	# make.
	local targets=(bzImage modules scripts_unifdef)
	say "kernel $KEY: make -j$JOBS ${targets[*]} (log: $log)"
	run_logged "kernel build" "$log" \
		kernel_make -j"$JOBS" "${targets[@]}"
	run_logged "uapi headers for the agent" "$log" install_uapi
	kernel_make -s kernelrelease >"$OBJ/.harness-release" 2>>"$log" ||
		fail_step "kernelrelease" "$log"
	printf '%s\n' "$KEY" >"$OBJ/.harness-built"
	say "kernel $KEY built in $(elapsed "$t")"
}

# The uapi headers the agent takes from the guest kernel instead of the
# system's (linux-libc-dev is older): VFIO's and iommufd's (the dma-buf
# export ioctls) and the stddef.h they use (__counted_by).  Sanitized as
# headers_install does (scripts/headers_install.sh, run where scripts/unifdef
# was built), into $OBJ/usr-headers/include.  The whole headers_install
# (about 1000 headers) cost 15 CPU seconds of the cold build.
readonly AGENT_UAPI=(linux/vfio.h linux/iommufd.h linux/stddef.h)

install_uapi() {
	local out=$OBJ/usr-headers/include h
	rm -rf "$OBJ/usr-headers"
	for h in "${AGENT_UAPI[@]}"; do
		mkdir -p "$out/${h%/*}"
		(cd "$OBJ" && sh "$SRC/scripts/headers_install.sh" "$SRC/include/uapi/$h" "$out/$h") ||
			return 1
	done
}

# Stable name for the last kernel built: $CACHE/kernel/current -> <key>.
link_current() {
	local want
	want=$(readlink "$CACHE/kernel/current" 2>/dev/null) || want=
	[[ $want == "$KEY" ]] && return
	ln -sfn "$KEY" "$CACHE/kernel/.current.$$"
	mv -T "$CACHE/kernel/.current.$$" "$CACHE/kernel/current"
}

# ---------------------------------------------------------------------------
# 4.-5. Shim, agent, initramfs: sets GDIR

# Source files of a component: build products (objects, modules, kbuild
# droppings, ELF binaries) and dotfiles left by an in-place build are skipped,
# both for the key and for the copy that is built.
source_files() { # dir
	local f
	[[ -d $1 ]] || return 0
	(cd "$1" && find . -type f ! -name '.*' ! -name '*.o' ! -name '*.ko' \
		! -name '*.mod' ! -name '*.mod.c' ! -name '*.a' ! -name '*.cmd' \
		! -name Module.symvers ! -name modules.order ! -path '*/.*' -print |
		LC_ALL=C sort) | while IFS= read -r f; do
		[[ $(head -c4 "$1/$f" | od -An -tx1 | tr -d ' ') == 7f454c46 ]] ||
			printf '%s\n' "${f#./}"
	done
}

hash_tree() { # dir
	local f
	printf 'tree %s\n' "$(basename "$1")"
	source_files "$1" | while IFS= read -r f; do
		printf '%s %s\n' "$(sha256sum <"$1/$f" | cut -d' ' -f1)" "$f"
	done
}

have_shim() { [[ -f $VM_DIR/shim/Makefile || -f $VM_DIR/shim/Kbuild ]]; }
have_agent() { [[ -f $VM_DIR/agent/Makefile ]]; }

build_shim() { # out log
	local dir=$1/shim-build ko
	mkdir -p "$dir"
	source_files "$VM_DIR/shim" | (cd "$VM_DIR/shim" && cpio -pdm --quiet "$dir")
	run_logged "shim module (make -C $OBJ M=$dir modules)" "$2" \
		make -C "$OBJ" M="$dir" modules
	mapfile -t ko < <(find "$dir" -maxdepth 1 -name '*.ko')
	((${#ko[@]} == 1)) || fail_step "shim module: expected one .ko in $dir, found ${#ko[@]}" "$2"
	cp "${ko[0]}" "$1/shim.ko"
	SHIM_NAME=$(basename "${ko[0]}" .ko)
}

build_agent() { # out log
	local dir=$1/agent-build
	mkdir -p "$dir"
	run_logged "agent (make -C $VM_DIR/agent OUT=$dir KHDR=$OBJ/usr-headers/include)" "$2" \
		make -C "$VM_DIR/agent" OUT="$dir" KHDR="$OBJ/usr-headers/include"
	[[ -x $dir/agent ]] || fail_step "agent: make succeeded but $dir/agent is missing" "$2"
	is_dynamic "$dir/agent" &&
		fail_step "agent: $dir/agent is dynamically linked; the guest has no libc (link with -static)" "$2"
	# Stripped: the initramfs is unpacked at every boot (the symbols stay in agent-build/).
	strip -o "$1/agent" "$dir/agent" >>"$2" 2>&1 || cp "$dir/agent" "$1/agent"
}

# /init: PID 1 in C (VM/pid1), which runs /init.sh (VM/init) for the shell.
build_pid1() { # out log
	run_logged "init (gcc -static VM/pid1/pid1.c)" "$2" \
		gcc -static -O2 -s -Wall -Wextra -o "$1/init" "$VM_DIR/pid1/pid1.c"
}

gen_init_cpio() { # out log -> path of the tool
	if [[ -x $OBJ/usr/gen_init_cpio ]]; then
		printf '%s\n' "$OBJ/usr/gen_init_cpio"
	else
		gcc -O2 -o "$1/gen_init_cpio" "$SRC/usr/gen_init_cpio.c" >>"$2" 2>&1 ||
			fail_step "compiling gen_init_cpio" "$2"
		printf '%s\n' "$1/gen_init_cpio"
	fi
}

build_initramfs() { # out log
	local out=$1 log=$2 list=$1/initramfs.list tool applet
	tool=$(gen_init_cpio "$out" "$log")
	{
		printf '%s\n' "dir /dev 0755 0 0" "nod /dev/console 0600 0 0 c 5 1" \
			"nod /dev/null 0666 0 0 c 1 3"
		printf 'dir /%s 0755 0 0\n' bin sbin usr usr/bin usr/sbin proc sys tmp root
		printf '%s\n' "file /bin/busybox /bin/busybox 0755 0 0"
		# Applet links, so scripts and the agent can exec /bin/sh etc.
		/bin/busybox --list-full | LC_ALL=C sort | while IFS= read -r applet; do
			[[ $applet == bin/busybox ]] && continue
			printf 'slink /%s /bin/busybox 0777 0 0\n' "$applet"
		done
		printf 'file /init %s 0755 0 0\n' "$out/init"
		printf 'file /init.sh %s 0755 0 0\n' "$VM_DIR/init"
		[[ -f $out/agent ]] && printf 'file /agent %s 0755 0 0\n' "$out/agent"
		[[ -f $out/shim.ko ]] && printf 'file /shim.ko %s 0644 0 0\n' "$out/shim.ko"
	} >"$list"
	"$tool" -t 0 "$list" >"$out/initramfs.cpio" 2>>"$log" ||
		fail_step "initramfs (gen_init_cpio $list)" "$log"
}

build_guest() {
	local gkey
	gkey=$({
		printf 'kernel %s\n' "$KEY"
		hash_tree "$VM_DIR/shim"
		hash_tree "$VM_DIR/agent"
		hash_tree "$VM_DIR/repro"
		sha256sum <"$VM_DIR/init"
		hash_tree "$VM_DIR/pid1"
		sha256sum <"$SELF"
		sha256sum </bin/busybox
	} | sha)
	GDIR=$CACHE/guest/$gkey
	if [[ -f $GDIR/manifest ]]; then
		say "guest $gkey up to date"
		return
	fi

	local tmp=$CACHE/guest/.$gkey.partial t
	t=$(date +%s.%N)
	local log=$tmp/build.log
	rm -rf "$tmp" && mkdir -p "$tmp"
	: >"$log"
	say "guest $gkey: building in $tmp"
	SHIM_NAME=
	if have_shim; then
		say "shim: building $VM_DIR/shim against $OBJ"
		build_shim "$tmp" "$log"
	else
		say "warning: $VM_DIR/shim has no Makefile yet: the guest gets no /shim.ko"
	fi
	if have_agent; then
		say "agent: building $VM_DIR/agent"
		build_agent "$tmp" "$log"
	else
		say "warning: $VM_DIR/agent has no Makefile yet: the guest gets no /agent (init prints facts and powers off)"
	fi
	build_pid1 "$tmp" "$log"
	build_initramfs "$tmp" "$log"
	ln "$OBJ/vmlinux" "$tmp/vmlinux" 2>/dev/null || cp "$OBJ/vmlinux" "$tmp/vmlinux"
	ln "$OBJ/arch/x86/boot/bzImage" "$tmp/bzImage" 2>/dev/null ||
		cp "$OBJ/arch/x86/boot/bzImage" "$tmp/bzImage"

	local has_mf=no has_dmabuf=no
	grep -q ' register_pfn_address_space$' "$OBJ/System.map" && has_mf=yes
	grep -q ' dma_buf_phys_vec_to_sgt$' "$OBJ/System.map" && has_dmabuf=yes
	{
		printf 'guest_key=%s\n' "$gkey"
		printf 'kernel_key=%s\n' "$KEY"
		printf 'source=%s\n' "$SRC_ID"
		printf 'kernel_src=%s\n' "$SRC"
		printf 'kernel_obj=%s\n' "$OBJ"
		printf 'release=%s\n' "$(<"$OBJ/.harness-release")"
		printf 'fragment_sha256=%s\n' "$(sha256sum <"$FRAGMENT" | cut -d' ' -f1)"
		printf 'series_memory_failure=%s\n' "$has_mf"
		printf 'series_dmabuf=%s\n' "$has_dmabuf"
		if [[ -f $tmp/shim.ko ]]; then
			printf 'shim=shim.ko\nshim_module=%s\n' "$SHIM_NAME"
		else
			printf 'shim=absent\n'
		fi
		if [[ -f $tmp/agent ]]; then printf 'agent=agent\n'; else printf 'agent=absent\n'; fi
	} >"$tmp/manifest.tmp"
	mv "$tmp/manifest.tmp" "$tmp/manifest"
	rm -rf "$GDIR"
	mv -T "$tmp" "$GDIR"
	# Partial dirs of earlier failed builds only matter for their logs.
	find "$CACHE/guest" -maxdepth 1 -name '.*.partial' -exec rm -rf {} +
	[[ $has_mf == yes && $has_dmabuf == yes ]] ||
		say "warning: kernel lacks the series (register_pfn_address_space: $has_mf, dma_buf_phys_vec_to_sgt: $has_dmabuf)"
	say "guest $gkey built in $(elapsed "$t")"
}

# ---------------------------------------------------------------------------

main() {
	check_packages
	mkdir -p "$CACHE/kernel" "$CACHE/guest" "$CACHE/src" "$CACHE/apt"
	CACHE=$(cd "$CACHE" && pwd -P)

	# One build per cache at a time.
	exec 9>"$CACHE/.build.lock"
	if ! flock -n 9; then
		say "waiting for another build.sh using $CACHE"
		flock 9
	fi

	if [[ -n $KERNEL_SRC ]]; then
		prepare_user_source
	else
		prepare_debian_source
	fi
	build_kernel
	link_current
	build_guest
	say "done in $(elapsed "$T0")"
	printf 'guest: %s\n' "$GDIR"
}

main
