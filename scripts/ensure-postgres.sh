#!/usr/bin/env bash
# Makes sure the PostgreSQL the tests use answers on 127.0.0.1:5432 (user postgres, trust auth
# as on this project's machines), starting the local cluster when it is down.
set -euo pipefail

ready() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }
ready && exit 0
version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
if [ -z "$version" ]; then
  echo "PostgreSQL is not installed (run scripts/install-deps.sh --test)" >&2
  exit 1
fi
conf=/etc/postgresql/$version/main
# A fresh Debian cluster asks for passwords on TCP; the tests connect as postgres without one.
if ! grep -qE '^host\s+all\s+all\s+127\.0\.0\.1/32\s+trust' "$conf/pg_hba.conf"; then
  sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$conf/pg_hba.conf"
fi
pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
for _ in $(seq 1 50); do ready && exit 0; sleep 0.2; done
echo "PostgreSQL did not come up on 127.0.0.1:5432" >&2
exit 1
