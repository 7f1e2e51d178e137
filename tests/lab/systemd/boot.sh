# shellcheck shell=sh
#
# `lab.sh systemd`, guest side, part one (sourced by the busybox init, PID 1): turn the
# initramfs into a minimal system systemd can boot (users, machine id, the shipped unit and the
# test units), then exec the host's systemd (Debian 12, systemd 252) as PID 1. It starts
# herald-lab.target (systemd.unit= on the kernel command line), whose one service is
# /lab/systemd/test.sh; that script writes the results and powers off.

systemd_boot() {
    # DynamicUser= allocates the daemon's user itself; these are the names NSS must know
    # for the rest (root, and the nobody/nogroup systemd falls back to).
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >/etc/passwd
    printf 'root:x:0:\nnogroup:x:65534:\n' >/etc/group
    printf 'passwd: files systemd\ngroup: files systemd\nshadow: files\n' >/etc/nsswitch.conf
    echo 0123456789abcdef0123456789abcdef >/etc/machine-id
    mkdir -p /root /var/lib /var/log /var/tmp /etc/ipvs-herald /usr/sbin /etc/systemd/system
    # The unit runs /usr/sbin/ipvs-herald, where the Debian package puts it.
    ln -sf /usr/bin/ipvs-herald /usr/sbin/ipvs-herald
    # The shipped unit, unchanged; the drop-in is installed by test.sh between its two runs.
    cp /lab/systemd/ipvs-herald.service /etc/systemd/system/ipvs-herald.service
    cp /lab/systemd/herald-lab.service /lab/systemd/herald-lab.target /etc/systemd/system/
    echo "lab: exec systemd as PID 1" >/dev/console
    exec /lib/systemd/systemd
}
