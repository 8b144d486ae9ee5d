/* headwater
materialized: view
description: >
  The batch's support_tickets rows, typed and cleaned by the switches of
  cleaning_rules. Every rule is a flag column (_...) and a check named after
  it: a row a rule removes fails a quarantine check (counted under the rule in
  the run summary, kept in the quarantine zone); a row a rule changes or keeps
  despite a defect fails a warn check (counted, kept).
checks:
  # A switch of cleaning_rules with a value it does not know stops the model.
  - expression: "_switches_known"
    name: cleaning_rules_known
    message: "'a switch of models/cleaning_rules.sql has a value it does not know'"
  # --- rows removed --------------------------------------------------------
  - expression: "not _drop_duplicate"
    name: duplicate_ticket
    severity: quarantine
    message: "'exact copy of an earlier row of ticket ' || coalesce(ticket_id, 'NULL')"
  - expression: "not _drop_sentinel"
    name: interactions_sentinel
    severity: quarantine
    message: "'num_interactions is the sentinel -999999'"
  - not_null: ticket_id
    name: ticket_id_present
    severity: quarantine
  - not_null: created_at
    name: created_at_parses
    severity: quarantine
    message: "'created_at ' || coalesce('''' || _created_text || '''', 'NULL') || ' is not YYYY-MM-DD HH:MM'"
  # --- rows kept, counted ---------------------------------------------------
  - expression: "not _null_sentinel"
    name: interactions_sentinel_set_null
    severity: warn
  - expression: "not _kept_duplicate"
    name: duplicate_ticket_kept
    severity: warn
  - expression: "not _priority_typo"
    name: priority_typo_mapped
    severity: warn
  - expression: "not (status = 'Escalated' and resolved_at is not null)"
    name: escalated_with_resolved_at
    severity: warn
  - accepted_values: {column: priority, values: [Low, Medium, High]}
    severity: warn
  - accepted_values: {column: status, values: [Resolved, Open, Escalated]}
    severity: warn
*/
with raw as (
    select
        t.*,
        -- Exact copies: every column equal. The first copy is number 1.
        row_number() over (
            partition by ticket_id, created_at, resolved_at, agent, priority, num_interactions,
                         "IssUeCat", channel, status, agent_feedback
            order by _file
        ) as _copy_number,
        trim(num_interactions) = '-999999' as _is_sentinel
    from db_support_tickets t
),
flagged as (
    select
        raw.*,
        r.*,                                 -- the switches, one column each
        -- Rule "duplicate tickets": the second and later copies go, or stay.
        _copy_number > 1 and r.duplicate_tickets = 'drop' as _drop_duplicate
    from raw cross join cleaning_rules r
),
decided as (
    select
        flagged.*,
        -- Rule "-999999 interactions" (on the rows the duplicate rule keeps):
        -- the ticket goes, or stays with num_interactions NULL.
        coalesce(_is_sentinel, false) and not _drop_duplicate
            and interactions_sentinel = 'drop_row' as _drop_sentinel,
        coalesce(_is_sentinel, false) and not _drop_duplicate
            and interactions_sentinel <> 'drop_row' as _null_sentinel
    from flagged
)
select
    ticket_id,
    try_strptime(created_at, '%Y-%m-%d %H:%M') as created_at,
    try_strptime(resolved_at, '%Y-%m-%d %H:%M') as resolved_at,
    agent,
    -- Rule "priority typos": Medum, Lw, Hgh are Medium, Low, High.
    case when typos = 'map' then
        case priority when 'Medum' then 'Medium' when 'Lw' then 'Low' when 'Hgh' then 'High'
                      else priority end
    else priority end as priority,
    case when _is_sentinel then null else try_cast(num_interactions as integer) end
        as num_interactions,
    "IssUeCat" as issue_category,          -- the source's odd casing, renamed
    channel,
    status,
    -- Minutes to resolution, for resolved tickets only: escalated tickets
    -- sometimes carry a resolved_at, which is not a resolution.
    case when status = 'Resolved' then
        date_diff('minute', try_strptime(created_at, '%Y-%m-%d %H:%M'),
                            try_strptime(resolved_at, '%Y-%m-%d %H:%M'))
    end as resolution_minutes,
    status <> 'Resolved' as is_open,        -- open or escalated: not resolved yet
    -- agent_feedback (always empty) is not carried on.
    created_at as _created_text,
    _copy_number > 1 and not _drop_duplicate and not _drop_sentinel as _kept_duplicate,
    _drop_duplicate,
    _drop_sentinel,
    _null_sentinel,
    typos = 'map' and priority in ('Medum', 'Lw', 'Hgh') as _priority_typo,
    coalesce(interactions_sentinel in ('set_null', 'drop_row')
             and duplicate_tickets in ('drop', 'keep') and typos in ('map', 'keep'), false)
        as _switches_known,
    _file
from decided
