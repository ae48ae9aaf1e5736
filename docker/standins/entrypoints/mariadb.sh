#!/bin/sh
# As the official image: on an empty /var/lib/mysql, install the system tables, then, through a
# temporary server with networking off, set the root password (random with
# MARIADB_RANDOM_ROOT_PASSWORD), create MARIADB_DATABASE and MARIADB_USER, and the healthcheck
# user healthcheck.sh logs in as; then the real server, as the mysql user.
set -eu
datadir=/var/lib/mysql
socket=/run/mysqld/mysqld.sock
case "$1" in -*) set -- mariadbd "$@" ;; esac
if [ "$1" = mariadbd ] && [ "$(id -u)" = 0 ]; then
    mkdir -p "$datadir" /run/mysqld
    chown -R mysql:mysql "$datadir" /run/mysqld
    exec setpriv --reuid=mysql --regid=mysql --init-groups "$0" "$@"
fi
random() { tr -dc 'A-Za-z0-9' </dev/urandom | head -c 32; }
if [ "$1" = mariadbd ] && [ ! -d "$datadir/mysql" ]; then
    mariadb-install-db --datadir="$datadir" --skip-test-db --auth-root-authentication-method=normal \
        --rpm --cross-bootstrap >/dev/null
    mariadbd --skip-networking --socket="$socket" --datadir="$datadir" &
    pid=$!
    i=0
    until mariadb-admin --socket="$socket" -uroot ping >/dev/null 2>&1; do
        i=$((i + 1))
        [ "$i" -lt 60 ] || { echo "MariaDB init: the temporary server did not start" >&2; exit 1; }
        sleep 1
    done
    if [ -n "${MARIADB_ROOT_PASSWORD:-}" ]; then
        root_password=$MARIADB_ROOT_PASSWORD
    else
        # MARIADB_RANDOM_ROOT_PASSWORD, and the default: nobody needs root here. (Unlike the
        # official image, the stand-in never prints it.)
        root_password=$(random)
    fi
    health_password=$(random)
    {
        echo "ALTER USER 'root'@'localhost' IDENTIFIED BY '$root_password';"
        for host in localhost 127.0.0.1 ::1; do
            echo "CREATE USER 'healthcheck'@'$host' IDENTIFIED BY '$health_password';"
        done
        if [ -n "${MARIADB_DATABASE:-}" ]; then
            echo "CREATE DATABASE IF NOT EXISTS \`$MARIADB_DATABASE\`;"
        fi
        if [ -n "${MARIADB_USER:-}" ]; then
            echo "CREATE USER '$MARIADB_USER'@'%' IDENTIFIED BY '${MARIADB_PASSWORD:?MARIADB_PASSWORD must be set with MARIADB_USER}';"
            [ -n "${MARIADB_DATABASE:-}" ] && echo "GRANT ALL ON \`$MARIADB_DATABASE\`.* TO '$MARIADB_USER'@'%';"
        fi
    } | mariadb --socket="$socket" -uroot
    printf '[mariadb-client]\nport=3306\nsocket=%s\nuser=healthcheck\npassword=%s\n' "$socket" "$health_password" \
        >"$datadir/.my-healthcheck.cnf"
    chmod 600 "$datadir/.my-healthcheck.cnf"
    for f in /docker-entrypoint-initdb.d/*; do
        case "$f" in
            *.sh) echo "running $f"; . "$f" ;;
            *.sql) echo "running $f"; mariadb --socket="$socket" -uroot -p"$root_password" "${MARIADB_DATABASE:-}" <"$f" ;;
        esac
    done
    mariadb-admin --socket="$socket" -uroot -p"$root_password" shutdown
    wait "$pid" || true
    echo "MariaDB init process done. Ready for start up."
fi
exec "$@"
