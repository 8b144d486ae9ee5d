/* headwater
materialized: table
publish: true
description: >
  Per ticket, what the system logs say: events, errors, warnings, average and
  maximum response time, average CPU, first and last event. Rebuilt from all
  of support_logs on each run.
checks:
  - unique: ticket_id
  - not_null: ticket_id
*/
select
    ticket_id,
    count(*) as events,
    count(*) filter (where is_error) as errors,
    count(*) filter (where log_level = 'WARNING') as warnings,
    round(avg(response_time_ms), 1) as avg_response_time_ms,   -- NULL response times left out
    max(response_time_ms) as max_response_time_ms,
    round(avg(cpu_pct), 2) as avg_cpu_pct,
    min(logged_at) as first_event_at,
    max(logged_at) as last_event_at
from support_logs
where ticket_id is not null
group by ticket_id
