#!/bin/bash
# The read replica: on first start, a base backup of the primary with standby settings (-R) and its own
# replication slot (-C -S), so the primary keeps the WAL it has not received yet; then a hot standby, read-only.
set -euo pipefail
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    until pg_isready -h "$PRIMARY_HOST" -U replicator; do echo "waiting for $PRIMARY_HOST"; sleep 2; done
    rm -rf "${PGDATA:?}"/*
    PGPASSWORD="$REPLICATION_PASSWORD" pg_basebackup -h "$PRIMARY_HOST" -U replicator -D "$PGDATA" \
        -R -X stream -C -S "${REPLICATION_SLOT:-replica1}" --checkpoint=fast
    chmod 0700 "$PGDATA"
fi
exec postgres -c hot_standby=on -c hot_standby_feedback=on
