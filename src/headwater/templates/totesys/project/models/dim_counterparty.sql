/* headwater
materialized: table
publish: true
description: >
  Counterparties with their legal address, rebuilt from the latest state of
  both tables: an address change reaches every counterparty at that address.
checks:
  - unique: counterparty_id
*/
with counterparty_now as (
    select * from counterparty
    qualify row_number() over (partition by counterparty_id order by last_updated desc) = 1
),
address_now as (
    select * from address
    qualify row_number() over (partition by address_id order by last_updated desc) = 1
)
select
    c.counterparty_id,
    c.counterparty_legal_name,
    a.address_line_1 as counterparty_legal_address_line_1,
    a.address_line_2 as counterparty_legal_address_line_2,
    a.district as counterparty_legal_district,
    a.city as counterparty_legal_city,
    a.postal_code as counterparty_legal_postal_code,
    a.country as counterparty_legal_country,
    a.phone as counterparty_legal_phone_number
from counterparty_now c
join address_now a on a.address_id = c.legal_address_id
