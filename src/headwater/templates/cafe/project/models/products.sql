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
with sold as (
    select product_id, arg_max(price, transacted_at) as price, max(transacted_at) as _last_seen_at
    from (
        select unnest(_product_ids) as product_id, unnest(_prices) as price, transacted_at
        from orders  -- quarantined transactions are not there
    )
    group by product_id
),
names as (
    select distinct product_id, product_name, variant, size from menu
)
select n.product_id, n.product_name, n.variant, n.size, s.price::decimal(10, 2) as price, s._last_seen_at
from sold s
join names n using (product_id)
