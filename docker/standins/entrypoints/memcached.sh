#!/bin/sh
set -e
case "$1" in -*) set -- memcached "$@" ;; esac
exec "$@"
