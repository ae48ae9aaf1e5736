#!/bin/sh
# As the official image: `docker run haproxy -c …` means `haproxy -c …`; HAProxy runs in the
# foreground in master-worker mode.
set -e
case "$1" in -*) set -- haproxy "$@" ;; esac
if [ "$1" = haproxy ]; then
    shift
    set -- haproxy -W -db "$@"
fi
exec "$@"
