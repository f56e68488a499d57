#!/usr/bin/env bash
# The cluster profile's standby: the entrypoint of postgres-standby, in front of the
# postgres image's own (docker-entrypoint.sh). On an empty data directory it makes the
# standby from a base backup of the primary (pg_basebackup, WAL streamed during the copy)
# and marks it a standby (standby.signal, primary_conninfo); the image's entrypoint then
# finds PG_VERSION, skips initdb and its init scripts, and starts postgres, which streams
# from the primary. A data directory that exists already is started as it is.
set -Eeuo pipefail
: "${PRIMARY_HOST:?set PRIMARY_HOST}" "${REPLICATION_PASSWORD:?set REPLICATION_PASSWORD (deploy/compose/.env)}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
	mkdir -p "$PGDATA"
	chown postgres:postgres "$PGDATA"
	chmod 700 "$PGDATA"
	for attempt in $(seq 1 30); do
		if gosu postgres env PGPASSWORD="$REPLICATION_PASSWORD" \
			pg_basebackup -h "$PRIMARY_HOST" -U replicator -D "$PGDATA" -X stream --checkpoint=fast; then
			break
		fi
		[ "$attempt" = 30 ] && { echo "standby.sh: no base backup from $PRIMARY_HOST" >&2; exit 1; }
		rm -rf "${PGDATA:?}"/*
		sleep 2
	done
	gosu postgres touch "$PGDATA/standby.signal"
	printf "primary_conninfo = 'host=%s user=replicator password=%s application_name=postgres-standby'\n" \
		"$PRIMARY_HOST" "$REPLICATION_PASSWORD" | gosu postgres tee -a "$PGDATA/postgresql.auto.conf" > /dev/null
fi
exec docker-entrypoint.sh "$@"
