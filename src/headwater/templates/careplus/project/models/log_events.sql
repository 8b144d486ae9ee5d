/* headwater
materialized: view
description: >
  The batch's log records, typed and cleaned by the switches of
  cleaning_rules. As in ticket_rows, a row a rule removes fails a quarantine
  check named after the rule; a row a rule changes fails a warn check.
checks:
  # A switch of cleaning_rules with a value it does not know stops the model.
  - expression: "_switches_known"
    name: cleaning_rules_known
    message: "'a switch of models/cleaning_rules.sql has a value it does not know'"
  # --- rows removed --------------------------------------------------------
  - expression: "not _drop_duplicate"
    name: duplicate_log_record
    severity: quarantine
    message: "'exact copy of an earlier record of this batch'"
  - expression: "not _drop_negative"
    name: negative_response_time
    severity: quarantine
    message: "'ResponseTime ' || _response_time_text || ' is negative'"
  # --- rows kept, counted ---------------------------------------------------
  - expression: "not _null_negative"
    name: negative_response_time_set_null
    severity: warn
  - expression: "not _level_typo"
    name: level_typo_mapped
    severity: warn
  - accepted_values: {column: log_level, values: [INFO, DEBUG, WARNING, ERROR]}
    severity: warn
  - expression: "is_error = (log_level = 'ERROR')"
    name: error_flag_matches_level
    severity: warn
*/
with keyed as (
    select
        l.*,
        -- A record's content: every field the parser found (not its file or line).
        md5(to_json([
            logged_at::varchar, level, component, ticket_id, session_id, ip, response_time,
            cpu, event_type, error::varchar, user_agent, message, debug, trace_id
        ])) as _content_key
    from support_log_files l
),
flagged as (
    select
        keyed.*,
        r.*,                                 -- the switches, one column each
        row_number() over (partition by _content_key order by _file, _line) as _copy_number
    from keyed cross join cleaning_rules r
),
decided as (
    select
        flagged.*,
        -- Rule "duplicate log records": the second and later copies go, or stay.
        _copy_number > 1 and duplicate_log_records = 'drop' as _drop_duplicate,
        coalesce(response_time_ms < 0, false) as _negative
    from flagged
)
select
    logged_at,
    -- Rule "level typos": INF0, DEBG, warnING, EROR are INFO, DEBUG, WARNING, ERROR.
    case when typos = 'map' then
        case level when 'INF0' then 'INFO' when 'DEBG' then 'DEBUG' when 'warnING' then 'WARNING'
                   when 'EROR' then 'ERROR' else level end
    else level end as log_level,
    component,
    ticket_id,
    session_id,
    ip,
    -- Rule "negative response time" (on the rows the duplicate rule keeps):
    -- the event goes, or stays with response_time_ms NULL.
    case when _negative then null else response_time_ms end as response_time_ms,
    cpu_pct,
    error as is_error,
    user_agent,
    trim(message) as message,
    -- Not carried on: EventType (always generic_event), Debug (always the same
    -- text), TraceID (always None).
    response_time as _response_time_text,
    _negative and not _drop_duplicate and negative_response_time = 'drop_row' as _drop_negative,
    _negative and not _drop_duplicate and negative_response_time <> 'drop_row' as _null_negative,
    _drop_duplicate,
    typos = 'map' and level in ('INF0', 'DEBG', 'warnING', 'EROR') as _level_typo,
    -- What makes two records the same one, across batches too (support_logs):
    -- the content, or (when duplicates are kept) the place in a file.
    case when duplicate_log_records = 'drop' then _content_key
         else md5(_content_key || _file_hash || _line::varchar) end as _record_key,
    coalesce(negative_response_time in ('set_null', 'drop_row')
             and duplicate_log_records in ('drop', 'keep') and typos in ('map', 'keep'), false)
        as _switches_known,
    _file,
    _line
from decided
