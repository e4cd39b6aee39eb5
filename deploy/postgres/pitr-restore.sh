#!/bin/bash
# Point-in-time recovery of the primary from the WAL-G archive (README: Backups and recovery). Run with the postgres
# service stopped, in its container (same volumes and WALG_* settings):
#
#   docker compose run --rm --user postgres --entrypoint pitr-restore.sh postgres '2026-12-01 14:02:09+00' [BACKUP]
#
# Refuses a non-empty data directory unless DISCARD_CURRENT_DATA=yes (copy the volume aside first if you may need
# it: README: Backups and recovery), fetches the base backup (LATEST by default: any base backup older than the
# target), and leaves recovery settings that replay the archived WAL up to the target time and then promote. Start
# the postgres service afterwards.
set -euo pipefail
target="${1:?usage: pitr-restore.sh 'YYYY-MM-DD HH:MM:SS+00' [base backup name, default LATEST]}"
backup="${2:-LATEST}"
if [ -n "$(ls -A "$PGDATA")" ]; then
    if [ "${DISCARD_CURRENT_DATA:-}" != "yes" ]; then
        echo "$PGDATA is not empty: copy the volume aside, then run again with -e DISCARD_CURRENT_DATA=yes" >&2
        exit 2
    fi
    find "$PGDATA" -mindepth 1 -delete
fi
wal-g backup-fetch "$PGDATA" "$backup"
touch "$PGDATA/recovery.signal"
cat >> "$PGDATA/postgresql.auto.conf" <<CONF
restore_command = 'wal-g wal-fetch %f %p'
recovery_target_time = '$target'
recovery_target_action = 'promote'
CONF
chmod 0700 "$PGDATA"
echo "ready: start the postgres service; it replays WAL up to $target, then opens read-write"
