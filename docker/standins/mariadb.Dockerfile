# Stand-in for mariadb:<line>: Debian's MariaDB, initialised by the entrypoint from MARIADB_* on a
# fresh /var/lib/mysql, with the official image's healthcheck.sh flags that compose uses.
ARG BASE
FROM ${BASE}
# The package initialises a data directory of its own: removed, so a new volume starts empty.
RUN apt-get update \
 && apt-get install -y --no-install-recommends mariadb-server \
 && rm -rf /var/lib/apt/lists/* \
 && rm -rf /var/lib/mysql && mkdir -p /var/lib/mysql /run/mysqld \
 && chown mysql:mysql /var/lib/mysql /run/mysqld \
 && printf '[mariadbd]\nbind-address = 0.0.0.0\nskip-name-resolve\n' > /etc/mysql/mariadb.conf.d/90-standin.cnf
COPY entrypoints/mariadb.sh /usr/local/bin/docker-entrypoint.sh
COPY entrypoints/mariadb-healthcheck.sh /usr/local/bin/healthcheck.sh
VOLUME /var/lib/mysql
EXPOSE 3306
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["mariadbd"]
