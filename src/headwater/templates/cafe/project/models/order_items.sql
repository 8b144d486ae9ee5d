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
        unnest(string_split(coalesce(_triples_text, basket), case when _triples then '|' else ',' end)) as item
    from order_lines
),
kinds as (
    -- Few distinct texts: trimming and parsing happen here, not once per item sold.
    select item, _triples, trim(item) as text from (select distinct item, _triples from parts)
),
sized as (
    select
        item, _triples, text,
        case when starts_with(text, 'Regular ') then 'Regular'
             when starts_with(text, 'Large ') then 'Large' end as size,
        case when starts_with(text, 'Regular ') then substr(text, 9)
             when starts_with(text, 'Large ') then substr(text, 7)
             else text end as rest
    from kinds
),
named as (
    select
        item, _triples, text, size,
        left(rest, length(rest) - length(split_part(rest, ' - ', -1)) - 3) as name,
        try_cast(split_part(rest, ' - ', -1) as decimal(10, 2)) as price,
        contains(rest, ' - ') as has_price
    from sized
),
menu as (
    select
        item, _triples, size, price,
        split_part(name, ' - ', 1) as product_name,
        nullif(substr(name, length(split_part(name, ' - ', 1)) + 4), '') as variant,
        has_price and name <> '' and price is not null as _item_ok
    from named
    where text <> '' or not _triples  -- Format B leaves an empty part after its last triple
),
products as (
    select
        *,
        ('0x' || substr(md5(concat_ws('|', product_name, coalesce(variant, ''), coalesce(size, ''))), 1, 15))::bigint as product_id
    from menu
)
select p.transaction_id, m.product_id, m.product_name, m.variant, m.size, m.price, p.transacted_at, m._item_ok
from parts p
join products m using (item, _triples)
