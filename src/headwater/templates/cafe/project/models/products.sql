/* headwater
materialized: incremental
strategy: merge
unique_key: product_id
latest_by: _last_seen_at
publish: true
description: >
  Every (product, variant, size) sold, with the latest price seen. Product
  names are case-sensitive: "Hot Chocolate" and "Hot chocolate" differ.
checks:
  - unique: product_id
  - not_null: [product_name, price]
*/
select
    i.product_id,
    i.product_name,
    i.variant,
    i.size,
    arg_max(i.price, i.transacted_at)::decimal(10, 2) as price,
    max(i.transacted_at) as _last_seen_at
from order_items i
semi join orders o on i.transaction_id = o.transaction_id
group by i.product_id, i.product_name, i.variant, i.size
