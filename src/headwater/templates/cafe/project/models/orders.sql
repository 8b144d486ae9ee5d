/* headwater
materialized: view
description: >
  One row per transaction line of a branch file, whatever its format:
  A (DD/MM/YYYY HH:MM, sized items), A0 (unsized items with a leading space)
  or B (ISO time, payment before total, basket as size,product,price triples).
  Rows that cannot be understood are quarantined with file, line and reason.
checks:
  - not_null: transacted_at
    severity: quarantine
    name: timestamp_parses
    message: "'timestamp ' || coalesce('''' || ts || '''', 'NULL') || ' is not DD/MM/YYYY HH:MM or YYYY-MM-DD HH:MM:SS'"
  - expression: "branch_name <> ''"
    severity: quarantine
    name: branch_present
    message: "'branch is empty'"
  - not_null: total
    severity: quarantine
    name: total_is_money
    message: "'total ' || coalesce('''' || total_text || '''', 'NULL') || ' is not an amount like 5.2 or 4.00'"
  - accepted_values: {column: payment_method, values: [CARD, CASH]}
    severity: quarantine
    name: payment_known
  - expression: "_basket_ok"
    severity: quarantine
    name: basket_parses
    message: "'basket ' || coalesce('''' || basket || '''', 'NULL') || ' is not a list of <size> <product> - <price> items'"
*/
with fields as (
    select
        _batch, _file, _file_hash, _line, ts, basket,
        trim(branch) as branch_name,
        customer_name as customer_key,  -- already a keyed hash: the source's PII policy
        -- Format B writes the payment before the total.
        upper(total) in ('CARD', 'CASH') as _payment_first,
        case when upper(total) in ('CARD', 'CASH') then payment else total end as total_text,
        upper(case when upper(total) in ('CARD', 'CASH') then total else payment end) as payment_method,
        list_transform(string_split(basket, ','), lambda p: trim(p)) as _parts
    from branch_files
),
parsed as (
    select
        *,
        try_strptime(ts, ['%d/%m/%Y %H:%M', '%Y-%m-%d %H:%M:%S', '%d/%m/%Y %H:%M:%S', '%Y-%m-%d %H:%M']) as transacted_at,
        case when regexp_full_match(total_text, '[0-9]+(\.[0-9]{1,2})?|\.[0-9]{1,2}')
             then total_text::decimal(10, 2) end as total,
        case
            -- Format B: flat size,product,price triples; sizes may be empty.
            when len(_parts) % 3 = 0 and _parts[1] in ('', 'Regular', 'Large')
            then list_transform(range(0, len(_parts) // 3), lambda i: {
                'size': _parts[3 * i + 1], 'name': _parts[3 * i + 2], 'price': _parts[3 * i + 3]})
            -- Formats A and A0: "<Size> <Product>[ - <Variant>] - <Price>", price after the LAST " - ".
            else list_transform(_parts, lambda p: regexp_extract(
                p, '^(?:(Regular|Large) )?(.+) - ([0-9]*\.?[0-9]+)$', ['size', 'name', 'price']))
        end as _raw_items
    from fields
),
typed as (
    select
        *,
        list_transform(_raw_items, lambda x: {
            'size': nullif(x.size, ''),
            'product_name': split_part(x.name, ' - ', 1),
            'variant': nullif(substr(x.name, length(split_part(x.name, ' - ', 1)) + 4), ''),
            'price': try_cast(x.price as decimal(10, 2))
        }) as items
    from parsed
)
select
    ('0x' || substr(md5(_file_hash || ':' || _line), 1, 15))::bigint as transaction_id,
    ('0x' || substr(md5(branch_name), 1, 15))::bigint as branch_id,
    branch_name,
    transacted_at,
    total,
    payment_method,
    customer_key,
    items,
    len(items) > 0 and list_bool_and(list_transform(items, lambda x:
        x.product_name <> '' and x.price is not null)) as _basket_ok,
    list_sum(list_transform(items, lambda x: x.price)) as _items_total,
    ts, total_text, basket,
    _batch, _file, _file_hash, _line
from typed
