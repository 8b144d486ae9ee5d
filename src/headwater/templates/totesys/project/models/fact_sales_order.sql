/* headwater
materialized: incremental
strategy: append
unique_key: [sales_order_id, last_updated_date, last_updated_time]
publish: true
description: >
  Sales star: one row per version of each sales order (a version is a new
  last_updated). sales_record_id is a surrogate assigned when the version
  arrives: increasing, never reused, stable when a batch is retried.
checks:
  - not_null: [sales_order_id, created_date, sales_staff_id, counterparty_id, units_sold,
               unit_price, currency_id, design_id, agreed_payment_date,
               agreed_delivery_date, agreed_delivery_location_id]
  - range: {column: units_sold, min: 1}
*/
select
    _batch * 100000000 + row_number() over (order by sales_order_id, last_updated) as sales_record_id,
    sales_order_id,
    created_at::date as created_date,
    created_at::time as created_time,
    last_updated::date as last_updated_date,
    last_updated::time as last_updated_time,
    staff_id as sales_staff_id,          -- renamed, as in the official ERD
    counterparty_id,
    units_sold,
    unit_price,
    currency_id,
    design_id,
    agreed_payment_date::date as agreed_payment_date,   -- text YYYY-MM-DD in the source
    agreed_delivery_date::date as agreed_delivery_date,
    agreed_delivery_location_id
from sales_order
