#!/usr/bin/env bash
# Boot the "mf" world (memory failure) by hand: q35 under TCG, an Intel CPU
# model (machine-check injection recovers), 64 MiB of ivshmem device memory
# whose BAR2 lands in the 32-bit PCI hole (a section without RAM), the
# virtio-serial control port, the HMP monitor and a qcow2 drive for
# snapshots.  VM/README.md explains every option; the Swift host builds the
# same command line itself.
#
# Usage: VM/qemu-mf.sh [options] [-- extra QEMU arguments]
#   --guest DIR    guest built by VM/build.sh (default: run VM/build.sh)
#   --run DIR      keep sockets, pidfile, qcow2 here (default: a temp dir,
#                  removed on exit)
#   --log FILE     serial console to FILE; "-" = plain stdout (for scripts).
#                  Default: interactive console on this terminal, muxed with
#                  a monitor (Ctrl-A C switches, Ctrl-A X quits).
#   --shell        boot with harness.shell=1 (a shell instead of the agent)
#   --append ARGS  more kernel arguments
#   --initrd FILE  use FILE instead of the guest's initramfs.cpio
#   --print        print the QEMU command line and exit
#
# In the run dir: ctl.sock (control port, connect e.g. with
# "socat - UNIX-CONNECT:ctl.sock"), mon.sock (HMP: "socat - UNIX-CONNECT:mon.sock"),
# qemu.pid, snap.qcow2.  Device memory: /dev/shm/harness-mf-<pid>.

# QEMU options are comma-separated lists, not array separators:
# shellcheck disable=SC2054
set -euo pipefail

VM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
GUEST='' RUN='' LOG='' APPEND='' INITRD='' PRINT=0 SHELL_MODE=0
EXTRA=()

die() { printf 'qemu-mf: error: %s\n' "$*" >&2; exit 2; }

while (($#)); do
	case $1 in
	--guest) GUEST=${2:?--guest needs a DIR}; shift 2 ;;
	--run) RUN=${2:?--run needs a DIR}; shift 2 ;;
	--log) LOG=${2:?--log needs a FILE or -}; shift 2 ;;
	--shell) SHELL_MODE=1; shift ;;
	--append) APPEND=${2?--append needs ARGS}; shift 2 ;;
	--initrd) INITRD=${2:?--initrd needs a FILE}; shift 2 ;;
	--print) PRINT=1; shift ;;
	-h | --help) sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; exit 0 ;;
	--) shift; EXTRA=("$@"); break ;;
	*) die "unknown argument: $1 (see --help)" ;;
	esac
done

if [[ -z $GUEST ]]; then
	GUEST=$("$VM_DIR/build.sh" | sed -n 's/^guest: //p')
fi
for f in bzImage initramfs.cpio; do
	[[ -f $GUEST/$f ]] || die "$GUEST/$f missing: run VM/build.sh"
done
INITRD=${INITRD:-$GUEST/initramfs.cpio}

KEEP_RUN=1
if [[ -z $RUN ]]; then
	RUN=$(mktemp -d "${TMPDIR:-/tmp}/harness-mf.XXXXXX")
	KEEP_RUN=0
fi
mkdir -p "$RUN"
RUN=$(cd "$RUN" && pwd)
SHM=/dev/shm/harness-mf-$$

cmdline="console=ttyS0 panic=-1 quiet noapictimer no_timer_check tsc=unstable printk.devkmsg=on"
((SHELL_MODE)) && cmdline+=" harness.shell=1"
[[ -n $APPEND ]] && cmdline+=" $APPEND"

# The snapshot drive uses io_uring where the host offers it (loadvm about three times faster than
# with QEMU's thread pool; see snapshotAIO in Sources/Harness/Guest/HostTools.swift).
AIO=threads
probe=$(mktemp)
if qemu-img create -q -f qcow2 "$probe" 1M &&
	qemu-io -f qcow2 --aio io_uring -c 'read 0 4k' "$probe" >/dev/null 2>&1; then
	AIO=io_uring
fi
rm -f "$probe"
args=(
	qemu-system-x86_64
	-accel tcg
	-machine q35
	-cpu max,vendor=GenuineIntel,family=6,model=85,stepping=4
	-smp 1 -m 128
	-nodefaults -no-user-config -display none -no-reboot
	-kernel "$GUEST/bzImage"
	-initrd "$INITRD"
	-append "$cmdline"
	-pidfile "$RUN/qemu.pid"
	-monitor "unix:$RUN/mon.sock,server=on,wait=off"
	-chardev "socket,id=ctl,path=$RUN/ctl.sock,server=on,wait=off"
	-device virtio-serial-pci
	-device virtserialport,chardev=ctl,name=ctl
	-object "memory-backend-file,id=m0,mem-path=$SHM,size=64M,share=on"
	-device ivshmem-plain,memdev=m0,master=on
	-drive "if=none,id=snap,format=qcow2,file=$RUN/snap.qcow2,aio=$AIO"
)
case $LOG in
'') args+=(-chardev stdio,id=con,mux=on,signal=off -serial chardev:con -mon chardev=con) ;;
-) args+=(-serial stdio) ;;
*) args+=(-serial "file:$LOG") ;;
esac
args+=("${EXTRA[@]}")

if ((PRINT)); then
	printf '%q ' "${args[@]}"
	printf '\n'
	((KEEP_RUN)) || rmdir "$RUN"
	exit 0
fi

cleanup() {
	rm -f "$SHM"
	if ((KEEP_RUN)); then
		rm -f "$RUN/ctl.sock" "$RUN/mon.sock"
	else
		rm -rf "$RUN"
	fi
}
trap cleanup EXIT
qemu-img create -q -f qcow2 "$RUN/snap.qcow2" 64M
[[ -z $LOG || $LOG == - ]] || printf 'qemu-mf: serial console in %s, run dir %s\n' "$LOG" "$RUN" >&2
if [[ -z $LOG ]]; then
	"${args[@]}"
else
	"${args[@]}" </dev/null
fi
