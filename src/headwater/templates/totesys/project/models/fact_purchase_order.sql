/* headwater
materialized: incremental
strategy: append
unique_key: [purchase_order_id, last_updated_date, last_updated_time]
publish: true
description: Purchases star, one row per version of each purchase order.
checks:
  - not_null: [purchase_order_id, created_date, staff_id, counterparty_id, item_code,
               item_quantity, item_unit_price, currency_id, agreed_delivery_date,
               agreed_payment_date, agreed_delivery_location_id]
*/
select
    _batch * 100000000 + row_number() over (order by purchase_order_id, last_updated) as purchase_record_id,
    purchase_order_id,
    created_at::date as created_date,
    created_at::time as created_time,
    last_updated::date as last_updated_date,
    last_updated::time as last_updated_time,
    staff_id,                            -- not renamed here (official ERD)
    counterparty_id,
    item_code,
    item_quantity,
    item_unit_price,
    currency_id,
    agreed_delivery_date::date as agreed_delivery_date,
    agreed_payment_date::date as agreed_payment_date,
    agreed_delivery_location_id
from purchase_order
