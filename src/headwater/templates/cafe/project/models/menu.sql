/* headwater
materialized: view
description: >
  Every distinct basket item text of the batch, parsed once: "<Size>
  <Product>[ - <Variant>] - <Price>", the price after the LAST " - ". Product
  names may contain " - "; the first part is the product, the rest its variant.
  Sizes are Regular, Large or none. A menu has a few hundred item texts where a
  batch sells millions of items, so `orders` looks each item up here instead of
  parsing it.
*/
with kinds as (
    select distinct unnest(string_split(coalesce(_triples_text, basket), case when _triples then '|' else ',' end)) as item
    from order_lines
),
sized as (
    select
        item, trim(item) as text,
        case when starts_with(trim(item), 'Regular ') then 'Regular'
             when starts_with(trim(item), 'Large ') then 'Large' end as size,
        case when starts_with(trim(item), 'Regular ') then substr(trim(item), 9)
             when starts_with(trim(item), 'Large ') then substr(trim(item), 7)
             else trim(item) end as rest
    from kinds
),
named as (
    select
        item, text, size,
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
        has_price and name <> '' and price is not null as _item_ok,
        text = '' as _blank  -- Format B leaves an empty part after its last triple
    from named
)
select
    item,
    ('0x' || substr(md5(concat_ws('|', product_name, coalesce(variant, ''), coalesce(size, ''))), 1, 15))::bigint as product_id,
    product_name, variant, size, price, _item_ok, _blank
from parsed
