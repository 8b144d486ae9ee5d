/* headwater
materialized: incremental
strategy: append
unique_key: [payment_id, last_updated_date, last_updated_time]
publish: true
description: >
  Payments star, one row per version of each payment: a payment flipping to
  paid adds a row. The official ERD calls last_updated_time `last_updated`.
checks:
  - not_null: [payment_id, transaction_id, counterparty_id, payment_amount, currency_id,
               payment_type_id, paid, payment_date]
*/
select
    _batch * 100000000 + row_number() over (order by payment_id, last_updated) as payment_record_id,
    payment_id,
    created_at::date as created_date,
    created_at::time as created_time,
    last_updated::date as last_updated_date,
    last_updated::time as last_updated_time,
    transaction_id,
    counterparty_id,
    payment_amount,
    currency_id,
    payment_type_id,
    paid,
    payment_date::date as payment_date
from payment
