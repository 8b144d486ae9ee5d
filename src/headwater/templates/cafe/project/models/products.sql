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
with items as (
    select transacted_at, unnest(items) as item
    from orders
)
select
    ('0x' || substr(md5(concat_ws('|', item.product_name, coalesce(item.variant, ''), coalesce(item.size, ''))), 1, 15))::bigint as product_id,
    item.product_name as product_name,
    item.variant as variant,
    item.size as size,
    arg_max(item.price, transacted_at)::decimal(10, 2) as price,
    max(transacted_at) as _last_seen_at
from items
group by all
