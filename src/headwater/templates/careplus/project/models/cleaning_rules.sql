/* headwater
materialized: ephemeral
description: >
  The switches of the cleaning rules: one row, one column per rule, read by
  ticket_rows and log_events (where the rules are written out). Each value
  below is headwater's default; the comment says what the course did. Edit a
  value and run again: the rule applies to the batches processed from then on.
*/
select
    -- num_interactions = -999999, a sentinel for "not recorded":
    --   'set_null'  keep the ticket, num_interactions NULL       (headwater default)
    --   'drop_row'  drop the ticket                               (course)
    'set_null' as interactions_sentinel,

    -- a negative ResponseTime (194 of the course's 2,650 records):
    --   'set_null'  keep the event, response_time_ms NULL         (headwater default)
    --   'drop_row'  drop the event                                (course)
    'set_null' as negative_response_time,

    -- exact duplicate rows of support_tickets (64 of the course's 810):
    --   'drop'      keep the first copy only                      (headwater default)
    --   'keep'      keep every copy: 47 repeated ids survive      (course)
    'drop' as duplicate_tickets,

    -- exact duplicate log records (227 of the course's 2,650):
    --   'drop'      keep the first copy only                      (headwater default and course)
    --   'keep'      keep every copy
    'drop' as duplicate_log_records,

    -- level typos INF0, DEBG, warnING, EROR and priority typos Medum, Lw, Hgh:
    --   'map'       to INFO, DEBUG, WARNING, ERROR / Medium, Low, High (headwater default and course)
    --   'keep'      leave them as written
    'map' as typos
