/* headwater
materialized: incremental
strategy: append
publish: true
description: >
  One row per support ticket (per copy, when cleaning_rules keeps duplicate
  tickets as the course did), typed: created_at and resolved_at are
  timestamps, num_interactions an integer (NULL where the source had the
  -999999 sentinel and the rule keeps the ticket). resolution_minutes is set
  for resolved tickets only; is_open is true for open and escalated tickets.
checks:
  # ticket_id is unique with headwater's default rules; the course's rules
  # keep duplicate tickets, which this check then counts.
  - unique: ticket_id
    severity: warn
*/
select
    ticket_id,
    created_at,
    resolved_at,
    agent,
    priority,
    num_interactions,
    issue_category,
    channel,
    status,
    resolution_minutes,
    is_open,
    _file
from ticket_rows
