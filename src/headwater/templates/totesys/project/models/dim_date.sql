/* headwater
materialized: table
publish: true
description: >
  One row per calendar day from the first to the last date any fact refers
  to (created, last updated, agreed and payment dates, which can lie in the
  future), plus a year on each side. day_of_week is ISO: Monday 1 .. Sunday 7.
checks:
  - unique: date_id
*/
with referenced as (
    select created_at::date as d from sales_order
    union all select last_updated::date from sales_order
    union all select try_cast(agreed_delivery_date as date) from sales_order
    union all select try_cast(agreed_payment_date as date) from sales_order
    union all select created_at::date from purchase_order
    union all select try_cast(agreed_delivery_date as date) from purchase_order
    union all select try_cast(agreed_payment_date as date) from purchase_order
    union all select last_updated::date from payment
    union all select try_cast(payment_date as date) from payment
),
bounds as (
    select
        make_date(year(min(d)) - 1, 1, 1) as first_day,
        make_date(year(max(d)) + 1, 12, 31) as last_day
    from referenced
)
select
    ts::date as date_id,
    year(ts)::integer as "year",
    month(ts)::integer as "month",
    day(ts)::integer as "day",
    isodow(ts)::integer as day_of_week,
    dayname(ts) as day_name,
    monthname(ts) as month_name,
    quarter(ts)::integer as quarter
from bounds, range(first_day, last_day + interval 1 day, interval 1 day) as t(ts)
