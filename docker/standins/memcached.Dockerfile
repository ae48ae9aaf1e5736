# Stand-in for memcached:<line>: Debian's memcached as the non-root memcache user.
ARG BASE
FROM ${BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends memcached \
 && rm -rf /var/lib/apt/lists/*
COPY entrypoints/memcached.sh /usr/local/bin/docker-entrypoint.sh
USER memcache
EXPOSE 11211
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["memcached"]
