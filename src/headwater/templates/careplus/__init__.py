"""The `careplus` template: support tickets in MySQL/MariaDB (or PostgreSQL) plus daily
multi-line system log files, cleaned by switchable rules into three warehouse tables.

- `tickets`: the `support_tickets` table's rows, generated (any size, the course's
  defects planted) or read from the course's dump (a mysqldump `.sql` or a CSV export);
- `source_db`: creates that table and bulk-loads rows into it;
- `logs`: writes daily `support_logs_YYYY-MM-DD.log` files with the course's defects.
"""
