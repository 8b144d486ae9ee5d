/* headwater
materialized: view
description: >
  One row per item listed in a basket: "<Size> <Product>[ - <Variant>] - <Price>",
  the price after the LAST " - ". Product names may contain " - "; the first
  part is the product, the rest its variant. Sizes are Regular, Large or none.
*/
with parts as (
    select transaction_id, transacted_at, _triples, trim(unnest(_items)) as item
    from order_lines
),
sized as (
    select
        transaction_id, transacted_at, item,
        case when starts_with(item, 'Regular ') then 'Regular'
             when starts_with(item, 'Large ') then 'Large' end as size,
        case when starts_with(item, 'Regular ') then substr(item, 9)
             when starts_with(item, 'Large ') then substr(item, 7)
             else item end as rest
    from parts
    where item <> '' or not _triples  -- Format B leaves an empty part after its last triple
),
parsed as (
    select
        transaction_id, transacted_at, item, size, rest,
        split_part(rest, ' - ', -1) as price_text
    from sized
),
named as (
    select
        transaction_id, transacted_at, size, price_text,
        left(rest, length(rest) - length(price_text) - 3) as name,
        try_cast(price_text as decimal(10, 2)) as price,
        contains(rest, ' - ') as has_price
    from parsed
),
items as (
    select
        transaction_id, transacted_at, size, price,
        split_part(name, ' - ', 1) as product_name,
        nullif(substr(name, length(split_part(name, ' - ', 1)) + 4), '') as variant,
        has_price and name <> '' and price is not null as _item_ok
    from named
),
product_ids as (
    select
        product_name, variant, size,
        ('0x' || substr(md5(concat_ws('|', product_name, coalesce(variant, ''), coalesce(size, ''))), 1, 15))::bigint as product_id
    from (select distinct product_name, variant, size from items)
)
select i.transaction_id, p.product_id, i.product_name, i.variant, i.size, i.price, i.transacted_at, i._item_ok
from items i
join product_ids p
  on i.product_name = p.product_name
 and i.variant is not distinct from p.variant
 and i.size is not distinct from p.size
