/* headwater
materialized: incremental
strategy: append
publish: true
description: >
  One row per system log event, typed and cleaned (see log_events and
  cleaning_rules). response_time_ms is NULL where the source had a negative
  response time and the rule keeps the event.
checks:
  # A record already loaded by an earlier batch (the same day's records
  # delivered again in another file) is a duplicate too: quarantined as
  # "duplicate_log_record across runs".
  - unique: _record_key
    name: duplicate_log_record
    severity: quarantine
    message: "'exact copy of a record loaded earlier'"
*/
select
    logged_at,
    log_level,
    component,
    ticket_id,
    session_id,
    ip,
    response_time_ms,
    cpu_pct,
    is_error,
    user_agent,
    message,
    _record_key,
    _file,
    _line
from log_events
