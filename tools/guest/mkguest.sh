#!/bin/sh
# mkguest.sh builds the QEMU guest Courier's tests and sandbox boot: the
# Debian kernel and an initramfs of busybox (static) with the virtio-net
# driver, whose init configures the NIC from the kernel command line (or
# by DHCP, which Courier's DVR answers) and keeps a shell on the serial
# console. Built, not committed: everything comes from the Debian
# archive (apt-get download, dpkg -x), so a fresh machine can build it.
#
# Usage: mkguest.sh [CACHE]   (default /var/cache/courier/guest)
#
# The result goes to CACHE/KVER-HASH/{vmlinuz,initrd} (HASH: this
# script's), built once; the directory is printed on stdout. KVER is the
# release's kernel (linux-image-amd64's dependency) unless set.
set -eu

cache=${1:-/var/cache/courier/guest}
if [ -z "${KVER:-}" ]; then
	pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -n1)
	if [ -z "$pkg" ]; then
		apt-get update -qq >&2
		pkg=$(apt-cache depends linux-image-amd64 | sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -n1)
	fi
	KVER=${pkg#linux-image-}
fi
[ -n "$KVER" ] || { echo "mkguest: cannot tell the Debian kernel (apt-cache depends linux-image-amd64)" >&2; exit 1; }
hash=$(sha256sum "$0" | cut -c1-12)
out=$cache/$KVER-$hash
if [ -s "$out/vmlinuz" ] && [ -s "$out/initrd" ]; then
	echo "$out"
	exit 0
fi
mkdir -p "$cache"
# One build at a time per cache; a second waits and finds it done.
exec 9>"$cache/.lock"
flock 9
if [ -s "$out/vmlinuz" ] && [ -s "$out/initrd" ]; then
	echo "$out"
	exit 0
fi

work=$(mktemp -d "$cache/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
# apt-get download writes where it runs; _apt must be able to, or it
# warns and downloads as root.
chmod 755 "$work"
apt-get download -q "linux-image-$KVER" busybox-static >&2
dpkg -x linux-image-"$KVER"_*.deb kernel
dpkg -x busybox-static_*.deb bb

root=$work/root
mkdir -p "$root/bin" "$root/dev" "$root/proc" "$root/sys" "$root/tmp" "$root/www" "$root/lib/modules" "$root/etc"
cp bb/bin/busybox "$root/bin/busybox"
for a in $("$root/bin/busybox" --list); do
	[ "$a" = busybox ] || ln -s busybox "$root/bin/$a"
done

# virtio_net and what it needs, dependencies first, from each module's
# own depends= (the package's modules.dep is made by depmod at install).
mods=$work/kernel/lib/modules/$KVER
modfile() { find "$mods/kernel" -name "$1.ko" -o -name "$1.ko.xz" | head -n1; }
order=""
add() {
	case " $order " in *" $1 "*) return ;; esac
	f=$(modfile "$1")
	[ -n "$f" ] || { echo "mkguest: module $1 not in $KVER" >&2; exit 1; }
	case "$f" in *.xz) xz -dc "$f" >"$work/$1.ko" ;; *) cp "$f" "$work/$1.ko" ;; esac
	for d in $(tr '\0' '\n' <"$work/$1.ko" | sed -n 's/^depends=//p' | tr ',' ' '); do
		add "$d"
	done
	order="$order $1"
	cp "$work/$1.ko" "$root/lib/modules/$1.ko"
}
for m in virtio_pci virtio_net; do add "$m"; done
echo $order >"$root/etc/modules"

cat >"$root/init" <<'INIT'
#!/bin/sh
# The guest's init: modules, the NIC, a web page, a shell on the console.
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /etc/modules); do insmod /lib/modules/$m.ko; done
for kv in $(cat /proc/cmdline); do
	case "$kv" in
	courier.ip=*) ip=${kv#courier.ip=} ;;
	courier.gw=*) gw=${kv#courier.gw=} ;;
	courier.mtu=*) mtu=${kv#courier.mtu=} ;;
	courier.name=*) name=${kv#courier.name=} ;;
	esac
done
hostname "${name:-guest}"
ip link set lo up
n=0
while ! ip link show eth0 >/dev/null 2>&1 && [ $n -lt 100 ]; do sleep 0.05; n=$((n+1)); done
[ -z "${mtu:-}" ] || ip link set eth0 mtu "$mtu"
ip link set eth0 up
if [ -n "${ip:-}" ]; then
	ip addr add "$ip" dev eth0
	[ -z "${gw:-}" ] || ip route add default via "$gw"
else
	udhcpc -i eth0 -s /etc/udhcpc.script -t 10 -T 1 -n -q
fi
echo "courier guest ${name:-guest}" >/www/index.html
httpd -p 80 -h /www
exec </dev/ttyS0 >/dev/ttyS0 2>&1
stty -echo -onlcr 2>/dev/null
echo "COURIER-GUEST-READY $(ip -4 -o addr show eth0 | awk '{print $4}')"
# One command per line on the console, each in a shell of its own (an
# exit or a syntax error ends that shell, not init); the caller ends the
# line with an echo of a marker and $? to know where the output ends.
while true; do
	IFS= read -r line || { sleep 1; continue; }
	sh -c "$line" </dev/null
done
INIT
cat >"$root/etc/udhcpc.script" <<'SCRIPT'
#!/bin/sh
case "$1" in
bound|renew)
	ip addr flush dev "$interface"
	ip addr add "$ip/${mask:-24}" dev "$interface"
	[ -z "${mtu:-}" ] || ip link set "$interface" mtu "$mtu"
	for r in ${router:-}; do ip route add default via "$r"; break; done
	;;
esac
SCRIPT
chmod 755 "$root/init" "$root/etc/udhcpc.script"

(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) >"$work/initrd"
mkdir -p "$out.tmp"
# The uncompressed kernel (ELF, booted by QEMU through its PVH entry)
# saves the guest decompressing itself, seconds under TCG. Debian
# compresses it with xz: it starts at xz's magic in the bzImage.
bz=kernel/boot/vmlinuz-$KVER
off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$bz" | head -n1 | cut -d: -f1)
if [ -n "$off" ] && tail -c +$((off + 1)) "$bz" | xz -dcq >"$out.tmp/vmlinuz" 2>/dev/null ||
	[ "$(head -c4 "$out.tmp/vmlinuz" | od -An -c | tr -d ' ')" = 177ELF ]; then
	:
else
	cp "$bz" "$out.tmp/vmlinuz"
fi
cp "$work/initrd" "$out.tmp/initrd"
rm -rf "$out"
mv "$out.tmp" "$out"
echo "$out"
