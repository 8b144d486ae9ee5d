/* headwater
materialized: incremental
strategy: append
unique_key: [transaction_id, product_id]
publish: true
description: >
  What each sale held; a repeated item becomes a quantity. Only the baskets
  that repeat a product (about one in five) are grouped; the others give one
  row per item as they are. Quarantined transactions are not in `orders`, so
  they have no items.
checks:
  - unique: [transaction_id, product_id]
  - range: {column: quantity, min: 1}
# Every transaction_id comes from `orders`, like `transactions` itself, so a
# relationships check against `transactions` would hold by construction; it
# would also read all of `transactions` for every batch.
*/
-- Baskets where every product is different: one row per item, quantity 1.
select transaction_id, unnest(_product_ids) as product_id, 1 as quantity,
       unnest(_prices)::decimal(10, 2) as unit_price, unnest(_prices)::decimal(10, 2) as line_total
from orders
where not _repeats
union all
-- Baskets that repeat a product: grouped.
select transaction_id, product_id, count(*)::integer as quantity,
       round(sum(price) / count(*), 2)::decimal(10, 2) as unit_price,
       sum(price)::decimal(10, 2) as line_total
from (
    select transaction_id, unnest(_product_ids) as product_id, unnest(_prices) as price
    from orders
    where _repeats
)
group by transaction_id, product_id
