/* headwater
materialized: table
publish: true
description: >
  Currencies with their ISO 4217 names (the source has codes only). A code
  missing from the list below keeps its code as its name and warns.
checks:
  - unique: currency_id
  - expression: "currency_name <> currency_code"
    severity: warn
    name: currency_name_known
*/
with iso_4217(code, name) as (
    values ('GBP', 'Pound Sterling'), ('USD', 'US Dollar'), ('EUR', 'Euro'),
           ('JPY', 'Yen'), ('CHF', 'Swiss Franc'), ('CAD', 'Canadian Dollar'),
           ('AUD', 'Australian Dollar'), ('CNY', 'Yuan Renminbi'), ('SEK', 'Swedish Krona'),
           ('NOK', 'Norwegian Krone'), ('DKK', 'Danish Krone'), ('PLN', 'Zloty'),
           ('INR', 'Indian Rupee'), ('NZD', 'New Zealand Dollar')
),
currency_now as (
    select * from currency
    qualify row_number() over (partition by currency_id order by last_updated desc) = 1
)
select c.currency_id, c.currency_code, coalesce(i.name, c.currency_code) as currency_name
from currency_now c
left join iso_4217 i on i.code = c.currency_code
