"""The reference-data cache (README: Operations guide, Cache): what the API and the activities read on every request
or step (the signed-in user, loan and savings products, approval rules), kept in process for CACHE_TTL_SECONDS and
dropped as soon as its row changes, in every API and worker process.

- `store`: the in-process TTL cache; it serves entries only while its process listens for changes.
- `listener`: LISTEN on CHANNEL, on a connection of its own, reconnecting; the triggers of migration 0016 NOTIFY
  it in the writing transaction, so an invalidation follows the commit.
- `commit_hook`: the writing process drops its own entries at commit, without waiting for its notification.
- `reference`: the cached reads, each giving a new detached copy.
- `metrics`: hits, misses and bypasses for Prometheus.
"""

# The channel the triggers notify (payload "<table>:<id>", or "<table>" for a TRUNCATE) and the tables they watch.
CHANNEL = "backoffice_cache"
TABLES = frozenset({"users", "loan_products", "savings_products", "approval_rules"})
