/* headwater
materialized: table
publish: true
description: Transactions (SALE or PURCHASE) with their order ids, latest values.
checks:
  - unique: transaction_id
  - accepted_values: {column: transaction_type, values: [SALE, PURCHASE]}
*/
select transaction_id, transaction_type, sales_order_id, purchase_order_id
from "transaction"
qualify row_number() over (partition by transaction_id order by last_updated desc) = 1
