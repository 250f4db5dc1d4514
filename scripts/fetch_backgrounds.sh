#!/usr/bin/env bash
# Unpack Debian's photographic wallpaper packages into a background folder for training.
#
#   scripts/fetch_backgrounds.sh OUT [PACKAGE...]
#
# Downloads each package with `apt-get download` (no install, no root needed beyond a
# working apt), unpacks it with `dpkg-deb -x`, and copies its raster images (jpg, png,
# webp) into OUT/<package>/. KDE-style wallpapers ship one picture at several
# resolutions (…/contents/images/<W>x<H>.jpg): only the largest is kept. Run
# `apt-get update` first on a fresh machine. Tests never need this script.
set -euo pipefail

if [[ $# -lt 1 || "$1" == -h || "$1" == --help ]]; then
    sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
out=$(mkdir -p "$1" && cd "$1" && pwd)
shift
packages=("$@")
if [[ ${#packages[@]} -eq 0 ]]; then
    packages=(plasma-workspace-wallpapers mate-backgrounds ukui-wallpapers gnome-backgrounds)
fi

work=$(mktemp -d)
chmod 755 "$work"  # apt-get download hands the file to the _apt user
trap 'rm -rf "$work"' EXIT

largest_of_each_variant() {  # print kept image paths, one per line
    local root=$1
    find "$root" -type f \( -iname '*.jpg' -o -iname '*.jpeg' -o -iname '*.png' -o -iname '*.webp' \) \
        -size +40k | while read -r file; do
        dir=$(dirname "$file")
        case "$dir" in
            */contents/images*) [[ "$file" == "$(ls -S "$dir" | head -n 1 | sed "s|^|$dir/|")" ]] \
                                    && echo "$file" ;;
            *) echo "$file" ;;
        esac
    done
}

for package in "${packages[@]}"; do
    echo "== $package"
    if ! (cd "$work" && apt-get download "$package" >/dev/null); then
        echo "   skipped: apt-get download failed (run apt-get update?)" >&2
        continue
    fi
    unpacked="$work/$package"
    mkdir -p "$unpacked" "$out/$package"
    dpkg-deb -x "$work/${package}"_*.deb "$unpacked"
    count=0
    while read -r file; do
        name=$(echo "${file#"$unpacked"/}" | tr '/ ' '__')
        cp "$file" "$out/$package/$name"
        count=$((count + 1))
    done < <(largest_of_each_variant "$unpacked")
    echo "   $count images -> $out/$package"
    rm -rf "$unpacked" "$work/${package}"_*.deb
done
echo "backgrounds in $out: $(find "$out" -type f | wc -l) files"
