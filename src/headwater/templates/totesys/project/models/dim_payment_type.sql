/* headwater
materialized: table
publish: true
description: Payment types (the enum's text), latest values.
checks:
  - unique: payment_type_id
*/
select payment_type_id, payment_type_name
from payment_type
qualify row_number() over (partition by payment_type_id order by last_updated desc) = 1
