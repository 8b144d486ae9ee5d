/* headwater
materialized: view
description: >
  One row per item listed in a basket: "<Size> <Product>[ - <Variant>] - <Price>",
  the price after the LAST " - ". Product names may contain " - "; the first
  part is the product, the rest its variant. Sizes are Regular, Large or none.
  A menu has few distinct items, so each distinct item text is parsed once and
  joined back to the baskets.
*/
with parts as (
    select
        transaction_id, transacted_at, _triples,
        trim(unnest(string_split(coalesce(_triples_text, basket), case when _triples then '|' else ',' end))) as item
    from order_lines
),
listed as (
    select transaction_id, transacted_at, item
    from parts
    where item <> '' or not _triples  -- Format B leaves an empty part after its last triple
),
kinds as (
    select distinct item from listed
),
sized as (
    select
        item,
        case when starts_with(item, 'Regular ') then 'Regular'
             when starts_with(item, 'Large ') then 'Large' end as size,
        case when starts_with(item, 'Regular ') then substr(item, 9)
             when starts_with(item, 'Large ') then substr(item, 7)
             else item end as rest
    from kinds
),
named as (
    select
        item, size,
        left(rest, length(rest) - length(split_part(rest, ' - ', -1)) - 3) as name,
        try_cast(split_part(rest, ' - ', -1) as decimal(10, 2)) as price,
        contains(rest, ' - ') as has_price
    from sized
),
parsed as (
    select
        item, size, price,
        split_part(name, ' - ', 1) as product_name,
        nullif(substr(name, length(split_part(name, ' - ', 1)) + 4), '') as variant,
        has_price and name <> '' and price is not null as _item_ok
    from named
),
menu as (
    select
        *,
        ('0x' || substr(md5(concat_ws('|', product_name, coalesce(variant, ''), coalesce(size, ''))), 1, 15))::bigint as product_id
    from parsed
)
select l.transaction_id, m.product_id, m.product_name, m.variant, m.size, m.price, l.transacted_at, m._item_ok
from listed l
join menu m using (item)
