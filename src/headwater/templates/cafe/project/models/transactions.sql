/* headwater
materialized: incremental
strategy: append
unique_key: transaction_id
publish: true
description: One row per sale. customer_key is a keyed hash of the customer's name.
checks:
  - unique: transaction_id
  - not_null: [branch_id, transacted_at, total, payment_method]
  - expression: "total = _items_total"
    severity: warn
    name: total_matches_basket
*/
select
    transaction_id,
    branch_id,
    transacted_at,
    total,
    payment_method,
    customer_key,
    _items_total,
    _file,
    _line
from orders
