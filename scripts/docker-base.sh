#!/usr/bin/env bash
# Builds a local Debian base image for deploy/Dockerfile where no container registry can be
# reached: debootstrap (minbase) from the Debian package source this machine's apt uses, read
# from its apt configuration (a deb822 *.sources file or sources.list), slimmed the way the
# official slim images are (dpkg path exclusions for documentation, manuals and locales), then
# `docker import`. Prints the image name. Reuses the image when it exists (--force rebuilds).
#
#   scripts/docker-base.sh [--force] [IMAGE]        (default IMAGE: fedc/debian:SUITE-slim)
#
# A user with registry access does not need this: deploy/Dockerfile defaults to the official
# debian:bookworm-slim.
set -euo pipefail
force=0
if [[ ${1:-} == --force ]]; then force=1; shift; fi
. /etc/os-release
suite=${VERSION_CODENAME:-bookworm}
image=${1:-fedc/debian:${suite}-slim}
if [[ $force == 0 ]] && docker image inspect "$image" > /dev/null 2>&1; then
    echo "$image"
    exit 0
fi
# The mirror: the first URI of a source for the suite with component main.
mirror=""
for f in /etc/apt/sources.list.d/*.sources; do
    [[ -e $f ]] || continue
    mirror=$(awk -v s="$suite" '
        /^URIs:/ {u=$2} /^Suites:/ {ok=0; for (i = 2; i <= NF; i++) if ($i == s) ok=1}
        /^Components:/ {c=0; for (i = 2; i <= NF; i++) if ($i == "main") c=1}
        /^$/ {if (u && ok && c) {print u; exit} u=""; ok=0; c=0}
        END {if (u && ok && c) print u}' "$f" | head -1)
    [[ -n $mirror ]] && break
done
if [[ -z $mirror && -e /etc/apt/sources.list ]]; then
    mirror=$(awk -v s="$suite" '$1 == "deb" && $3 == s {print $2; exit}' /etc/apt/sources.list)
fi
if [[ -z $mirror ]]; then
    echo "docker-base: no Debian source for $suite in /etc/apt (sources.list or *.sources)" >&2
    exit 1
fi
command -v debootstrap > /dev/null || {
    echo "docker-base: debootstrap is missing (apt-get install debootstrap; scripts/install-deps.sh --docker)" >&2
    exit 1
}
[[ $(id -u) == 0 ]] || { echo "docker-base: debootstrap needs root" >&2; exit 1; }
root=$(mktemp -d /tmp/fedc-rootfs-XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "docker-base: debootstrap --variant=minbase $suite from $mirror" >&2
debootstrap --variant=minbase "$suite" "$root" "$mirror" > "$root.log" 2>&1 || {
    tail -20 "$root.log" >&2
    echo "docker-base: debootstrap failed (log above)" >&2
    exit 1
}
rm -f "$root.log"
# As the official slim images do: no documentation, manuals or translations, now or later.
mkdir -p "$root/etc/dpkg/dpkg.cfg.d"
cat > "$root/etc/dpkg/dpkg.cfg.d/docker-slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
CFG
find "$root/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete 2>/dev/null || true
rm -rf "$root/usr/share/man"/* "$root/usr/share/info"/* "$root/usr/share/locale"/* \
       "$root/usr/share/groff"/* "$root/usr/share/lintian"/* "$root/var/cache/apt"/*.bin \
       "$root/var/lib/apt/lists"/* "$root/var/log"/*.log "$root/var/cache/debconf"/*-old \
       "$root/var/cache/apt/archives"/*.deb
# apt inside the image uses the same source as this machine.
rm -f "$root/etc/apt/sources.list"
printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$mirror" "$suite" "$suite" > "$root/etc/apt/sources.list.d/debian.sources"
tar -C "$root" -c . | docker import --change 'CMD ["/bin/bash"]' - "$image" > /dev/null
echo "$image"
