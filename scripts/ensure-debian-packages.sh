#!/usr/bin/env bash
# Install the Debian packages named on the command line that are not installed yet.
# Uses apt-get as root, sudo apt-get otherwise; without apt it names what is missing and fails.
set -euo pipefail

missing=()
for package in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: these system packages are required but missing: ${missing[*]}" >&2
    echo "       there is no apt-get here; install them with your package manager and retry." >&2
    exit 1
fi

if [ "$(id -u)" -eq 0 ]; then
    sudo=()
elif command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
else
    echo "error: installing ${missing[*]} needs root, and sudo is not available." >&2
    exit 1
fi

echo "==> installing Debian packages: ${missing[*]}"
start=$SECONDS
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "==> installed ${missing[*]} in $((SECONDS - start)) s"
