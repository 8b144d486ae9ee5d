/* headwater
materialized: incremental
strategy: append
unique_key: [transaction_id, product_id]
publish: true
description: What each sale held; a repeated item becomes a quantity.
checks:
  - unique: [transaction_id, product_id]
  - range: {column: quantity, min: 1}
  - relationships: {column: transaction_id, to: transactions, field: transaction_id}
*/
with items as (
    select transaction_id, _file, _line, unnest(items) as item
    from orders
)
select
    transaction_id,
    ('0x' || substr(md5(concat_ws('|', item.product_name, coalesce(item.variant, ''), coalesce(item.size, ''))), 1, 15))::bigint as product_id,
    count(*)::integer as quantity,
    round(sum(item.price) / count(*), 2)::decimal(10, 2) as unit_price,
    sum(item.price)::decimal(10, 2) as line_total,
    any_value(_file) as _file,
    any_value(_line) as _line
from items
group by all
