#!/bin/bash
# A full base backup into the WAL-G archive every BASEBACKUP_INTERVAL seconds (a day by default), keeping the
# last BASEBACKUP_RETAIN full backups and the WAL needed to replay from the oldest of them.
set -euo pipefail
until pg_isready -h "$PGHOST" -U "$PGUSER"; do sleep 2; done
while true; do
    wal-g backup-push "$PGDATA"
    wal-g delete retain FULL "${BASEBACKUP_RETAIN:-7}" --confirm
    sleep "${BASEBACKUP_INTERVAL:-86400}"
done
