/* headwater
materialized: view
description: >
  One row per transaction line, parsed and checked. Rows that cannot be
  understood are quarantined with file, line and reason; the rest load.
checks:
  - not_null: transacted_at
    severity: quarantine
    name: timestamp_parses
    message: "'timestamp ' || coalesce('''' || ts || '''', 'NULL') || ' is not DD/MM/YYYY HH:MM or YYYY-MM-DD HH:MM:SS'"
  - expression: "branch_name <> ''"
    severity: quarantine
    name: branch_present
    message: "'branch is empty'"
  - not_null: total
    severity: quarantine
    name: total_is_money
    message: "'total ' || coalesce('''' || total_text || '''', 'NULL') || ' is not an amount like 5.2 or 4.00'"
  - accepted_values: {column: payment_method, values: [CARD, CASH]}
    severity: quarantine
    name: payment_known
  - expression: "_basket_ok"
    severity: quarantine
    name: basket_parses
    message: "coalesce(_bad_items, 1) || ' of ' || coalesce(_item_count, 1) || ' basket items are not <size> <product> - <price>'"
*/
with baskets as (
    select
        transaction_id,
        bool_and(_item_ok) as _basket_ok,
        sum(price) as _items_total,
        count(*) as _item_count,
        count(*) filter (where not _item_ok) as _bad_items
    from order_items
    group by transaction_id
)
select
    l.transaction_id,
    l.branch_id,
    l.branch_name,
    l.transacted_at,
    case when regexp_full_match(l.total_text, '[0-9]+(\.[0-9]{1,2})?|\.[0-9]{1,2}')
         then l.total_text::decimal(10, 2) end as total,
    l.payment_method,
    l.customer_key,
    l.ts,
    l.total_text,
    coalesce(b._basket_ok, false) as _basket_ok,
    b._items_total,
    b._item_count,
    b._bad_items,
    l._batch, l._file, l._line
from order_lines l
left join baskets b using (transaction_id)
