#!/bin/sh
# Install relaygate's systemd integration: units, target, sysusers.d, tmpfiles.d, the config
# directory and a /usr/local/bin/relaygate link. The Python package itself goes into a venv
# at PREFIX first (see docs/install.md). Idempotent; never touches an existing relaygate.toml.
#
#   sudo systemd/install.sh                      # onto this host, then activates (see below)
#   systemd/install.sh --destdir /tmp/stage      # staged into a tree (packaging); no activation
#
# Activation (only without --destdir, and unless --no-activate): create the relaygate user
# (systemd-sysusers), create /var/lib/relaygate and /etc/relaygate with their owners and modes
# (systemd-tmpfiles), and reload systemd when it is running. It enables and starts nothing.
set -eu

PREFIX=/opt/relaygate
DESTDIR=
UNITDIR=/etc/systemd/system
ACTIVATE=yes
HERE=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)

usage() {
    sed -n '2,12s/^# \{0,1\}//p' "$0"
    echo "options: --prefix DIR (default $PREFIX)  --destdir DIR  --unitdir DIR (default $UNITDIR)  --no-activate"
}

while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) PREFIX=${2:?--prefix needs a directory}; shift 2 ;;
        --prefix=*) PREFIX=${1#*=}; shift ;;
        --destdir) DESTDIR=${2:?--destdir needs a directory}; shift 2 ;;
        --destdir=*) DESTDIR=${1#*=}; shift ;;
        --unitdir) UNITDIR=${2:?--unitdir needs a directory}; shift 2 ;;
        --unitdir=*) UNITDIR=${1#*=}; shift ;;
        --no-activate) ACTIVATE=no; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done

case "$PREFIX" in
    /*) ;;
    *) echo "install.sh: --prefix must be an absolute path" >&2; exit 2 ;;
esac
case "$PREFIX" in
    *[!A-Za-z0-9/._-]*) echo "install.sh: --prefix may only use A-Z a-z 0-9 / . _ -" >&2; exit 2 ;;
esac
[ -n "$DESTDIR" ] && ACTIVATE=no

umask 022
say() { printf '%s\n' "$*"; }

# Units, with the ExecStart path following --prefix.
install -d -m 0755 "$DESTDIR$UNITDIR"
for unit in "$HERE"/relaygate.service "$HERE"/relaygate-*.service "$HERE"/relaygate.target; do
    name=$(basename "$unit")
    sed "s#/opt/relaygate#$PREFIX#g" "$unit" > "$DESTDIR$UNITDIR/$name.tmp"
    chmod 0644 "$DESTDIR$UNITDIR/$name.tmp"
    mv -f "$DESTDIR$UNITDIR/$name.tmp" "$DESTDIR$UNITDIR/$name"
    say "unit      $UNITDIR/$name"
done

install -d -m 0755 "$DESTDIR/etc/sysusers.d" "$DESTDIR/etc/tmpfiles.d"
install -m 0644 "$HERE/sysusers.d/relaygate.conf" "$DESTDIR/etc/sysusers.d/relaygate.conf"
say "sysusers  /etc/sysusers.d/relaygate.conf"
install -m 0644 "$HERE/tmpfiles.d/relaygate.conf" "$DESTDIR/etc/tmpfiles.d/relaygate.conf"
say "tmpfiles  /etc/tmpfiles.d/relaygate.conf"

# Config directory (its group and mode are set again by tmpfiles once the user exists).
install -d -m 0750 "$DESTDIR/etc/relaygate"
say "config    /etc/relaygate/ (relaygate.toml: run 'relaygate --config /etc/relaygate/relaygate.toml init')"

# The install guide next to the program, where the units' Documentation= points.
if [ -f "$HERE/../docs/install.md" ]; then
    install -d -m 0755 "$DESTDIR$PREFIX/share/doc/relaygate"
    install -m 0644 "$HERE/../docs/install.md" "$DESTDIR$PREFIX/share/doc/relaygate/install.md"
fi

# The admin command on PATH.
install -d -m 0755 "$DESTDIR/usr/local/bin"
if [ -e "$DESTDIR/usr/local/bin/relaygate" ] && [ ! -L "$DESTDIR/usr/local/bin/relaygate" ]; then
    say "skipped   /usr/local/bin/relaygate exists and is not a link"
else
    ln -sfn "$PREFIX/bin/relaygate" "$DESTDIR/usr/local/bin/relaygate"
    say "link      /usr/local/bin/relaygate -> $PREFIX/bin/relaygate"
fi

if [ "$ACTIVATE" = yes ]; then
    systemd-sysusers relaygate.conf
    systemd-tmpfiles --create relaygate.conf
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload
        say "systemd   reloaded"
    fi
    say "next: write the config, then 'systemctl enable --now relaygate.service' (all roles)"
    say "      or 'systemctl enable --now relaygate.target' (one unit per role)"
fi
