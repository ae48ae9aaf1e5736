#!/bin/sh
# The two checks of the official image's healthcheck.sh that docker-compose.yml uses:
#   --connect             the server accepts a TCP connection (false while initialising: the
#                         temporary server has networking off)
#   --innodb_initialized  InnoDB is up and serving
set -eu
cnf=/var/lib/mysql/.my-healthcheck.cnf
[ -r "$cnf" ] || { echo "not initialised yet" >&2; exit 1; }
for check in "$@"; do
    case "$check" in
        --connect)
            mariadb --defaults-extra-file="$cnf" --protocol=tcp -h127.0.0.1 -e 'SELECT 1' >/dev/null ;;
        --innodb_initialized)
            answer=$(mariadb --defaults-extra-file="$cnf" -sN -e \
                "SELECT 1 FROM information_schema.ENGINES WHERE engine = 'InnoDB' AND support IN ('YES', 'DEFAULT', 'ENABLED')")
            [ "$answer" = 1 ] ;;
        *) echo "healthcheck.sh: unknown check $check" >&2; exit 2 ;;
    esac
done
