/* headwater
materialized: incremental
strategy: append
unique_key: [transaction_id, product_id]
publish: true
description: What each sale held; a repeated item becomes a quantity.
checks:
  - unique: [transaction_id, product_id]
  - range: {column: quantity, min: 1}
# Every transaction_id comes from `orders`, like `transactions` itself, so a
# relationships check against `transactions` would hold by construction; it
# would also read all of `transactions` for every batch.
*/
select
    i.transaction_id,
    i.product_id,
    count(*)::integer as quantity,
    round(sum(i.price) / count(*), 2)::decimal(10, 2) as unit_price,
    sum(i.price)::decimal(10, 2) as line_total
from order_items i
semi join orders o on i.transaction_id = o.transaction_id  -- quarantined transactions have no items
group by i.transaction_id, i.product_id
