#!/usr/bin/env bash
# Build the harness guest: kernel (with VM/harness.config), shim module, agent,
# and an uncompressed initramfs.  Everything is cached by content hash under
# the cache directory; an unchanged second run only recomputes the keys.
#
# Usage: VM/build.sh [--kernel-src PATH] [--kernel-config FILE] [--coverage] [--cache DIR]
#                   [--jobs N]
#        VM/build.sh --print-packages | --check-packages
#
# stdout: one line at the end, "guest: <dir>" (bzImage, vmlinux,
#         initramfs.cpio, manifest, identity).
# stderr: progress lines prefixed "build: ".
# Exit:   0 ok, 1 build failure (log path and tail printed),
#         2 usage error or unusable --kernel-src tree,
#         3 environment missing (packages, kernel source download).
#
# See VM/README.md for the cache layout and the keys.

set -eEuo pipefail
# A command that fails where nothing handles it ends the script (set -e);
# say where, never exit without a word.
trap 'printf "build: internal error: %s: line %d: \"%s\" exited %d\n" "${BASH_SOURCE[0]}" "$LINENO" "$BASH_COMMAND" "$?" >&2' ERR

VM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly VM_DIR
readonly FRAGMENT=$VM_DIR/harness.config
# The coverage flavour (--coverage): its config fragment and the files it instruments.
readonly COVERAGE_FRAGMENT=$VM_DIR/coverage.config
readonly COVERAGE_FILES=$VM_DIR/coverage.files
readonly SELF=$VM_DIR/build.sh
# What the build and the guest need (command or file, Debian package): the
# one list, also installed by .ci/run.  HARNESS_PACKAGES and HARNESS_APT_GET
# replace the list and apt-get (the tests use them).
readonly PACKAGES=${HARNESS_PACKAGES:-$VM_DIR/packages}
readonly APT_GET=${HARNESS_APT_GET:-apt-get}
readonly DEB_PACKAGE=linux-source-7.3
readonly DEB_SUITES=(
	"deb http://deb.debian.org/debian trixie-backports main"
	"deb http://deb.debian.org/debian sid main"
)

KERNEL_SRC=
KERNEL_CONFIG=
COVERAGE=no
CACHE=${HARNESS_CACHE:-$HOME/.cache/harness}
# One job more than cores: a job waiting on the disk or on make leaves no core idle.
JOBS=$(($(nproc) + 1))
T0=$(date +%s.%N)

say() { printf 'build: %s\n' "$*" >&2; }
die() { local code=$1; shift; printf 'build: error: %s\n' "$*" >&2; exit "$code"; }

elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f s", b - a }'; }

usage() {
	cat <<EOF
Usage: VM/build.sh [--kernel-src PATH] [--kernel-config FILE] [--coverage] [--cache DIR]
                   [--jobs N]
       VM/build.sh --print-packages | --check-packages

Build the harness guest (kernel, shim module, agent, initramfs).

  --kernel-src PATH  build this kernel tree instead of Debian's $DEB_PACKAGE:
                     a git checkout or any tree, dirty or with an in-tree
                     build.  Its files (git: tracked and untracked-not-ignored,
                     as in the working tree) are synced by content into a
                     snapshot under the cache, which is built out of tree;
                     the tree itself is only read.  An edit rebuilds only
                     what it touches.
  --kernel-config FILE  start from this .config: VM/harness.config is merged
                     on top of it (the fragment wins; symbols in neither are
                     off, as with allnoconfig)
  --coverage         the coverage flavour: $COVERAGE_FRAGMENT on top
                     (CONFIG_GCOV_KERNEL) and only the files of
                     $COVERAGE_FILES instrumented; its own
                     object directory and guest (with the .gcno files and
                     the sources in coverage/)
  --print-packages   print the Debian packages the build and the guest need
  --check-packages   install what is missing of them (as root), or print the
                     command that does; then exit
  --cache DIR        cache directory (default \${HARNESS_CACHE:-\$HOME/.cache/harness},
                     here: $CACHE)
  --jobs N           parallel make jobs (default: $(nproc) + 1)

Prints "guest: <dir>" on stdout when done.
Example: VM/build.sh --kernel-src ~/src/linux --jobs 2
EOF
}

# ---------------------------------------------------------------------------
# 1. Packages (before anything long: a missing QEMU is said before the kernel
#    is built, not after)

# (Not "readelf | grep -q": with pipefail, grep's early exit can fail the pipe.)
is_dynamic() { local h; h=$(readelf -l "$1" 2>/dev/null) && [[ $h == *INTERP* ]]; }

package_lines() { grep -Ev '^[[:space:]]*(#|$)' "$PACKAGES"; }

package_names() { package_lines | awk '{ print $2 }' | LC_ALL=C sort -u; }

check_packages() {
	[[ -r $PACKAGES ]] || die 1 "package list missing: $PACKAGES"
	local missing=() what pkg
	while read -r what pkg; do
		if [[ $what == /* ]]; then
			[[ -e $what ]] || missing+=("$pkg")
		else
			command -v "$what" >/dev/null 2>&1 || missing+=("$pkg")
		fi
	done < <(package_lines)
	# The dynamic busybox has no libc in the guest.
	if [[ -x /bin/busybox ]] && is_dynamic /bin/busybox; then
		missing+=(busybox-static)
	fi
	((${#missing[@]} == 0)) && return 0

	mapfile -t missing < <(printf '%s\n' "${missing[@]}" | LC_ALL=C sort -u)
	local cmdline="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
	if ((EUID != 0)); then
		say "missing packages: ${missing[*]}"
		die 3 "run as root: $cmdline"
	fi
	say "installing missing packages: ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive $APT_GET update >&2 ||
		die 3 "apt-get update failed; fix apt, then run: $cmdline"
	DEBIAN_FRONTEND=noninteractive $APT_GET install -y --no-install-recommends "${missing[@]}" >&2 ||
		die 3 "apt-get install failed; fix apt, then run: $cmdline"
}

while (($#)); do
	case $1 in
	--kernel-src) (($# >= 2)) || die 2 "--kernel-src needs a PATH"; KERNEL_SRC=$2; shift 2 ;;
	--kernel-src=*) KERNEL_SRC=${1#*=}; shift ;;
	--kernel-config) (($# >= 2)) || die 2 "--kernel-config needs a FILE"; KERNEL_CONFIG=$2; shift 2 ;;
	--kernel-config=*) KERNEL_CONFIG=${1#*=}; shift ;;
	--coverage) COVERAGE=yes; shift ;;
	--print-packages) package_names; exit 0 ;;
	--check-packages) check_packages; exit 0 ;;
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
if [[ $COVERAGE == yes ]]; then
	[[ -f $COVERAGE_FRAGMENT && -f $COVERAGE_FILES ]] ||
		die 1 "coverage flavour incomplete: $COVERAGE_FRAGMENT or $COVERAGE_FILES missing"
fi

# The guest is x86_64 and built with the host compiler.
export ARCH=x86_64
unset CROSS_COMPILE KBUILD_OUTPUT KCONFIG_CONFIG LOCALVERSION 2>/dev/null || true
export LC_ALL=C

sha() { sha256sum | cut -c1-16; }

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
	local version=${name#*_}
	version=${version%_*.deb}
	IDENTITY_SOURCE=$(printf '%s\n' "source_kind=debian" "debian_package=$DEB_PACKAGE" \
		"debian_version=$version")
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

# git, reading the user's tree: never writes to it (no index refresh:
# GIT_OPTIONAL_LOCKS=0), and accepts a tree owned by another user.
# With TREE_INDEX set, on a copy of the tree's index (prepare_user_source says why).
ugit() {
	if [[ -n ${TREE_INDEX:-} ]]; then
		GIT_INDEX_FILE=$TREE_INDEX GIT_OPTIONAL_LOCKS=0 git -c safe.directory='*' -c core.quotePath=false "$@"
	else
		GIT_OPTIONAL_LOCKS=0 git -c safe.directory='*' -c core.quotePath=false "$@"
	fi
}

# In-tree build products are never part of a snapshot, even where no
# .gitignore says so: kbuild refuses an out-of-tree build of a source with a
# .config or include/config.
readonly SNAPSHOT_EXCLUDES=(
	-x .config -x '.config.old' -x '*.o' -x '*.cmd' -x '*.ko' -x '*.a'
	-x /include/config/ -x /include/generated/ -x '/arch/*/include/generated/'
)

# A harness-owned snapshot of the user's tree, $CACHE/trees/<key>/src, key =
# the tree's path: the files as they are in the working tree (a git tree:
# tracked and untracked-not-ignored; any other tree: what its .gitignore
# files do not ignore), synced by content (VM/tree-sync.pl), so the files
# that did not change keep their times and the object directory of the
# same tree rebuilds only what changed.  Sets SRC (the snapshot), SRC_ID,
# TREE, TREE_HASH and IDENTITY_SOURCE.
prepare_user_source() {
	[[ -d $KERNEL_SRC ]] || die 2 "--kernel-src: no such directory: $KERNEL_SRC"
	TREE=$(cd "$KERNEL_SRC" && pwd -P)
	[[ -f $TREE/Makefile && -f $TREE/Kconfig && -d $TREE/arch/x86 ]] ||
		die 2 "--kernel-src: $TREE does not look like a Linux source tree (no Makefile, Kconfig and arch/x86)"
	local tkey tdir t list
	tkey=$(printf 'tree %s\n' "$TREE" | sha)
	tdir=$CACHE/trees/$tkey
	mkdir -p "$tdir/src"
	printf '%s\n' "$TREE" >"$tdir/path"
	SRC=$tdir/src
	list=$tdir/list
	t=$(date +%s.%N)
	local is_git=no
	if [[ $(ugit -C "$TREE" rev-parse --is-inside-work-tree 2>/dev/null) == true ]]; then
		is_git=yes
		# git rewrites the index it reads where a file's stat data changed but not its bytes
		# (`git diff` does, GIT_OPTIONAL_LOCKS=0 or not; a hard link made to one of the tree's
		# files changes its ctime): every git command below reads a copy of the tree's index.
		local index
		index=$(ugit -C "$TREE" rev-parse --path-format=absolute --git-path index) ||
			die 2 "--kernel-src: git rev-parse --git-path index failed in $TREE"
		rm -f "$tdir/index"
		if [[ -f $index ]]; then cp "$index" "$tdir/index" || die 1 "copying $index failed"; fi
		TREE_INDEX=$tdir/index
		ugit -C "$TREE" ls-files -z -c -o --exclude-standard "${SNAPSHOT_EXCLUDES[@]}" >"$list" ||
			die 2 "--kernel-src: git ls-files failed in $TREE"
	else
		# Not a git tree: an empty repository of the harness's own lists
		# the files its .gitignore files do not ignore.
		[[ -d $tdir/empty/.git ]] || git init -q "$tdir/empty" ||
			die 1 "git init $tdir/empty failed"
		ugit --git-dir="$tdir/empty/.git" --work-tree="$TREE" -C "$TREE" \
			ls-files -z -o --exclude-standard "${SNAPSHOT_EXCLUDES[@]}" >"$list" ||
			die 2 "--kernel-src: listing the files of $TREE failed"
		# Debian's linux-source tarball has a .gitignore that ignores its
		# whole top level (its packaging's): then only build products are
		# left out.
		if ! grep -qzxF Makefile "$list"; then
			ugit --git-dir="$tdir/empty/.git" --work-tree="$TREE" -C "$TREE" \
				ls-files -z -o "${SNAPSHOT_EXCLUDES[@]}" -x '.*' >"$list" ||
				die 2 "--kernel-src: listing the files of $TREE failed"
		fi
	fi
	# A tree's first snapshot, where Debian's kernel of the same configuration is built: it
	# starts as hard links to Debian's source (the sync below replaces what differs and removes
	# what the tree does not have), so that the files the tree shares with Debian's keep their
	# times and build_kernel can start from Debian's objects (a seeded build).
	# (Only into an empty snapshot: a file left there by an interrupted first sync could be
	# older than Debian's objects and not Debian's.)
	SEED_OBJ=
	if [[ ! -f $tdir/state && -z $(ls -A "$SRC") ]] && find_seed; then
		say "snapshot of $TREE: starting from Debian's source (seeded build from kernel ${SEED_OBJ##*/})"
		cp -al "$SEED_SRC/." "$SRC/" || die 1 "prefilling $SRC from $SEED_SRC failed"
	fi
	local counts
	TREE_HASH=$(perl "$VM_DIR/tree-sync.pl" "$TREE" "$SRC" "$tdir/state" <"$list" 2>"$tdir/sync.err") ||
		die 1 "snapshot of $TREE into $SRC failed: $(<"$tdir/sync.err")"
	counts=$(<"$tdir/sync.err")
	say "snapshot of $TREE in $SRC: $counts ($(elapsed "$t"))"

	local version
	version=$(sed -nE 's/^(VERSION|PATCHLEVEL|SUBLEVEL|EXTRAVERSION) = (.*)$/\2/p' "$SRC/Makefile" |
		paste -sd' ' | awk '{ v = $1 "." $2; if ($3 != "") v = v "." $3; print v $4 }')
	if [[ $is_git == yes ]]; then
		# HEAD plus a hash of every local change: the tracked diff and the
		# untracked files (their hashes are in the snapshot's state).
		local head changes untracked
		head=$(ugit -C "$TREE" rev-parse --verify -q HEAD) || head=none
		untracked=$(ugit -C "$TREE" ls-files -z -o --exclude-standard "${SNAPSHOT_EXCLUDES[@]}" |
			perl -e 'my %u; { local $/ = "\0"; while (<STDIN>) { chomp; $u{$_} = 1 } }
				open(my $s, "<", $ARGV[0]) or exit; local $/ = "\0";
				while (<$s>) { chomp; my ($h, $m, $st, $p) = split /\t/, $_, 4;
					print "$m $h $p\n" if $u{$p} }' "$tdir/state")
		if [[ $head == none ]]; then
			changes=$(printf '%s\n' "$untracked" | sha)
		elif ugit -C "$TREE" diff --quiet HEAD -- . && [[ -z $untracked ]]; then
			changes=clean
		else
			changes=$({
				ugit -C "$TREE" diff --binary --no-ext-diff --no-textconv --no-color HEAD -- .
				printf '%s\n' "$untracked"
			} | sha)
		fi
		SRC_ID="git:$TREE@$head+$changes"
		IDENTITY_SOURCE=$(printf '%s\n' "source_kind=git" "tree=$TREE" "git_commit=$head" \
			"git_describe=$(ugit -C "$TREE" describe --always --tags 2>/dev/null || echo none)" \
			"local_changes=$changes" "version=$version")
	else
		SRC_ID="tree:$TREE@$version+${TREE_HASH:0:16}"
		IDENTITY_SOURCE=$(printf '%s\n' "source_kind=tree" "tree=$TREE" "version=$version")
	fi
	IDENTITY_SOURCE+=$'\n'"tree_content=$TREE_HASH"
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

kernel_make() { ns_run make -C "${OVER_SRC:-$SRC}" O="${OVER_OBJ:-$OBJ}" "$@"; }

# A seeded build (find_seed) compiles what its tree has from Debian's objects: kbuild records
# each object's command line, absolute source and object paths included, and rebuilds an
# object whose command line changed.  So the tree's snapshot and object directory are
# mounted over Debian's source and object directory in a private mount namespace (nothing
# outside it sees them), and every make of the tree runs there: the command lines are
# Debian's, and an object is rebuilt when its source or a header it includes is newer, as in
# any incremental build.  OVER_SRC and OVER_OBJ (empty: an ordinary build) are those paths.
OVER_SRC=
OVER_OBJ=
SEED_OBJ=
SEED_SRC=
if ((EUID == 0)); then
	UNSHARE=(unshare --mount --propagation private --)
else
	UNSHARE=(unshare --user --map-root-user --mount --propagation private --)
fi

ns_run() { # cmd...
	if [[ -z $OVER_SRC ]]; then
		"$@"
		return
	fi
	"${UNSHARE[@]}" /bin/bash -c 'mount --bind "$1" "$2" && mount --bind "$3" "$4" && shift 4 && exec "$@"' \
		ns "$SRC" "$OVER_SRC" "$OBJ" "$OVER_OBJ" "$@"
}

# Whether this system lets build.sh mount in a namespace of its own.
ns_works() {
	"${UNSHARE[@]}" /bin/bash -c 'd=$(mktemp -d) && mount --bind "$d" "$d" && umount "$d"; r=$?; rmdir "$d"; exit $r' \
		>/dev/null 2>&1
}

compiler_line() {
	local c
	c=$(gcc --version)
	printf '%s\n' "${c%%$'\n'*}"
}

# The object directory's key: the source's id, the compiler and the config files.
kernel_key() { # id compiler config-file...
	local id=$1 compiler=$2
	shift 2
	printf '%s\n%s\n' "$id" "$compiler" | cat - "$@" | sha
}

# A user's tree can start from Debian's objects when it is built with the harness's fragment
# alone (no --kernel-config, not the coverage flavour), for the first time (no object
# directory of its own yet), in a cache where Debian's kernel of that fragment is built and
# its source extracted, and when this system allows a private mount namespace.  Sets
# SEED_SRC and SEED_OBJ.  (Not the coverage flavour: CONFIG_GCOV_KERNEL adds objtool's
# --no-unreachable to every object's command line, so kbuild recompiles everything anyway.)
find_seed() {
	[[ $COVERAGE == no && -z $KERNEL_CONFIG && -z ${HARNESS_NO_SEED:-} ]] || return 1
	local deb name compiler key own
	deb=$(newest_deb) || return 1
	name=$(basename "$deb")
	[[ -f $CACHE/src/$DEB_PACKAGE/.harness-extracted &&
		$(<"$CACHE/src/$DEB_PACKAGE/.harness-extracted") == "$name" ]] || return 1
	compiler=$(compiler_line)
	key=$(kernel_key "deb:$name" "$compiler" "$FRAGMENT")
	[[ -f $CACHE/kernel/$key/.harness-built && $(<"$CACHE/kernel/$key/.harness-built") == "$key" ]] ||
		return 1
	own=$(kernel_key "tree:$TREE" "$compiler" "$FRAGMENT")
	[[ ! -f $CACHE/kernel/$own/.harness-configured ]] || return 1
	ns_works || return 1
	SEED_SRC=$CACHE/src/$DEB_PACKAGE
	SEED_OBJ=$CACHE/kernel/$key
}

fmt_time() { # seconds
	local s=$1
	if ((s >= 60)); then printf '%d min %02d s' $((s / 60)) $((s % 60)); else printf '%d s' "$s"; fi
}

# C files a full build of this fragment compiles: the count of the last full
# build in this cache, else the figure measured for Debian's 7.3 (README).
expected_c_files() {
	local f n=0
	for f in "$CACHE"/kernel/*/.harness-c-files; do
		[[ -f $f ]] && n=$(<"$f")
	done
	((n > 0)) || n=1031
	printf '%s\n' "$n"
}

# kernel_make with a progress line on stderr: C files compiled of the
# expected total (counted from kbuild's "  CC" lines in the log), elapsed
# time and the current step.  Rewritten every second on a terminal, a new
# line every 5 s otherwise.  A rebuild in an object directory that was built
# before counts the files it recompiles.
make_with_progress() { # log make-args...
	local log=$1
	shift
	local from total rebuild=no tty=no every=5 start=$SECONDS last_print=$SECONDS
	from=$(($(wc -l <"$log") + 1))
	[[ -f $OBJ/.harness-c-files || -f $OBJ/vmlinux ]] && rebuild=yes
	total=$(expected_c_files)
	[[ -t 2 ]] && tty=yes && every=1
	# make itself in the background (not a subshell running it): the trap
	# below must reach make when this script ends early.
	ns_run make -C "${OVER_SRC:-$SRC}" O="${OVER_OBJ:-$OBJ}" "$@" >>"$log" 2>&1 &
	local pid=$!
	# shellcheck disable=SC2064 # the pid is meant to be expanded now
	trap "kill $pid 2>/dev/null" EXIT
	progress_line() {
		local n step line pct
		n=$(tail -n +"$from" "$log" | grep -c '^  CC ') || true
		# Nothing to match yet while make starts (seconds on a loaded
		# machine): grep fails, and with pipefail so would the script.
		step=$(tail -n +"$from" "$log" | grep -E '^  [A-Z0-9_]+ ' | tail -n1 | sed -E 's/^ +//; s/ +/ /g') || step=
		if [[ $rebuild == yes ]]; then
			line="kernel: $n C file(s) recompiled, $(fmt_time $((SECONDS - start)))"
		else
			pct=$((n * 100 / total))
			((pct > 99)) && pct=99
			line="kernel: $n of about $total C files ($pct %), $(fmt_time $((SECONDS - start)))"
		fi
		[[ -n $step ]] && line+=": $step"
		if [[ $tty == yes ]]; then
			printf '\rbuild: %s\033[K' "${line:0:150}" >&2
		else
			say "$line"
		fi
	}
	while kill -0 "$pid" 2>/dev/null; do
		sleep 0.5
		if ((SECONDS - last_print >= every)); then
			last_print=$SECONDS
			progress_line
		fi
	done
	local rc=0
	wait "$pid" || rc=$?
	trap - EXIT
	[[ $tty == yes ]] && printf '\r\033[K' >&2
	((rc == 0)) || fail_step "kernel build" "$log"
	local n
	n=$(tail -n +"$from" "$log" | grep -c '^  CC ') || true
	if [[ $rebuild == no ]]; then
		printf '%s\n' "$n" >"$OBJ/.harness-c-files"
		say "kernel: $n C files compiled in $(fmt_time $((SECONDS - start)))"
	else
		say "kernel: $n C file(s) recompiled in $(fmt_time $((SECONDS - start)))"
	fi
}

# The object directory: Debian's source, key = package, compiler and config;
# a user's tree, key = the tree's path, compiler and config (not its
# content: an edit rebuilds in the same directory, and .harness-built
# records the snapshot's content hash the directory was last built from).
build_kernel() {
	local compiler
	compiler=$(compiler_line)
	COMPILER=$compiler
	local id=$SRC_ID
	[[ -n ${TREE:-} ]] && id="tree:$TREE"
	local config_files=("$FRAGMENT")
	[[ -n $KERNEL_CONFIG ]] && config_files+=("$KERNEL_CONFIG")
	# The coverage flavour is its own object directory: the plain one is never rebuilt for it.
	[[ $COVERAGE == yes ]] && config_files+=("$COVERAGE_FRAGMENT" "$COVERAGE_FILES")
	KEY=$(kernel_key "$id" "$compiler" "${config_files[@]}")
	OBJ=$CACHE/kernel/$KEY
	mkdir -p "$OBJ"
	if [[ -n $SEED_OBJ && ! -f $OBJ/.harness-configured ]]; then
		local ts
		ts=$(date +%s.%N)
		cp -a "$SEED_OBJ/." "$OBJ/" || die 1 "copying Debian's objects $SEED_OBJ into $OBJ failed"
		rm -f "$OBJ/build.log" "$OBJ/.harness-built" "$OBJ/.harness-configured" "$OBJ/.harness-paths"
		printf '%s\n%s\n' "$SEED_SRC" "$SEED_OBJ" >"$OBJ/.harness-paths"
		say "kernel $KEY: starts from Debian's objects (kernel ${SEED_OBJ##*/}, copied in $(elapsed "$ts"))"
	fi
	# A seeded object directory is built at Debian's paths, now and at every rebuild.
	if [[ -f $OBJ/.harness-paths ]]; then
		{ read -r OVER_SRC && read -r OVER_OBJ; } <"$OBJ/.harness-paths"
		mkdir -p "$OVER_SRC" "$OVER_OBJ"
		ns_works || die 1 "$OBJ was seeded from Debian's objects and is built in a private mount namespace, which this system refuses now (unshare); delete $OBJ to build it from scratch"
	fi
	local built=$KEY
	[[ -n ${TREE:-} ]] && built="$KEY $TREE_HASH"
	if [[ -f $OBJ/.harness-built && $(<"$OBJ/.harness-built") == "$built" ]]; then
		say "kernel $KEY up to date"
		return
	fi
	rm -f "$OBJ/.harness-built"

	local log=$OBJ/build.log t
	t=$(date +%s.%N)
	# Appended to: an interrupted or failed run keeps the earlier output.
	printf '=== build.sh %s: kernel %s from %s%s\n' "$(date -u +%FT%TZ)" "$KEY" "$SRC_ID" \
		"${SEED_OBJ:+ (objects seeded from kernel ${SEED_OBJ##*/})}" >>"$log"
	if [[ ! -f $OBJ/.harness-configured || $(<"$OBJ/.harness-configured") != "$KEY" ]]; then
		# The user's .config first, the fragment after it: the fragment wins.
		local allconfig=$FRAGMENT fragments=("$FRAGMENT")
		[[ $COVERAGE == yes ]] && fragments+=("$COVERAGE_FRAGMENT")
		if [[ -n $KERNEL_CONFIG || $COVERAGE == yes ]]; then
			allconfig=$OBJ/.harness-allconfig
			cat ${KERNEL_CONFIG:+"$KERNEL_CONFIG"} "${fragments[@]}" >"$allconfig"
		fi
		say "kernel $KEY: configuring $SRC ($SRC_ID) into $OBJ"
		run_logged "configure (allnoconfig + $allconfig)" "$log" \
			kernel_make -j"$JOBS" KCONFIG_ALLCONFIG="$allconfig" allnoconfig

		# Kconfig silently drops symbols whose dependencies are unmet.
		local line missing=()
		while IFS= read -r line; do
			grep -qxF -- "$line" "$OBJ/.config" || missing+=("$line")
		done < <(grep -hE '^CONFIG_[A-Za-z0-9_]+=' "${fragments[@]}")
		if ((${#missing[@]})); then
			local m
			for m in "${missing[@]}"; do
				say "  not in .config: $m (have: $(grep -E "^(# )?${m%%=*}[= ]" "$OBJ/.config" || echo 'not offered'))"
			done
			die 1 "${#missing[@]} symbol(s) of ${fragments[*]} did not land in $OBJ/.config (unmet dependencies?)"
		fi
		printf '%s\n' "$KEY" >"$OBJ/.harness-configured"
	fi

	# bzImage is what QEMU boots (VM/harness.config says why not vmlinux);
	# vmlinux is where the harness checks the series' symbols.  `modules` even
	# without =m symbols: it runs modpost on vmlinux and writes Module.symvers,
	# which the out-of-tree shim needs to resolve its symbols.
	# scripts/unifdef for the agent's uapi headers (install_uapi), in the same
	# make.
	local targets=(bzImage modules scripts_unifdef)
	say "kernel $KEY: make -j$JOBS ${targets[*]}${COVERAGE_VARS[*]:+ (coverage: ${#COVERAGE_VARS[@]} files)} (log: $log)"
	make_with_progress "$log" -j"$JOBS" "${COVERAGE_VARS[@]}" "${targets[@]}"
	if [[ $COVERAGE == yes ]]; then check_coverage_objects "$log"; fi
	run_logged "uapi headers for the agent" "$log" install_uapi
	kernel_make -s kernelrelease >"$OBJ/.harness-release" 2>>"$log" ||
		fail_step "kernelrelease" "$log"
	printf '%s\n' "$built" >"$OBJ/.harness-built"
	say "kernel $KEY built in $(elapsed "$t")"
}

# The coverage flavour's files: those of $COVERAGE_FILES the tree has (COVERAGE_SOURCES,
# paths relative to the tree) and, for each, GCOV_PROFILE_<stem>.o=y (COVERAGE_VARS).
# scripts/Makefile.lib enables CFLAGS_GCOV for an object when
# $(GCOV_PROFILE_$(target-stem).o) is y, target-stem being the object's name within its
# directory: a variable given on make's command line reaches every sub-make, and no Makefile of
# the tree (shared with the plain build, or the user's) is edited.  A stem is a name, not a path:
# check_coverage_objects says if another file of the tree was instrumented too.
coverage_make_variables() {
	COVERAGE_SOURCES=()
	COVERAGE_VARS=()
	[[ $COVERAGE == yes ]] || return 0
	local f
	while read -r f; do
		if [[ ! -f $SRC/$f ]]; then
			say "warning: coverage: $f is not in this tree; not instrumented"
			continue
		fi
		COVERAGE_SOURCES+=("$f")
		f=${f##*/}
		COVERAGE_VARS+=("GCOV_PROFILE_${f%.c}.o=y")
	done < <(grep -Ev '^[[:space:]]*(#|$)' "$COVERAGE_FILES")
	((${#COVERAGE_SOURCES[@]})) || die 1 "coverage: none of the files of $COVERAGE_FILES is in $SRC"
}

# Every file meant to be instrumented has its .gcno (the compiler's notes, which turn counts into
# lines), and no other object of the tree does.
check_coverage_objects() { # log
	local f missing=() extra
	for f in "${COVERAGE_SOURCES[@]}"; do
		[[ -f $OBJ/${f%.c}.gcno ]] || missing+=("$f")
	done
	((${#missing[@]} == 0)) ||
		fail_step "coverage: no .gcno for ${missing[*]} (not built with this configuration?)" "$1"
	extra=$(cd "$OBJ" && find . -name '*.gcno' | sed 's|^\./||; s|\.gcno$|.c|' | LC_ALL=C sort |
		grep -vxF -f <(printf '%s\n' "${COVERAGE_SOURCES[@]}")) || true
	[[ -z $extra ]] || say "warning: coverage: also instrumented (same file name): $(echo $extra)"
	say "coverage: ${#COVERAGE_SOURCES[@]} files instrumented"
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
		ns_run make -C "${OVER_OBJ:-$OBJ}" M="$dir" modules
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
	# By content: the kernel the object directory holds now (a tree's
	# directory is rebuilt in place) and where it came from.
	gkey=$({
		printf 'source %s\n' "$SRC_ID"
		cat "$OBJ/.harness-release"
		sha256sum <"$OBJ/arch/x86/boot/bzImage"
		sha256sum <"$OBJ/vmlinux"
		sha256sum <"$OBJ/Module.symvers"
		printf '%s\n' "$KERNEL_CONFIG_SHA"
		hash_tree "$VM_DIR/shim"
		hash_tree "$VM_DIR/agent"
		hash_tree "$VM_DIR/repro"
		sha256sum <"$VM_DIR/init"
		hash_tree "$VM_DIR/pid1"
		sha256sum <"$SELF"
		sha256sum </bin/busybox
		if [[ $COVERAGE == yes ]]; then printf 'coverage %s\n' "${COVERAGE_SOURCES[*]}"; fi
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
	# Copies, not links: the next build of a tree rewrites its object
	# directory's files in place.  Without the DWARF that DEBUG_INFO_BTF
	# needs in the build (96 of its 111 MB): the harness reads only the
	# symbols (the BTF stays, in its own section).
	objcopy --strip-debug "$OBJ/vmlinux" "$tmp/vmlinux" >>"$log" 2>&1 ||
		fail_step "copying vmlinux (objcopy --strip-debug)" "$log"
	cp "$OBJ/arch/x86/boot/bzImage" "$tmp/bzImage"
	if [[ $COVERAGE == yes ]]; then copy_coverage_notes "$tmp/coverage"; fi

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
		if [[ $COVERAGE == yes ]]; then printf 'coverage=coverage\n'; fi
	} >"$tmp/manifest.tmp"
	# Which kernel this is, for reports (KernelIdentity in the harness).
	{
		printf '%s\n' "$IDENTITY_SOURCE"
		printf 'release=%s\n' "$(<"$OBJ/.harness-release")"
		printf 'fragment_sha256=%s\n' "$(sha256sum <"$FRAGMENT" | cut -d' ' -f1)"
		printf 'user_config_sha256=%s\n' "${KERNEL_CONFIG_SHA:-none}"
		printf 'compiler=%s\n' "$COMPILER"
		printf 'kernel_image_sha256=%s\n' "$(sha256sum <"$tmp/bzImage" | cut -d' ' -f1)"
		if [[ $COVERAGE == yes ]]; then printf 'flavour=coverage (gcov: %s)\n' "${COVERAGE_SOURCES[*]}"; fi
	} >"$tmp/identity"
	mv "$tmp/manifest.tmp" "$tmp/manifest"
	rm -rf "$GDIR"
	mv -T "$tmp" "$GDIR"
	# Partial dirs of earlier failed builds only matter for their logs.
	find "$CACHE/guest" -maxdepth 1 -name '.*.partial' -exec rm -rf {} +
	[[ $has_mf == yes && $has_dmabuf == yes ]] ||
		say "warning: kernel lacks the series (register_pfn_address_space: $has_mf, dma_buf_phys_vec_to_sgt: $has_dmabuf)"
	say "guest $gkey built in $(elapsed "$t")"
}

# What turns the guest's counts into lines, copied beside the guest (a tree's object directory
# is rebuilt in place, and its snapshot changes with the tree): coverage/obj/<file>.gcno,
# coverage/src/<file>.c, and coverage/files, "<source path> <path of its .gcda in the guest's
# /sys/kernel/debug/gcov>" (gcc names the .gcda after the object's absolute path).
copy_coverage_notes() { # dir
	local d=$1 f
	mkdir -p "$d"
	: >"$d/files"
	for f in "${COVERAGE_SOURCES[@]}"; do
		mkdir -p "$d/obj/${f%/*}" "$d/src/${f%/*}"
		cp "$OBJ/${f%.c}.gcno" "$d/obj/${f%.c}.gcno"
		cp "$SRC/$f" "$d/src/$f"
		printf '%s %s\n' "$f" "${OBJ#/}/${f%.c}.gcda" >>"$d/files"
	done
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

	KERNEL_CONFIG_SHA=
	if [[ -n $KERNEL_CONFIG ]]; then
		[[ -f $KERNEL_CONFIG && -r $KERNEL_CONFIG ]] ||
			die 2 "--kernel-config: no such file: $KERNEL_CONFIG"
		KERNEL_CONFIG=$(realpath "$KERNEL_CONFIG")
		KERNEL_CONFIG_SHA=$(sha256sum <"$KERNEL_CONFIG" | cut -d' ' -f1)
	fi
	TREE=
	if [[ -n $KERNEL_SRC ]]; then
		prepare_user_source
	else
		prepare_debian_source
	fi
	coverage_make_variables
	build_kernel
	# kernel/current names the plain kernel (the shim's Makefile builds against it by hand).
	# (Not for a seeded tree: its object directory's Makefile names Debian's source path.)
	if [[ $COVERAGE == no && -z $OVER_SRC ]]; then link_current; fi
	build_guest
	say "done in $(elapsed "$T0")"
	printf 'guest: %s\n' "$GDIR"
}

# On one line: bash reads a script as it runs, and this way it has read all it will run
# before it runs (a build.sh replaced during a build does not run its tail).
main "$@"; exit
