#!/bin/sh
# As the official image: options alone mean redis-server; /data belongs to redis; root is dropped;
# protected mode is off unless a configuration file or the option itself says otherwise (the
# container's network is the boundary).
set -e
case "$1" in -* | *.conf) set -- redis-server "$@" ;; esac
if [ "$1" = redis-server ] && [ "$(id -u)" = 0 ]; then
    find . \! -user redis -exec chown redis '{}' +
    exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
fi
if [ "$1" = redis-server ]; then
    case "$2" in
        *.conf) ;;
        *) case " $* " in *" --protected-mode "*) ;; *) set -- "$@" --protected-mode no ;; esac ;;
    esac
fi
exec "$@"
