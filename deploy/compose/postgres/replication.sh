#!/usr/bin/env bash
# The cluster profile's primary: run once by the postgres image's own entrypoint, at the
# first start of an empty data directory (/docker-entrypoint-initdb.d, after roles.sql,
# on the temporary socket-only server, as POSTGRES_USER). It prepares the streaming
# standby (docker-compose.cluster.yml, postgres-standby):
#
#   - a role that may replicate, and a pg_hba.conf line that lets it (the image's own line,
#     "host all all all", does not match replication connections);
#   - synchronous_standby_names = '*' with synchronous_commit left at its default, on: a
#     commit is acknowledged once the standby has flushed it, so a failover to the
#     standby loses no accepted order (docs/failover.md). Until the standby streams,
#     commits wait; the services start after it is healthy.
#   - wal_keep_size, so a standby that was away for a while catches up from the primary's
#     WAL instead of needing a new base backup.
set -Eeuo pipefail
: "${REPLICATION_PASSWORD:?set REPLICATION_PASSWORD (deploy/compose/.env)}"
psql -v ON_ERROR_STOP=1 --no-psqlrc -q --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
	-v password="$REPLICATION_PASSWORD" <<'SQL'
SELECT 'CREATE ROLE replicator' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'replicator') \gexec
ALTER ROLE replicator WITH REPLICATION LOGIN PASSWORD :'password';
ALTER SYSTEM SET synchronous_standby_names = '*';
ALTER SYSTEM SET wal_keep_size = '256MB';
SQL
printf '\n# the streaming standby (replication.sh)\nhost replication replicator all scram-sha-256\n' >> "$PGDATA/pg_hba.conf"
