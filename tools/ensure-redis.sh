#!/bin/sh
# Makes sure redis-server (Redis 7, Debian's package) is installed: the Redis tests start their
# own instances and never skip. As root on Debian/Ubuntu it installs the package; otherwise it
# stops, naming the package to install.
set -eu
if command -v redis-server >/dev/null 2>&1; then
	exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "redis-server is missing: installing Debian's redis-server package"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server
	# The package starts a system service; the tests start their own instances.
	if command -v service >/dev/null 2>&1; then service redis-server stop >/dev/null 2>&1 || true; fi
	exit 0
fi
echo "redis-server is missing; the tests need it. Install it with: sudo apt-get install redis-server" >&2
exit 1
