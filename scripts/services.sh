#!/usr/bin/env bash
# Start the local servers the test suite may use, if they are down.
# PostgreSQL and MariaDB run on every development and CI machine; S3 (moto)
# and SMTP (aiosmtpd) are started by pytest fixtures, not here.
set -u
if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 -p 5432; then
  echo "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || echo "warning: could not start PostgreSQL"
fi
if command -v mariadb-admin >/dev/null 2>&1 && ! mariadb-admin -h 127.0.0.1 -u root ping >/dev/null 2>&1; then
  echo "starting MariaDB"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || echo "warning: could not start MariaDB"
fi
# Browser tests drive Debian's Chromium with Playwright (no browser download).
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "installing Chromium (Debian package) for the browser tests"
  apt-get install -y -q chromium >/dev/null || echo "warning: could not install chromium"
fi
exit 0
